"""Derivations shipped with the package, precomputed: a fresh process skips SymPy's derivation.

``derive_escape_time`` for the common calls (every built-in noise model, ``dim`` 1, 2 and the
symbolic ``"n"`` that ``escape_time`` uses from 3 dimensions on, the three named
interpretations, one saddle) and the named formulas other layers evaluate (``formula(name)``,
`FORMULAS`) are stored in ``_derivations.txt`` beside this module (package data, in the wheel
and the sdist). The file is text: a header with the key, then one line per
derivation, ``<identity>`` TAB ``<expression>``, where the expression rebuilds the
[`Derivation`][flatminima.theory.Derivation] from SymPy constructors with their exact arguments
(``Mul(Integer(2), Symbol('B', positive=True))``, atoms as ``srepr`` prints them), evaluated
with SymPy's evaluation off so the tree is the stored one, node for node.

The key is the disk cache's fingerprint (``_cache.fingerprint``: the package version, the SymPy
version and a SHA-256 of every ``theory/*.py``). A file whose key differs (the theory's source
was edited, another SymPy is installed), an entry that is missing, or one that does not rebuild,
is not used: the derivation runs (and goes to the disk cache) as if no file were shipped.

Regenerate the file after changing the theory layer: ``make derivations`` (``python -m
flatminima.theory._shipped``); tests/theory/test_shipped.py fails while it is stale.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import sympy as sp

from ._noise import BUILT_IN_NOISE_MODELS

__all__ = ["COMMON", "DATA", "decode", "encode", "lookup", "write"]

#: The shipped file (read through the resolved path: the editable install links this module).
DATA = Path(__file__).resolve().parent / "_derivations.txt"
KIND = "derive_escape_time"
#: The kind of the entries for ``formula(name)`` (key: ``(name,)``).
FORMULA_KIND = "formula"
_MAGIC = "# flatminima shipped derivations"

#: (noise, dim, interpretation) of every shipped derivation (one saddle).
COMMON: tuple[tuple[str, int | str, str], ...] = tuple(
    (noise, dim, interpretation)
    for noise in BUILT_IN_NOISE_MODELS
    for dim in (1, 2, "n")
    for interpretation in ("ito", "stratonovich", "anti-ito")
)


# ---- encoding: Python expressions over SymPy's constructors ----------------------------------
def _expr(node: sp.Basic) -> str:
    from sympy.core.function import AppliedUndef

    if not node.args:
        return sp.srepr(node)
    args = ", ".join(_expr(arg) for arg in node.args)
    if isinstance(node, AppliedUndef):
        if getattr(node.func, "_kwargs", None):  # assumptions on the function: not stored
            raise ValueError(f"cannot store the function {node.func} with assumptions")
        return f"Function({node.func.__name__!r})({args})"
    name = type(node).__name__
    if _classes().get(name) is not type(node):
        raise ValueError(f"cannot store {type(node)}: not a SymPy or theory-layer name")
    return f"{name}({args})"


def encode(value: Any) -> str:
    """``value`` (a Formula or Derivation, or the SymPy objects, strings, numbers, tuples, lists
    and dicts it holds) as one line of Python that `decode` rebuilds exactly."""
    from ._derivation import Derivation, Formula

    if isinstance(value, sp.Basic):
        return _expr(value)
    if value is None or isinstance(value, (str, int)):  # bool is an int: repr is True/False
        return repr(value)
    if isinstance(value, tuple):
        return "(" + "".join(f"{encode(v)}, " for v in value) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(encode(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{encode(k)}: {encode(v)}" for k, v in value.items()) + "}"
    if type(value) in (Formula, Derivation):
        from dataclasses import fields

        items = (f"{f.name}={encode(getattr(value, f.name))}" for f in fields(value))
        return f"{type(value).__name__}({', '.join(items)})"
    raise ValueError(f"cannot store {type(value).__name__}: {value!r}")


@cache
def _classes() -> dict[str, Any]:
    """The names a stored expression may call: SymPy's public ones and the theory layer's."""
    from ._derivation import Derivation, Formula
    from ._logsumexp import LogSumExp

    names = {k: v for k, v in vars(sp).items() if not k.startswith("_")}
    names.update(Derivation=Derivation, Formula=Formula, LogSumExp=LogSumExp)
    return names


def _with_evaluation(cls: Any) -> Any:
    """``cls`` built with evaluation on: an integral, sum or product with evaluation off
    wraps its integrand in ``Mul(1, f)``; with it on, the stored arguments come back as they
    are (they are built before, with evaluation off)."""

    def build(*args: Any) -> Any:
        with sp.evaluate(True):
            return cls(*args)

    return build


@cache
def _namespace() -> dict[str, Any]:
    names = dict(_classes())
    for cls in (sp.Integral, sp.Sum, sp.Product):
        names[cls.__name__] = _with_evaluation(cls)
    names["__builtins__"] = {}
    return names


def decode(text: str) -> Any:
    """Rebuild what `encode` wrote, node for node (SymPy's evaluation is off meanwhile)."""
    code = compile(text, "<shipped derivation>", "eval")
    with sp.evaluate(False):
        return eval(code, dict(_namespace()))


# ---- the file ---------------------------------------------------------------------------------
def _header() -> str:
    from flatminima import __version__

    from ._cache import fingerprint

    return f"{_MAGIC}; key {fingerprint()}; flatminima {__version__}; sympy {sp.__version__}"


@cache
def _entries() -> dict[str, str]:
    """identity → encoded derivation, from the shipped file; empty when it is missing,
    unreadable or stale (its key is not this code's)."""
    try:
        lines = DATA.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    header = next((line for line in lines if line.startswith(_MAGIC)), None)
    if header != _header():
        return {}
    return dict(line.split("\t", 1) for line in lines if "\t" in line and line[0] != "#")


def lookup(kind: str, key: tuple[Any, ...]) -> Any | None:
    """The shipped derivation (or formula) for (``kind``, ``key``), or None (then derive it)."""
    from ._cache import _identity
    from ._derivation import Derivation, Formula

    text = None if _fresh_only else _entries().get(_identity(kind, key))
    if text is None:
        return None
    try:
        value = decode(text)
    except Exception:  # a damaged line: derive instead, as for a missing one
        return None
    wanted = Derivation if kind == KIND else Formula
    return value if type(value) is wanted else None


_fresh_only = False


@contextlib.contextmanager
def _nothing_cached() -> Iterator[None]:
    """Meanwhile nothing comes from a cache: not from this file, not from the disk cache, not
    from the process's memory (the named formulas call ``derive_escape_time``)."""
    global _fresh_only
    from ._cache import CACHE_ENV
    from ._derive import _derive

    saved = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = "off"
    _fresh_only = True
    _derive.cache_clear()
    try:
        yield
    finally:
        _fresh_only = False
        _derive.cache_clear()
        if saved is None:
            del os.environ[CACHE_ENV]
        else:
            os.environ[CACHE_ENV] = saved


def _fresh() -> Iterator[tuple[str, Any]]:
    """(identity, derivation) of every entry of `COMMON`, then (identity, formula) of every
    named formula, derived now (no cache of any kind)."""
    from ._cache import _identity
    from ._conventions import interpretation_alpha, parse_dim
    from ._derive import _derive_uncached
    from ._formulas import FORMULAS

    for noise, dim, interpretation in COMMON:
        key = (noise, parse_dim(dim), interpretation_alpha(interpretation), 1)
        yield _identity(KIND, key), _derive_uncached(*key)
    for name, build in FORMULAS.items():
        yield _identity(FORMULA_KIND, (name,)), build()


def render() -> str:
    """The text of the shipped file, every entry derived now (a minute or two)."""
    lines = [_header(), "# generated by `make derivations`; do not edit"]
    with _nothing_cached():
        for identity, derivation in _fresh():
            text = encode(derivation)
            if encode(decode(text)) != text:  # what is stored must rebuild to the same tree
                raise RuntimeError(f"{identity} does not rebuild from its stored form")
            lines.append(f"{identity}\t{text}")
    return "\n".join(lines) + "\n"


def write(path: Path = DATA) -> None:
    """Derive every shipped entry and replace ``path`` with them, atomically."""
    text = render()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the package's data is world-readable
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    _entries.cache_clear()


if __name__ == "__main__":
    write()
    print(f"wrote {DATA}")
