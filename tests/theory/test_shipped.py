"""The derivations shipped precomputed (theory/_derivations.txt): current, equal to a fresh
derivation, used in a fresh process, and ignored (the derivation runs) whenever they do not fit."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest
import sympy as sp

from flatminima.theory import _derive, _shipped
from flatminima.theory._cache import CACHE_ENV, fingerprint
from flatminima.theory._conventions import interpretation_alpha, parse_dim
from flatminima.theory._derivation import Formula
from flatminima.theory._formulas import FORMULAS, formula


@pytest.fixture
def fresh_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No disk cache, and nothing remembered in this process, before and after."""
    monkeypatch.setenv(CACHE_ENV, "off")
    _shipped._entries.cache_clear()
    _derive._derive.cache_clear()
    yield
    _shipped._entries.cache_clear()
    _derive._derive.cache_clear()


def _key(noise: str, dim: int | str, interpretation: str) -> tuple[object, ...]:
    return (noise, parse_dim(dim), interpretation_alpha(interpretation), 1)


def test_the_shipped_file_is_current_and_equals_a_fresh_derivation() -> None:
    text = _shipped.DATA.read_text(encoding="utf-8")
    assert text.splitlines()[0] == _shipped._header(), (
        "theory/_derivations.txt is stale (theory/*.py or SymPy changed): run `make derivations`"
    )
    assert fingerprint() in text.splitlines()[0]
    # every entry derived now, with no cache of any kind, written as the file would be
    assert _shipped.render() == text, "theory/_derivations.txt differs: run `make derivations`"


@pytest.mark.parametrize(
    "case", _shipped.COMMON, ids=lambda c: "-".join(map(str, c)) if isinstance(c, tuple) else c
)
def test_each_shipped_derivation_is_the_derived_one(case: tuple[str, int | str, str]) -> None:
    key = _key(*case)
    shipped = _shipped.lookup(_shipped.KIND, key)
    derived = _derive._derive_uncached(*key)  # type: ignore[arg-type]
    assert shipped is not None and shipped is not derived
    for field in fields(derived):
        assert getattr(shipped, field.name) == getattr(derived, field.name), field.name
    assert sp.srepr(shipped.value) == sp.srepr(derived.value)
    assert shipped.format_steps() == derived.format_steps()
    assert shipped.latex() == derived.latex() and shipped.rate == derived.rate
    # IndexedBase keeps its assumptions outside its arguments: they must come back too
    for name, symbol in derived.symbols.items():
        assert shipped.symbols[name].assumptions0 == symbol.assumptions0, name


@pytest.mark.parametrize("name", list(FORMULAS))
def test_each_shipped_named_formula_is_the_derived_one(name: str) -> None:
    shipped = _shipped.lookup(_shipped.FORMULA_KIND, (name,))
    with _shipped._nothing_cached():
        derived = FORMULAS[name]()
    assert type(shipped) is Formula and shipped is not derived
    for field in fields(derived):
        assert getattr(shipped, field.name) == getattr(derived, field.name), field.name
    assert sp.srepr(shipped.log_value) == sp.srepr(derived.log_value)
    assert shipped.format_steps() == derived.format_steps()
    # and formula(name) hands out the shipped one: the same tree
    assert sp.srepr(formula(name).value) == sp.srepr(derived.value)


