"""On-disk cache of derived formulas, shared by processes.

A derivation is a pure function of its arguments, the theory layer's source code and the
SymPy version (other callers, such as the Chebyshev rules of ``mfpt_1d``, add a hash of their
own source to the key). Each entry is stored under a key built from all three (the package version, the
SymPy version and a SHA-256 of every ``theory/*.py`` file, plus the arguments' ``srepr``), and
the file holds the key again: a loaded entry whose stored key differs, or that does not unpickle
(a corrupt or truncated file), is ignored and rebuilt. Writers write a temporary file in the
same directory and ``os.replace`` it into place, so a reader sees either no file or a whole
one, whatever runs concurrently.

The derivations the common calls need ship precomputed with the package (``_shipped``, same
key) and are looked up before this cache, which keeps the others.

Location: ``$FLATMINIMA_CACHE_DIR`` if set (``off`` disables the cache), else
``$XDG_CACHE_HOME/flatminima`` or ``~/.cache/flatminima``. The files are pickles: only point
the cache at a directory you own.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["CACHE_ENV", "cache_dir", "cached"]

CACHE_ENV = "FLATMINIMA_CACHE_DIR"
T = TypeVar("T")


def cache_dir() -> Path | None:
    """The cache directory, or None when disabled (``FLATMINIMA_CACHE_DIR=off``)."""
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "flatminima"


@cache
def fingerprint() -> str:
    """Package version, SymPy version and the theory layer's source, hashed."""
    import sympy

    from flatminima import __version__

    digest = hashlib.sha256(f"flatminima {__version__}; sympy {sympy.__version__}".encode())
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def _identity(kind: str, key: tuple[Any, ...]) -> str:
    import sympy as sp

    parts = [sp.srepr(k) if isinstance(k, sp.Basic) else repr(k) for k in key]
    return f"{kind}({', '.join(parts)})"


def cached(kind: str, key: tuple[Any, ...], build: Callable[[], T]) -> T:
    """``build()``, stored on disk under (``kind``, ``key``) and the code's fingerprint."""
    directory = cache_dir()
    if directory is None:
        return build()
    stamp = fingerprint()
    identity = _identity(kind, key)
    name = hashlib.sha256(f"{stamp}|{identity}".encode()).hexdigest()[:32]
    path = directory / stamp / f"{kind}-{name}.pickle"
    try:
        with path.open("rb") as handle:
            stored = pickle.load(handle)
        if (
            isinstance(stored, tuple)
            and len(stored) == 3
            and stored[0] == stamp
            and stored[1] == identity
        ):
            result: T = stored[2]
            return result
    except FileNotFoundError:
        pass
    except Exception:  # a corrupt or foreign file: rebuild and overwrite it
        pass
    value = build()
    _store(path, (stamp, identity, value))
    return value


def _store(path: Path, payload: Any) -> None:
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pickle")
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        tmp = None
    except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError):
        pass  # a read-only or full disk, or an unpicklable value: the cache is an optimization
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
