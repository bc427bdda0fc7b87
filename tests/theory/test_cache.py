"""The on-disk derivation cache: used when present, rebuilt when corrupt or foreign, whole
under concurrent writers."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from flatminima.theory import _cache, _derive
from flatminima.theory._cache import CACHE_ENV, cached


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    _derive._derive.cache_clear()
    yield tmp_path
    _derive._derive.cache_clear()


def _entries(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.pickle"))


def test_derivation_is_stored_and_then_loaded_not_rederived(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dim 3 is not shipped precomputed (dims 1, 2 and n are: tests/theory/test_shipped.py)
    first = _derive.derive_escape_time("white", dim=3)
    assert len(_entries(cache_dir)) == 1
    _derive._derive.cache_clear()

    def fail(*args: object) -> None:
        raise AssertionError("derived again although the cache holds it")

    monkeypatch.setattr(_derive, "_derive_uncached", fail)
    second = _derive.derive_escape_time("white", dim=3)
    assert second is not first
    assert second.tau == first.tau and second.log_value == first.log_value
    assert second.format_steps() == first.format_steps()


def test_corrupt_or_foreign_entries_are_ignored_and_rebuilt(cache_dir: Path) -> None:
    calls = []

    def build() -> str:
        calls.append(1)
        return "value"

    assert cached("probe", ("k",), build) == "value"
    [entry] = _entries(cache_dir)
    entry.write_bytes(b"\x80\x05not a pickle")  # truncated / corrupt
    assert cached("probe", ("k",), build) == "value"
    assert len(calls) == 2
    stamp, _, value = pickle.loads(entry.read_bytes())
    assert value == "value"
    # a whole pickle stored under this name but for another key is not trusted
    entry.write_bytes(pickle.dumps((stamp, "probe('other')", "wrong")))
    assert cached("probe", ("k",), build) == "value"
    assert len(calls) == 3


def test_disabled_cache_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, "off")
    assert _cache.cache_dir() is None
    assert cached("probe", (1,), lambda: 2) == 2
    assert _entries(tmp_path) == []


def test_concurrent_writers_leave_one_whole_entry(cache_dir: Path) -> None:
    code = (
        "from flatminima.theory._cache import cached\n"
        "import time\n"
        "v = cached('race', ('k',), lambda: (time.sleep(0.2), list(range(100000)))[1])\n"
        "assert v == list(range(100000))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env={**_env(), CACHE_ENV: str(cache_dir)})
        for _ in range(6)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    [entry] = _entries(cache_dir)
    assert pickle.loads(entry.read_bytes())[2] == list(range(100000))
    assert not [p for p in cache_dir.rglob("*") if p.name.startswith(".tmp-")]


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
