"""How a layer's ``__init__`` starts and ends: `refuse_source_folder` (first line: the folder
imported under its bare name would be a second copy of every class) and `lazy_names` (last
line: public names imported on first use, PEP 562). A layer imports what the common calls need
and lists the rest, private module → names, for `lazy_names`. This keeps
``import flatminima.numerics`` (and ``flatminima.theory``) from loading modules, and their
scipy pieces, that a session may never use."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any

__all__ = ["lazy_names", "refuse_source_folder"]


def refuse_source_folder(name: str, layer: str) -> None:
    """Raise ImportError unless the package ``name`` is ``flatminima.<layer>``.

    Each layer folder (theory/, numerics/, validation/) is installed as ``flatminima.<layer>``
    (pyproject.toml's package-dir). Imported as ``<layer>`` (the repository root on sys.path) it
    would be a second copy of every class, whose objects the real ones reject ("expected a
    Derivation, got Derivation"): refuse, and say why."""
    if name != f"flatminima.{layer}":
        raise ImportError(
            f"{name!r} is the source folder of flatminima.{layer}; import flatminima.{layer} "
            f"(or `from flatminima import {layer}`) instead. Importing the folder directly would "
            "load a second copy of every class, which flatminima's functions reject.",
            name=name,
        )


def lazy_names(
    package: str, lazy: Mapping[str, Sequence[str]], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``: ``lazy`` maps a private
    module to the public names it gives; such a name is imported from ``package.<module>`` when
    first asked for, then kept in the package's namespace (later lookups are plain); ``dir()``
    lists the public names either way."""
    namespace = vars(sys.modules[package])
    module_of = {name: module for module, names in lazy.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
