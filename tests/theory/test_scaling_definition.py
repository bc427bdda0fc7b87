"""scaling_law decides by the definition (issue 16, item 3).

Reproducer: ``scaling_law(derive_escape_time("white", saddles=2), "sharpness").kind`` was
"other", but scaling every curvature by k gives τ(k)/τ(1) = 1/k exactly. Every law here is
checked against the compiled formula itself, evaluated at 50 digits with the variable scaled by
hand (independently of how scaling_law substitutes it).
"""

from __future__ import annotations

import random

import mpmath
import pytest
import sympy as sp

from flatminima.theory import derive_escape_time, scaling_law

XS = [mpmath.mpf(v) for v in ("0.5", "0.8", "1.25", "2", "3.5")]


def _values(names: tuple[str, ...], seed: int) -> dict[str, mpmath.mpf]:
    rng = random.Random(seed)
    values = {}
    for name in names:
        if name.startswith("s"):
            values[name] = mpmath.mpf(rng.randint(200, 800)) / 1000
        elif name == "L_a":
            values[name] = mpmath.mpf(rng.randint(100, 400)) / 1000
        elif name.startswith("L_b"):
            values[name] = mpmath.mpf(rng.randint(1000, 2500)) / 1000
        else:
            values[name] = mpmath.mpf(rng.randint(500, 2000)) / 1000
    return values


def _scaled(values: dict[str, mpmath.mpf], wrt: str, x: mpmath.mpf) -> dict[str, mpmath.mpf]:
    """The parameters with the variable scaled (docs/conventions.md §3 for the sharpness)."""
    out = dict(values)
    for name in values:
        if wrt == "sharpness" and (name.startswith("H_") or name == "h_star"):
            out[name] = values[name] * x
        elif (
            (wrt == "batch_size" and name == "B")
            or (wrt == "lr" and name == "eta")
            or (wrt == "diffusion" and name == "D")
        ):
            out[name] = x
        elif wrt == "barrier" and name.startswith("Delta_L"):
            out[name] = x if name == "Delta_L" else values[name] * x
        elif wrt == "loss_ratio" and name.startswith("L_b"):
            out[name] = x * values["L_a"] if name == "L_b" else values[name] * x
    return out


def _log_tau(compiled, values, wrt, x):
    return compiled.log_tau(**_scaled(values, wrt, x))


def _substitute_law(expr: sp.Expr, values: dict[str, mpmath.mpf]) -> mpmath.mpf:
    subs = {s: sp.Float(str(values[s.name]), 60) for s in expr.free_symbols if s.name in values}
    return mpmath.mpf(str(sp.N(expr.subs(subs), 50)))


CASES = [
    (noise, saddles, wrt)
    for noise in ("white", "sgd", "loss-dependent")
    for saddles in (1, 2, 3)
    for wrt in ("sharpness", "batch_size", "lr", "diffusion", "barrier", "loss_ratio")
    if not (wrt == "loss_ratio" and noise != "loss-dependent")
]


@pytest.mark.parametrize(("noise", "saddles", "wrt"), CASES)
def test_law_matches_the_compiled_formula_under_scaling(noise: str, saddles: int, wrt: str) -> None:
    derivation = derive_escape_time(noise, saddles=saddles)
    law = scaling_law(derivation, wrt)
    compiled = derivation.compile("mpmath")
    with mpmath.workdps(50):
        values = _values(compiled.parameters, seed=saddles * 7 + len(wrt))
        logs = [_log_tau(compiled, values, wrt, x) for x in XS]
        tol = mpmath.mpf(10) ** -30
        if law.kind == "constant":
            assert all(abs(v - logs[0]) < tol * (1 + abs(v)) for v in logs)
        elif law.kind in ("polynomial", "power-law"):
            p = _substitute_law(law.coefficient, values)
            for x, v in zip(XS, logs, strict=True):  # τ(x)/τ(1) = x^p
                reference = _log_tau(compiled, values, wrt, mpmath.mpf(1)) + p * mpmath.log(x)
                assert abs(v - reference) < tol * (1 + abs(v))
        elif law.kind == "exponential":
            c = _substitute_law(law.coefficient, values)
            p = _substitute_law(law.power, values)
            rest = [
                v - c * _substitute_law(law.argument, {law.variable.name: x}) - p * mpmath.log(x)
                for x, v in zip(XS, logs, strict=True)
            ]
            assert all(abs(r - rest[0]) < tol * (1 + abs(r)) for r in rest)
        else:  # "other": the numbers follow none of the laws
            assert law.kind == "other"
            e = [x * mpmath.diff(lambda t: _log_tau(compiled, values, wrt, t), x) for x in XS[:4]]
            spread = max(abs(v - e[0]) for v in e)
            assert spread > 1e-8 * (1 + abs(e[0]))  # not a power law
            for transform in (lambda t: t, lambda t: 1 / t):  # not linear in x or 1/x
                u = [transform(x) for x in XS[:4]]
                slope = (e[1] - e[0]) / (u[1] - u[0])
                misfit = max(abs(e[i] - e[0] - slope * (u[i] - u[0])) for i in (2, 3))
                assert misfit > 1e-8 * (1 + abs(e[0]))


@pytest.mark.parametrize("saddles", [1, 2, 3])
def test_white_noise_is_one_over_k_for_any_number_of_saddles(saddles: int) -> None:
    law = scaling_law(derive_escape_time("white", saddles=saddles), "sharpness")
    assert law.kind == "polynomial"
    assert law.coefficient == -1


@pytest.mark.parametrize("saddles", [2, 3])
def test_several_saddles_with_different_exponents_are_not_one_exponential(saddles: int) -> None:
    """SGD: log τ = −log Σ_p k c_p e^(−E_p/k) is no single E/k + p log k when the E_p differ."""
    assert scaling_law(derive_escape_time("sgd", saddles=saddles), "sharpness").kind == "other"
