"""One public API: the same name for the mean escape time on every result, the same parameter
names in `escape_time` and in the compiled formulas, keyword-only options, `_repr_latex_` on
every result that has a formula. Each rule walks the public names, so a new result type or
function that breaks it fails here."""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
import pytest
import sympy as sp

import flatminima
from flatminima import numerics, theory
from flatminima.theory._compile import ALIASES

torch = pytest.importorskip("torch")
from flatminima import validation  # noqa: E402  (needs torch)

ROOT = Path(__file__).resolve().parents[1]
LAYERS = (flatminima, theory, numerics, validation)
x = sp.Symbol("x")
WELL = x**4 / 4 - x**2 / 2  # minima at ±1 (H_a = 2), saddle at 0 (H_b = −1), ΔL = 1/4


def public(kind: Any) -> dict[str, Any]:
    return {
        f"{layer.__name__}.{name}": getattr(layer, name)
        for layer in LAYERS
        for name in layer.__all__
        if kind(getattr(layer, name))
    }


def members(cls: type) -> set[str]:
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    return fields | {name for name, _ in inspect.getmembers(cls) if not name.startswith("__")}


# --- one name for the mean escape time -----------------------------------------------------

# τ in the model's continuous time (unit η·iterations, as the theory states it)
TIME_RESULTS = {
    "Derivation",
    "EscapeTime",
    "LandscapeEscapeTime",
    "MFPTResult",
    "MFPT2DResult",
    "EscapeSimulation",
}
# measured in SGD iterations: the mean escape time is `iterations` (= EscapeTime.iterations)
ITERATION_RESULTS = {"RateMeasurement", "EscapeMeasurement"}
# have a value or a rate that is not a mean escape time
NOT_ESCAPE_TIMES = {
    "Formula": "any derived quantity (a ratio, a fraction); Derivation is its escape-time kind",
    "SplittingResult": "a probability",
    "CompiledFormula": "a compiled kernel; its tau/log_tau are methods taking the parameters",
    "ScalingLaw": "a law: its log_tau is log τ as an expression of the variable",
    "LandscapeCase": "a test landscape: its value is the loss function, its exact references a dict",
}
TIME_WORDS = {"tau", "log_tau", "mean_time", "value", "log_value", "rate", "log_rate"}


def test_every_result_with_an_escape_time_is_classified() -> None:
    # a new result type that reports a time or a rate must say which name it uses
    found = {
        name.rsplit(".", 1)[1]
        for name, cls in public(inspect.isclass).items()
        if members(cls) & TIME_WORDS
    }
    known = TIME_RESULTS | ITERATION_RESULTS | set(NOT_ESCAPE_TIMES)
    assert found - known == set(), "classify the new result type in this test and docs/api.md"
    assert known - found == set()


def test_every_time_result_exposes_tau_and_log_tau() -> None:
    classes = {name.rsplit(".", 1)[1]: cls for name, cls in public(inspect.isclass).items()}
    for name in TIME_RESULTS:
        assert {"tau", "log_tau"} <= members(classes[name]), name
    for name in ITERATION_RESULTS:
        assert {"iterations", "log_iterations"} <= members(classes[name]), name
    # and the result types that convert with a learning rate give iterations too
    for name in ("EscapeTime", "LandscapeEscapeTime", "EscapeSimulation"):
        assert "iterations" in members(classes[name]), name


def test_tau_is_the_same_quantity_on_every_result() -> None:
    # One double well, white noise D = 1/100 (ΔΦ = 25): the formula, the exact MFPT over the
    # barrier and Monte Carlo all answer `.tau`, and the numbers agree as the theory says:
    # Kramers' τ = 2π/√(H_a|H_b|) e^{ΔL/D} (textbook), the exact MFPT within the asymptotic
    # O(1/ΔΦ) error, at a small barrier the simulation within its interval.
    kramers = 2 * math.pi / math.sqrt(2) * math.exp(25)
    formula = numerics.escape_time(
        "white", hess_min=2, hess_saddle=-1, barrier="0.25", diffusion="0.01"
    )
    assert float(formula.tau) == pytest.approx(kramers, rel=1e-12)
    assert float(formula.log_tau) == pytest.approx(math.log(kramers), rel=1e-12)
    exact = numerics.mfpt_1d(WELL, "0.01", start=-1, end=1, dps=20)
    assert exact.tau == exact.value and exact.log_tau == exact.log_value
    assert float(exact.tau) == pytest.approx(kramers, rel=4 / 25)  # 1.6 % measured
    # a low barrier (ΔΦ = 2.5) for the simulation, against the exact MFPT to x = 0.3
    low = numerics.mfpt_1d(WELL, "0.1", start=-1, end=sp.Rational(3, 10), dps=20)
    sim = numerics.simulate_escape(
        lambda z: z**3 - z,
        start=[-1.0],
        diffusion=0.1,
        step=0.005,
        n_paths=300,
        max_steps=40000,
        escaped=lambda z: z[:, 0] > 0.3,
        seed=3,
    )
    assert sim.tau == sim.mean_time and sim.tau_interval == sim.mean_time_interval
    assert sim.log_tau == pytest.approx(math.log(sim.mean_time))
    assert sim.iterations == pytest.approx(sim.mean_time / 0.005)
    lo, hi = sim.tau_interval
    assert lo < float(low.tau) < hi  # 95 % interval (seeded)


