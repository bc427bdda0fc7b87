"""Generated code has no nesting limit (issue 16, item 2).

Python's parser refuses 200 nested parentheses and its compiler recurses once per nested
operation, so code printed as one nested expression broke at dimension 98 (``SyntaxError: too
many nested parentheses`` from ``escape_time``) and 1500 (``RecursionError`` from
``log_escape_time``). The references here are independent: the Eyring–Kramers and Mori et al.
formulas written out with numpy eigenvalues (``numpy.linalg.eigvalsh``) and mpmath sums of logs.
"""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest
import sympy as sp

from flatminima.errors import ValidityWarning
from flatminima.numerics import escape_time, log_escape_time
from flatminima.theory import derive_escape_time
from flatminima.theory._compile import compile_formula

BARRIER, D = mpmath.mpf(3), mpmath.mpf("0.25")
LR, BATCH, S = mpmath.mpf("0.1"), mpmath.mpf(4), mpmath.mpf("0.4")
L_A, L_B, H_STAR = mpmath.mpf("0.1"), mpmath.mpf("1.1"), mpmath.mpf("1.5")


def _hessians(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A rotated (not axis-aligned) minimum and saddle sharing one eigenbasis, and their
    eigenvalues (escape direction first)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    la = rng.uniform(0.5, 3.0, n)
    lb = np.r_[-rng.uniform(0.5, 2.0), rng.uniform(0.5, 3.0, n - 1)]
    ha = (q * la) @ q.T
    hb = (q * lb) @ q.T
    return 0.5 * (ha + ha.T), 0.5 * (hb + hb.T), la, lb


def _reference(noise: str, la: np.ndarray, lb: np.ndarray) -> mpmath.mpf:
    """log τ (Itô) from the textbook formulas, with the eigenvalues numpy computed."""
    n = len(la)
    log_det_a = mpmath.fsum(mpmath.log(mpmath.mpf(v)) for v in la)
    log_det_b = mpmath.fsum(mpmath.log(abs(mpmath.mpf(v))) for v in lb)
    h_be, h_ae = abs(mpmath.mpf(lb[0])), mpmath.mpf(la[0])
    if noise == "white":  # Eyring–Kramers
        return mpmath.log(2 * mpmath.pi / h_be) + (log_det_b - log_det_a) / 2 + BARRIER / D
    if noise == "sgd":  # Itô prefactor 2π/H_ae, the paper's exponent
        exponent = 2 * BATCH * BARRIER / LR * (S / h_ae + (1 - S) / h_be)
        return mpmath.log(2 * mpmath.pi / h_ae) + exponent
    # loss-dependent (Mori et al., Itô): γ = |h_e|/2π √(det H_a/|det H_b|) (L_b/L_a)^-(B/ηh* + 1 − n/2)
    power = BATCH / (LR * H_STAR) + 1 - mpmath.mpf(n) / 2
    log_rate = mpmath.log(h_be / (2 * mpmath.pi)) + (log_det_a - log_det_b) / 2
    return -(log_rate - power * mpmath.log(L_B / L_A))


_ARGUMENTS = {
    "white": {"diffusion": "0.25", "barrier": 3},
    "sgd": {"lr": "0.1", "batch_size": 4, "s": "0.4", "barrier": 3},
    "loss-dependent": {
        "lr": "0.1",
        "batch_size": 4,
        "loss_min": "0.1",
        "loss_saddle": "1.1",
        "h_star": "1.5",
    },
}


def _formula_arguments(noise: str, la: np.ndarray, lb: np.ndarray) -> dict[str, mpmath.mpf]:
    values = {"H_a_1": mpmath.mpf(la[0]), "H_b_1": -mpmath.mpf(lb[0])}
    if noise != "sgd":
        values.update({f"H_a_{i}": mpmath.mpf(v) for i, v in enumerate(la, 1)})
    values.update({f"H_b_{i}": mpmath.mpf(v) for i, v in enumerate(lb[1:], 2)})
    if len(la) == 1:
        values = {"H_a": mpmath.mpf(la[0]), "H_b": -mpmath.mpf(lb[0])}
    plain = {"diffusion": "D", "barrier": "Delta_L", "lr": "eta", "batch_size": "B"}
    plain |= {"loss_min": "L_a", "loss_saddle": "L_b", "s": "s", "h_star": "h_star"}
    values.update({plain[k]: mpmath.mpf(v) for k, v in _ARGUMENTS[noise].items()})
    return values


@pytest.mark.parametrize("noise", ["white", "sgd", "loss-dependent"])
@pytest.mark.parametrize("dim", [1, 97, 98])
def test_derived_formulas_at_dimensions_around_the_old_limit(noise: str, dim: int) -> None:
    """The compiled mpmath formula (fast path and mpf fallback) and log_escape_time (numpy)."""
    ha, hb, la, lb = _hessians(dim, seed=dim)
    compiled = derive_escape_time(noise, dim).compile("mpmath")
    arguments = _formula_arguments(noise, la, lb)
    with mpmath.workdps(30):
        reference = _reference(noise, la, lb)
        fast = compiled.log_tau(**{k: arguments[k] for k in compiled.parameters})
        fallback = compiled.tau(**{k: float(arguments[k]) for k in compiled.parameters})
        assert mpmath.almosteq(fast, reference, rel_eps=mpmath.mpf(10) ** -25)
        assert mpmath.almosteq(mpmath.log(fallback), reference, rel_eps=mpmath.mpf(10) ** -14)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ValidityWarning)
        array = log_escape_time(noise, hess_min=ha, hess_saddle=hb, **_ARGUMENTS[noise])
    # the Hessians are rounded to float64 and rotated: agreement to ~1e-12 relative
    assert float(array) == pytest.approx(float(reference), rel=1e-11, abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("noise", ["white", "loss-dependent"])
def test_escape_time_at_dimension_98(noise: str) -> None:
    """The issue's reproducer through escape_time (mpmath eigen-decomposition: minutes)."""
    ha, hb, la, lb = _hessians(98, seed=98)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ValidityWarning)
        result = escape_time(noise, hess_min=ha, hess_saddle=hb, dps=20, **_ARGUMENTS[noise])
    with mpmath.workdps(30):
        reference = _reference(noise, la, lb)
    assert float(result.log_tau) == pytest.approx(float(reference), rel=1e-11, abs=1e-9)


