"""mfpt_1d and splitting_probability against closed forms, scipy quadrature, itself at higher
precision, and the Kramers formulas' measured O(1/ΔΦ) approach."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy.integrate import quad

from flatminima.errors import FlatMinimaError
from flatminima.numerics import landscape_case, mfpt_1d, splitting_probability
from flatminima.theory import derive_escape_time

x = sp.Symbol("x")
DOUBLE_WELL = landscape_case("double-well").loss_in(x)  # a = −1 (H_a = 2), b = 0, ΔL = 1/4
STYBLINSKI_TANG = landscape_case("styblinski-tang-1d").loss_in(x)


def test_linear_drift_with_reflecting_wall_closed_form() -> None:
    """L = x, D const, reflecting at 0, absorbing at 1: T(0) = D(e^{1/D} − 1) − 1."""
    D = sp.Rational(1, 7)
    m = mfpt_1d(x, D, start=0, end=1, left=0, dps=40)
    with mpmath.workdps(40):
        exact = (mpmath.exp(7) - 1) / 7 - 1
        assert mpmath.almosteq(m.value, exact, rel_eps=mpmath.mpf(10) ** -35)


def test_against_scipy_nested_quadrature() -> None:
    D = 0.05

    def inner(y):
        return quad(
            lambda z: np.exp(-(z**4 / 4 - z**2 / 2) / D),
            -np.inf,
            y,
            epsabs=0,
            epsrel=1e-13,
            limit=200,
        )[0]

    reference = quad(
        lambda y: np.exp((y**4 / 4 - y**2 / 2) / D) * inner(y) / D,
        -1,
        1,
        epsabs=0,
        epsrel=1e-12,
        limit=200,
    )[0]
    m = mfpt_1d(DOUBLE_WELL, sp.Rational(1, 20), start=-1, end=1, dps=20)
    assert float(m.value) == pytest.approx(reference, rel=1e-10)


def test_thirty_digits_agree_with_sixty_to_twenty_five() -> None:
    low = mfpt_1d(STYBLINSKI_TANG, 5, start=mpmath.mpf("2.7468"), end=-1, dps=30)
    high = mfpt_1d(STYBLINSKI_TANG, 5, start=mpmath.mpf("2.7468"), end=-1, dps=60)
    with mpmath.workdps(60):
        difference = abs(low.value - high.value)
        assert difference / high.value < mpmath.mpf(10) ** -25
        # the error estimate is honest: it bounds the actual deviation
        assert difference <= 10 * low.error + high.value * mpmath.mpf(10) ** -29


def test_barrier_far_beyond_float64() -> None:
    """ΔL/D = 10⁴: log T ≈ log τ_Kramers + O(1/ΔΦ), same at 20 and 40 digits."""
    m20 = mfpt_1d(DOUBLE_WELL, sp.Rational(1, 40000), start=-1, end=1, dps=20)
    m40 = mfpt_1d(DOUBLE_WELL, sp.Rational(1, 40000), start=-1, end=1, dps=40)
    assert m20.log_value > 709
    kramers = math.log(2 * math.pi / math.sqrt(2)) + 10000
    assert abs(float(m20.log_value) - kramers) < 1e-3
    with mpmath.workdps(40):
        assert mpmath.almosteq(m20.log_value, m40.log_value, rel_eps=mpmath.mpf(10) ** -18)


def test_leftward_escape_is_the_mirror_of_rightward() -> None:
    right = mfpt_1d(DOUBLE_WELL.subs(x, -x) + x / 10, sp.Rational(1, 10), start=1, end=-1, dps=25)
    left = mfpt_1d(DOUBLE_WELL - x / 10, sp.Rational(1, 10), start=-1, end=1, dps=25)
    with mpmath.workdps(25):
        assert mpmath.almosteq(right.value, left.value, rel_eps=mpmath.mpf(10) ** -20)


def test_callables_match_sympy() -> None:
    sym = mfpt_1d(DOUBLE_WELL, sp.Rational(1, 10), start=-1, end=1, dps=25)
    call = mfpt_1d(
        lambda t: t**4 / 4 - t**2 / 2, lambda t: mpmath.mpf(1) / 10, start=-1, end=1, dps=25
    )
    with mpmath.workdps(25):
        assert mpmath.almosteq(sym.value, call.value, rel_eps=mpmath.mpf(10) ** -18)


def _sgd_switch_diffusion(loss: sp.Expr, a: float, b: float, c: sp.Expr, kappa: sp.Expr) -> sp.Expr:
    h_a, h_b = sp.diff(loss, x, 2).subs(x, a), -sp.diff(loss, x, 2).subs(x, b)
    left_is_saddle = b < a
    near_b = sp.Lt(x, c) if left_is_saddle else sp.Gt(x, c)
    return sp.Piecewise((kappa * h_b, near_b), (kappa * h_a, True))


@pytest.mark.parametrize("interpretation", ["ito", "stratonovich", "anti-ito"])
@pytest.mark.parametrize("landscape", ["double-well", "styblinski-tang"])
def test_sgd_formula_approaches_exact_mfpt_as_one_over_barrier(
    landscape: str, interpretation: str
) -> None:
    """SGD noise in the harmonic switch model (switch at the inflection point): the formula /
    exact ratio → 1, and |ratio − 1| falls like 1/ΔΦ (fitted log-log slope ≈ 1)."""
    if landscape == "double-well":
        loss, a, b, end = DOUBLE_WELL, sp.Integer(-1), sp.Integer(0), 1
        c = -1 / sp.sqrt(3)
        kappas = [sp.Rational(1, 40), sp.Rational(1, 80), sp.Rational(1, 160)]
    else:
        loss, end = STYBLINSKI_TANG, -1
        a_f, b_f = (
            sp.nsolve(sp.diff(loss, x), x, 2.7, prec=40),
            sp.nsolve(sp.diff(loss, x), x, 0.15, prec=40),
        )
        a, b = a_f, b_f
        c = sp.sqrt(sp.Rational(8, 3))
        kappas = [sp.Rational(1, 8), sp.Rational(1, 16), sp.Rational(1, 32)]
    h_a = sp.diff(loss, x, 2).subs(x, a)
    h_b = -sp.diff(loss, x, 2).subs(x, b)
    barrier = loss.subs(x, b) - loss.subs(x, a)
    s = (loss.subs(x, c) - loss.subs(x, a)) / barrier
    tau = derive_escape_time("sgd", 1, interpretation).compile("mpmath")
    ratios, phis = [], []
    for kappa in kappas:
        diffusion = _sgd_switch_diffusion(loss, float(a), float(b), c, kappa)
        exact = mfpt_1d(loss, diffusion, start=a, end=end, interpretation=interpretation, dps=20)
        with mpmath.workdps(25):
            formula = tau.tau(
                H_a=h_a.evalf(30),
                H_b=h_b.evalf(30),
                Delta_L=barrier.evalf(30),
                eta=2 * kappa,
                B=1,
                s=s.evalf(30),
            )
        ratios.append(float(formula / exact.value))
        phis.append(float(exact.barrier))
    deviations = np.abs(np.array(ratios) - 1)
    assert deviations[-1] < deviations[0] / 3  # ΔΦ × 4 → deviation ÷ ~4
    slope = np.polyfit(np.log(phis), np.log(deviations), 1)[0]
    assert -1.25 < slope < -0.8, (ratios, phis, slope)


def test_barrier_is_the_quasi_potential_climbed_not_the_range_of_phi() -> None:
    """SGD switch noise on the double well: D = 2κ left of the inflection point c = −1/√3,
    D = κ right of it. Φ climbs (L(c) − L(a))/(2κ) + (L(b) − L(c))/κ = 7/(36κ) from a to the
    saddle, and falls further than that beyond the saddle (D is smaller there): the reported
    barrier is the climb, the exponent of the Kramers formula."""
    kappa = sp.Rational(1, 100)
    diffusion = sp.Piecewise((2 * kappa, x < -1 / sp.sqrt(3)), (kappa, True))
    m = mfpt_1d(DOUBLE_WELL, diffusion, start=-1, end=1, dps=20)
    with mpmath.workdps(20):
        assert mpmath.almosteq(m.barrier, mpmath.mpf(7) / 36 / mpmath.mpf("0.01"), rel_eps=1e-15)
    right = mfpt_1d(DOUBLE_WELL, diffusion, start=1, end=-1, dps=20)  # mirrored: from b's side
    with mpmath.workdps(20):
        assert mpmath.almosteq(right.barrier, mpmath.mpf(1) / 4 / mpmath.mpf("0.01"), rel_eps=1e-15)


@pytest.mark.parametrize("landscape", ["double-well", "styblinski-tang"])
def test_white_formula_approaches_exact_mfpt(landscape: str) -> None:
    if landscape == "double-well":
        loss, a, b, end, h_a, h_b, barrier = DOUBLE_WELL, -1, 0, 1, 2, 1, sp.Rational(1, 4)
        noises = [sp.Rational(1, 40), sp.Rational(1, 80), sp.Rational(1, 160)]
    else:
        loss, end = STYBLINSKI_TANG, -1
        a = sp.nsolve(sp.diff(loss, x), x, 2.7, prec=40)
        b = sp.nsolve(sp.diff(loss, x), x, 0.15, prec=40)
        h_a, h_b = sp.diff(loss, x, 2).subs(x, a), -sp.diff(loss, x, 2).subs(x, b)
        barrier = loss.subs(x, b) - loss.subs(x, a)
        noises = [sp.Rational(5, 2), sp.Rational(5, 4), sp.Rational(5, 8)]
    tau = derive_escape_time("white", 1).compile("mpmath")
    deviations, phis = [], []
    for noise in noises:
        exact = mfpt_1d(loss, noise, start=a, end=end, dps=20)
        with mpmath.workdps(25):
            formula = tau.tau(
                H_a=sp.N(h_a, 30), H_b=sp.N(h_b, 30), Delta_L=sp.N(barrier, 30), D=noise
            )
        deviations.append(abs(float(formula / exact.value) - 1))
        phis.append(float(exact.barrier))
    slope = np.polyfit(np.log(phis), np.log(deviations), 1)[0]
    assert -1.25 < slope < -0.8, (deviations, phis, slope)


def test_splitting_probability_closed_forms() -> None:
    # pure diffusion: linear; constant drift −1 (L = x): (e^{x/D} − e^{l/D}) / (e^{u/D} − e^{l/D})
    flat = splitting_probability(lambda t: mpmath.mpf(0), 1, start="0.3", lower=0, upper=1, dps=30)
    with mpmath.workdps(30):
        assert mpmath.almosteq(flat.value, mpmath.mpf("0.3"), rel_eps=mpmath.mpf(10) ** -25)
        D = mpmath.mpf(1) / 4
        drift = splitting_probability(x, sp.Rational(1, 4), start="0.3", lower=0, upper=1, dps=30)
        exact = (mpmath.exp(mpmath.mpf("0.3") / D) - 1) / (mpmath.exp(1 / D) - 1)
        assert mpmath.almosteq(drift.value, exact, rel_eps=mpmath.mpf(10) ** -25)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"diffusion": 0}, "diffusion"),
        ({"diffusion": x - 5}, "diffusion"),  # D < 0 on the domain
        ({"end": -1}, "end"),  # end == start
        ({"dps": 5}, "dps"),
        ({"interpretation": "alpha"}, "interpretation"),
        ({"interpretation": 1.5}, "interpretation"),
        ({"left": 0}, "left"),  # reflecting boundary on the wrong side
        ({"loss": x}, "loss"),  # not confining towards −∞
        ({"loss": x * sp.Symbol("y")}, "loss"),
        ({"start": float("nan")}, "start"),
    ],
)
def test_bad_input_names_the_parameter(kwargs: dict, parameter: str) -> None:
    arguments = {
        "loss": DOUBLE_WELL,
        "diffusion": sp.Rational(1, 10),
        "start": -1,
        "end": 1,
        "dps": 20,
    }
    arguments.update(kwargs)
    with pytest.raises(FlatMinimaError, match=parameter):
        mfpt_1d(**arguments)


def test_piecewise_loss_gets_its_joins_as_breakpoints() -> None:
    """A C¹ piecewise-quadratic loss (curvature jumps at the joins): against scipy quadrature."""
    loss = sp.Piecewise((x**2 / 2, x < 0), (2 * x**2, True))
    m = mfpt_1d(loss, sp.Rational(1, 2), start=0, end=1, left=-3, dps=20)

    def phi(t):
        return (t**2 / 2 if t < 0 else 2 * t**2) / 0.5

    def inner(y):
        return quad(
            lambda z: np.exp(-phi(z)), -3, y, points=[0] if y > 0 else None, epsabs=0, epsrel=1e-13
        )[0]

    reference = quad(lambda y: np.exp(phi(y)) * inner(y) / 0.5, 0, 1, epsabs=0, epsrel=1e-12)[0]
    assert float(m.value) == pytest.approx(reference, rel=1e-9)
    assert m.panels < 200  # the joins are breakpoints: no endless refinement at the kinks


def test_a_fractional_interpretation_is_carried_at_the_working_precision() -> None:
    """α = 1/3 was rounded to a double before the work at dps + 10 digits: T was wrong from the
    17th digit (24.39275558744167143879… instead of …16187463…). Reference: the double integral
    by nested mpmath.quad at 24 digits with the closed-form quasi-potential of D = (1 + x²)/8,
    L' = x³ − x: Φ = 4x² − 8 log(1 + x²) (minima at ±1; the state-dependent D makes it
    neither separable nor symmetric in the integrand)."""
    x = sp.Symbol("x")
    result = mfpt_1d(
        x**4 / 4 - x**2 / 2, (1 + x**2) / 8, start=-1, end=1, dps=30,
        interpretation=sp.Rational(1, 3),
    )  # fmt: skip
    with mpmath.workdps(24):
        alpha = mpmath.mpf(1) / 3

        def phi(v: mpmath.mpf) -> mpmath.mpf:
            return 4 * v**2 - 8 * mpmath.log(1 + v**2)

        def diffusion(v: mpmath.mpf) -> mpmath.mpf:
            return (1 + v**2) / 8

        def g(z: mpmath.mpf) -> mpmath.mpf:
            return diffusion(z) ** (alpha - 1) * mpmath.exp(-phi(z))

        base = mpmath.quad(g, [-mpmath.inf, -1])
        reference = mpmath.quad(
            lambda y: mpmath.exp(phi(y)) * diffusion(y) ** (-alpha) * (base + mpmath.quad(g, [-1, y])),
            [-1, 0, 1],
        )  # fmt: skip
        assert abs(result.value / reference - 1) < mpmath.mpf(10) ** -20