def test_mfpt_2d_and_measurements_name_it_too() -> None:
    grid = numerics.MFPT2DResult(
        value=12.5,
        log_value=math.log(12.5),
        error=0.1,
        extrapolated=12.4,
        order=None,
        values=(12.0, 12.5),
        shapes=((32, 32), (64, 64)),
        interpretation="ito",
        method="m",
    )
    assert (grid.tau, grid.log_tau) == (grid.value, grid.log_value)
    measured = validation.RateMeasurement(
        escapes=40,
        exposure=20000.0,
        rate=0.002,
        rate_low=0.0014,
        rate_high=0.0027,
        replicas=8,
        steps=2500,
        burn_in=0,
        stopped="escapes",
    )
    assert measured.iterations == pytest.approx(500.0)
    assert measured.log_iterations == pytest.approx(math.log(500.0))
    none = dataclasses.replace(measured, escapes=0, rate=0.0)
    assert none.iterations == math.inf and none.log_iterations == math.inf
    fields = {f.name: 0 for f in dataclasses.fields(validation.EscapeMeasurement)}
    probe = validation.EscapeMeasurement(**{**fields, "rate": 0.004, "agrees": {}})
    assert probe.iterations == pytest.approx(250.0)
    assert probe.log_iterations == pytest.approx(math.log(250.0))


# --- the same parameter names in escape_time and the compiled formulas --------------------

ESCAPE_TIME_NAMES = set(inspect.signature(numerics.escape_time).parameters)


@pytest.mark.parametrize("noise", ["white", "sgd", "loss-dependent"])
def test_every_formula_parameter_has_an_escape_time_name(noise: str) -> None:
    for dim in (1, 2):
        compiled = theory.derive_escape_time(noise, dim, "ito").compile("mpmath")
        for symbol in compiled.parameters:
            if symbol.split("_")[0] == "H":  # eigenvalues: escape_time takes the matrices
                continue
            keyword = {v: k for k, v in ALIASES.items()}.get(symbol, symbol)
            assert keyword in ESCAPE_TIME_NAMES, (noise, symbol)


CASES = {
    "white": {"barrier": "0.25", "diffusion": "0.01"},
    "sgd": {"barrier": "0.25", "lr": "0.1", "batch_size": 32, "s": "0.3"},
    "loss-dependent": {
        "loss_min": "0.1",
        "loss_saddle": "0.35",
        "lr": "0.1",
        "batch_size": 32,
        "h_star": "1.5",
    },
}


@pytest.mark.parametrize("noise", sorted(CASES))
def test_both_spellings_give_the_same_number(noise: str) -> None:
    ours = CASES[noise]
    symbols = {ALIASES.get(k, k): v for k, v in ours.items()}
    by_name = numerics.escape_time(noise, hess_min=2, hess_saddle=-1, dps=30, **ours)
    by_symbol = numerics.escape_time(noise, hess_min=2, hess_saddle=-1, dps=30, **symbols)
    assert by_name.tau == by_symbol.tau
    # the compiled formula takes either spelling too, and gives escape_time's number
    compiled = theory.derive_escape_time(noise, 1, "ito").compile("mpmath")
    with mpmath.workdps(30):  # local: mpmath's precision is global state
        mp = {k: mpmath.mpf(v) for k, v in ours.items()}
        for spelling in (mp, {ALIASES.get(k, k): v for k, v in mp.items()}):
            tau = compiled.tau(H_a=mpmath.mpf(2), H_b=mpmath.mpf(1), **spelling)
            assert mpmath.almosteq(tau, by_name.tau, rel_eps=mpmath.mpf(10) ** -25)
    # and the array path (log_escape_time), float64
    floats = {k: float(v) for k, v in ours.items()}
    for spelling in (floats, {ALIASES.get(k, k): v for k, v in floats.items()}):
        log_tau = numerics.log_escape_time(noise, hess_min=2.0, hess_saddle=-1.0, **spelling)
        assert float(log_tau) == pytest.approx(float(by_name.log_tau), rel=1e-13)


def test_one_spelling_at_a_time() -> None:
    with pytest.raises(flatminima.FlatMinimaError, match="either lr= or eta="):
        numerics.log_escape_time(
            "sgd",
            hess_min=2.0,
            hess_saddle=-1.0,
            barrier=0.25,
            lr=0.1,
            eta=0.1,
            batch_size=32,
            s=0.3,
        )


# --- keyword-only options --------------------------------------------------------------------

# Inputs with a default that stay positional: what the call is about, not how it is computed.
# docs/api.md lists them.
PRIMARY_WITH_DEFAULT = {
    "derive_escape_time": {"noise", "dim", "interpretation"},
    "derive_occupation_ratio": {"noise", "dim", "interpretation"},
    "derive_selection_ratio": {"noise", "dim", "interpretation"},
    "scaling_law": {"wrt"},
    "langer_unstable_eigenvalue": {"mobility"},
    "landscape_escape_time": {"noise"},
    "minimum_action_path": {"noise"},
    "run_report": {"out"},
}