def test_a_fresh_process_serves_the_common_calls_without_deriving() -> None:
    code = (
        "import warnings\n"
        "warnings.simplefilter('ignore')\n"
        "import numpy as np\n"
        "from flatminima.theory import _derive, derive_escape_time\n"
        "def refuse(*args):\n"
        "    raise AssertionError(f'derived {args} although it is shipped')\n"
        "_derive._derive_uncached = refuse\n"
        "from flatminima.theory import _formulas\n"
        "_formulas.FORMULAS = {name: refuse for name in _formulas.FORMULAS}\n"
        "ratio = _formulas.compiled_formula('selection_ratio_sgd', 'mpmath')\n"
        "d = derive_escape_time('sgd', dim=2)\n"
        "from flatminima.numerics import escape_time\n"
        "two = escape_time('sgd', hess_min=[[2, 0.3], [0.3, 5]],"
        " hess_saddle=[[-1, 0.2], [0.2, 3]], barrier='0.5', lr='0.1', batch_size=64, s='0.5')\n"
        "ten = escape_time('white', hess_min=np.diag(np.arange(1.0, 11)),"
        " hess_saddle=np.diag([-1.0, *np.arange(2.0, 11)]), barrier=1, diffusion='0.1')\n"
        "print(d.tau)\n"
        "print(ten.tau)\n"
        "print(ratio.log_value(H_flat=1, Delta_L=3, eta='0.1', B=4, s='0.25', H_sharp=2))\n"
    )
    env = {**os.environ, CACHE_ENV: "off"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    tau_2d, tau_10d, log_ratio = result.stdout.split("\n")[:3]
    # γ_sharp/γ_flat = exp[(2BΔLs/η)(1/H_flat − 1/H_sharp)] (Xie et al. 2021, anti-Itô)
    assert float(log_ratio) == pytest.approx(2 * 4 * 3 * 0.25 / 0.1 * (1 - 1 / 2), rel=1e-12)
    assert "exp(" in tau_2d
    # Eyring–Kramers for white noise, n-D: τ = (2π/|H_be|)·sqrt(|det H_b|/det H_a)·e^(ΔL/D)
    det_a, det_b = sp.factorial(10), sp.factorial(10)
    kramers = 2 * sp.pi / 1 * sp.sqrt(det_b / det_a) * sp.exp(sp.Integer(10))
    assert float(tau_10d) == pytest.approx(float(kramers), rel=1e-12)


def _write_variant(tmp_path: Path, change: str) -> Path:
    lines = _shipped.DATA.read_text(encoding="utf-8").splitlines()
    if change == "key":
        lines[0] = lines[0].replace(fingerprint(), "0" * len(fingerprint()))
    elif change == "sympy":
        lines[0] = lines[0].replace(f"sympy {sp.__version__}", "sympy 0.0.1")
    elif change == "damaged":  # every entry cut short, as by a truncated copy
        lines = [line if line.startswith("#") else line[: len(line) // 2] for line in lines]
    elif change == "missing":
        return tmp_path / "absent.txt"
    path = tmp_path / "_derivations.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("change", ["key", "sympy", "damaged", "missing"])
def test_a_file_that_does_not_fit_is_ignored_and_the_derivation_runs(
    change: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_caches: None
) -> None:
    calls = []
    uncached = _derive._derive_uncached

    def counting(*args: object) -> object:
        calls.append(args)
        return uncached(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_derive, "_derive_uncached", counting)
    monkeypatch.setattr(_shipped, "DATA", _write_variant(tmp_path, change))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is said: the derivation simply runs
        got = _derive.derive_escape_time("sgd", dim=2)
    assert len(calls) == 1
    assert got.tau == uncached(*_key("sgd", 2, "ito")).tau  # type: ignore[arg-type]
    # and with the package's own file, nothing is derived
    monkeypatch.undo()
    monkeypatch.setenv(CACHE_ENV, "off")
    monkeypatch.setattr(_derive, "_derive_uncached", counting)
    _shipped._entries.cache_clear()
    _derive._derive.cache_clear()
    assert _derive.derive_escape_time("sgd", dim=2).tau == got.tau
    assert len(calls) == 1


def test_what_cannot_be_rebuilt_exactly_is_refused_when_writing() -> None:
    x = sp.Symbol("x")
    with pytest.raises(ValueError, match="assumptions"):
        _shipped.encode(sp.Function("f", positive=True)(x))
    with pytest.raises(ValueError, match="cannot store"):
        _shipped.encode({1.5})
    # what is stored comes back node for node, unevaluated forms included
    expr = sp.Eq(sp.Function("J")(x), sp.Mul(2, sp.Add(x, 1), evaluate=False), evaluate=False)
    back = _shipped.decode(_shipped.encode(expr))
    assert sp.srepr(back) == sp.srepr(expr) and back == expr