def _long_formula(n: int) -> tuple[sp.Expr, sp.Expr, tuple[sp.Symbol, ...]]:
    """√(Π y_i / Π x_i) · e^(Σ 1/x_i) and its log as Σ: the shapes of an n-D determinant
    ratio and a long sum, as the derivations produce them."""
    xs = sp.symbols(f"x_1:{n + 1}", positive=True)
    ys = sp.symbols(f"y_1:{n + 1}", positive=True)
    value = sp.sqrt(sp.Mul(*ys) / sp.Mul(*xs)) * sp.exp(sp.Add(*(1 / x for x in xs)))
    log_value = sp.Add(
        *(sp.log(y) / 2 - sp.log(x) / 2 + 1 / x for x, y in zip(xs, ys, strict=True))
    )
    return value, log_value, (*xs, *ys)


@pytest.mark.parametrize("n", [1, 97, 98, 1000])
def test_compiled_products_and_sums_of_any_length(n: int) -> None:
    value, log_value, symbols = _long_formula(n)
    rng = np.random.default_rng(n)
    x = rng.uniform(0.9, 1.1, n)
    y = rng.uniform(0.9, 1.1, n)
    with mpmath.workdps(40):
        reference_log = mpmath.fsum(
            mpmath.log(mpmath.mpf(b)) / 2 - mpmath.log(mpmath.mpf(a)) / 2 + 1 / mpmath.mpf(a)
            for a, b in zip(x, y, strict=True)
        )
        kwargs = {s.name: v for s, v in zip(symbols, [*x, *y], strict=True)}
        compiled = compile_formula(value, log_value, symbols, "mpmath", f"t{n}")
        fast = compiled.value(**{k: mpmath.mpf(v) for k, v in kwargs.items()})
        slow = compiled.value(**kwargs)  # floats: the mpf-arithmetic fallback
        assert mpmath.almosteq(mpmath.log(fast), reference_log, rel_eps=mpmath.mpf(10) ** -35)
        assert mpmath.almosteq(mpmath.log(slow), reference_log, rel_eps=mpmath.mpf(10) ** -35)
        log_fast = compiled.log_value(**{k: mpmath.mpf(v) for k, v in kwargs.items()})
        assert mpmath.almosteq(log_fast, reference_log, rel_eps=mpmath.mpf(10) ** -35)
    numeric = compile_formula(value, log_value, symbols, "numpy", f"t{n}")
    assert numeric.log_value(**kwargs) == pytest.approx(float(reference_log), rel=1e-12)


@pytest.mark.slow
def test_log_escape_time_at_dimension_1000() -> None:
    """The issue's RecursionError was at 1500; the derivation alone takes ~30 s at 1000."""
    ha, hb, la, lb = _hessians(1000, seed=7)
    for noise in ("white", "sgd"):
        out = log_escape_time(noise, hess_min=ha, hess_saddle=hb, **_ARGUMENTS[noise])
        with mpmath.workdps(30):
            reference = _reference(noise, la, lb)
        assert float(out) == pytest.approx(float(reference), rel=1e-10)