def test_options_are_keyword_only() -> None:
    offenders = []
    for qualified, fn in public(inspect.isfunction).items():
        name = qualified.rsplit(".", 1)[1]
        for p in inspect.signature(fn).parameters.values():
            positional = p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            primary = p.name in PRIMARY_WITH_DEFAULT.get(name, set())
            if positional and p.default is not p.empty and not primary:
                offenders.append(f"{qualified}({p.name}=...)")
    assert offenders == []
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    for name in PRIMARY_WITH_DEFAULT:
        assert f"`{name}`" in text, f"docs/api.md should list {name}'s positional inputs"


# --- _repr_latex_ on every result that has a formula ----------------------------------------

FORMULA_WORDS = {"formula", "expression", "law", "prefactor", "latex"}


def test_every_result_with_a_formula_renders_in_jupyter() -> None:
    missing = [
        name
        for name, cls in public(inspect.isclass).items()
        if members(cls) & FORMULA_WORDS and "_repr_latex_" not in members(cls)
    ]
    assert missing == []


def test_latex_of_the_formula_results() -> None:
    derivation = theory.derive_escape_time("sgd", 1, "ito")
    compiled = derivation.compile("numpy")
    shown = compiled._repr_latex_()
    assert shown.startswith("$$\\tau = ") and shown.endswith("$$")
    assert "\\eta" in shown and "\\Delta" in shown
    # the expression shown is the one compiled: evaluate it independently with SymPy
    values = {"H_a": 2.0, "H_b": 1.0, "Delta_L": 0.25, "eta": 0.1, "B": 32.0, "s": 0.3}
    expr = compiled.expression
    by_sympy = float(expr.subs({s: values[s.name] for s in expr.free_symbols}))
    assert by_sympy == pytest.approx(float(compiled.tau(**values)), rel=1e-12)
    assert theory.scaling_law(derivation, "sharpness")._repr_latex_().startswith("$$")
    result = numerics.escape_time("white", hess_min=2, hess_saddle=-1, barrier=1, diffusion="0.05")
    assert result._repr_latex_().startswith("$$\\tau = ")


def test_landscape_result_latex_states_its_formula() -> None:
    result = numerics.landscape_escape_time(
        WELL, "white", minimum=[-1], saddle=[0], diffusion="0.01", dps=20
    )
    # τ = A e^{ΔΦ}: the numbers shown satisfy it, and ΔΦ is the textbook ΔL/D = 25
    assert float(result.barrier) == pytest.approx(25, rel=1e-9)
    assert result.quasi_potential == result.barrier
    assert mpmath.almosteq(result.prefactor * mpmath.exp(result.barrier), result.tau, 1e-15)
    shown = result._repr_latex_()
    assert shown.startswith("$$\\tau = A\\,e^{\\Delta\\Phi}")
    assert mpmath.nstr(result.prefactor, 10) in shown and "e^{25.0}" in shown
    assert "\\times 10^{11}" in shown  # τ = 3.2e11
    assert np.isfinite(float(result.log_tau))


# --- defaults documented ------------------------------------------------------------------

# Every public function's docstring states each of its defaults (None and False aside) in its
# numpy-style Parameters section; there are no exceptions.


def _parameter_entries(doc: str) -> dict[str, str] | None:
    """numpy-style ``Parameters`` section: name → its description (``a, b`` share one)."""
    found = re.search(r"Parameters\n-+\n(.*?)(?:\n\S[^\n]*\n-+\n|\Z)", doc, re.S)
    if found is None:
        return None
    entries: dict[str, str] = {}
    names: list[str] = []
    for line in found.group(1).splitlines():
        if line and not line.startswith(" "):
            names = [n.strip().lstrip("*").split(":")[0].strip() for n in line.split(",")]
            entries.update(dict.fromkeys(names, ""))
        else:
            for n in names:
                entries[n] += line + "\n"
    return entries


def _stated(default: Any, text: str) -> bool:
    shown = {repr(default), str(default), f"{default:g}" if isinstance(default, float) else ""}
    return "default" in text.lower() or any(s and s in text for s in shown)


def test_defaults_are_stated_in_the_docstrings() -> None:
    missing: dict[str, list[str]] = {}
    for qualified, fn in public(inspect.isfunction).items():
        name = qualified.rsplit(".", 1)[1]
        entries = _parameter_entries(inspect.getdoc(fn) or "") or {}
        for p in inspect.signature(fn).parameters.values():
            if p.default is p.empty or p.default is None or p.default is False:
                continue  # None/False: "not given"/"off", said by the description
            # its own entry, or a sentence of another entry that names it (``left`` in "start, end")
            text = entries.get(p.name) or " ".join(
                re.findall(rf"``{p.name}``[^.;]*", " ".join(entries.values()))
            )
            if not _stated(p.default, text):
                missing.setdefault(name, []).append(p.name)
    assert missing == {}, missing
