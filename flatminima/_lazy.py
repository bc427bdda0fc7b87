"""Public names imported on first use (PEP 562): a layer's ``__init__`` imports what the
common calls need and lists the rest, name → private module, for `lazy_names`. This keeps
``import flatminima.numerics`` (and ``flatminima.theory``) from loading modules, and their
scipy pieces, that a session may never use."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str, lazy: dict[str, str], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``: a name in ``lazy`` is
    imported from ``package.<module>`` when first asked for, then kept in the package's
    namespace (later lookups are plain); ``dir()`` lists the public names either way."""
    namespace = vars(sys.modules[package])

    def __getattr__(name: str) -> Any:
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
