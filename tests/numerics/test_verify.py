"""verify=True must not certify a wrong answer, and must not cry wolf.

Adversarial landscapes (a narrow bump, a narrow well, a plateau between two near-jumps, a
spike of the diffusion, placed where the default panels have no node) are compared with an
independent float64 reference written here: the MFPT double integral by the trapezoid rule on a
uniform grid of millions of points with the extreme values of Φ factored out (its own
convergence is checked by halving the grid). Ordinary landscapes must pass every check without
a refinement or a false ConvergenceError.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable

import mpmath
import numpy as np
import pytest
import sympy as sp

from flatminima.errors import ConvergenceError, FlatMinimaError
from flatminima.numerics import escape_time, landscape_case, mfpt_1d, splitting_probability

x = sp.Symbol("x")
DOUBLE_WELL = landscape_case("double-well").loss_in(x)
STYBLINSKI_TANG = landscape_case("styblinski-tang-1d").loss_in(x)
ALPHA = {"ito": 0.0, "stratonovich": 0.5, "anti-ito": 1.0}


def _trapezoid_cumulative(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum((y[1:] + y[:-1]) * np.diff(t) / 2)])


def _grid(points: list[float], n: int, features: tuple[float, ...] = ()) -> np.ndarray:
    """A uniform grid of about n points through every point of ``points``, with 40 001 more
    points within ±2·10⁻⁵ of each of ``features`` (narrow transitions)."""
    points = sorted(points)
    length = points[-1] - points[0]
    parts = [
        np.linspace(a, b, max(3, int(n * (b - a) / length)))[:-1]
        for a, b in itertools.pairwise(points)
    ]
    fine = [np.linspace(c - 2e-5, c + 2e-5, 40_001) for c in features]
    return np.unique(np.concatenate([*parts, [points[-1]], *fine]))


def _phi(loss: sp.Expr, diffusion: sp.Expr, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.broadcast_to(np.asarray(sp.lambdify(x, diffusion, "numpy")(t), float), t.shape)
    if not diffusion.free_symbols:
        return np.asarray(sp.lambdify(x, loss, "numpy")(t), float) / d, d
    drift = np.asarray(sp.lambdify(x, sp.diff(loss, x), "numpy")(t), float) / d
    return _trapezoid_cumulative(t, drift), d


def reference_log_mfpt(
    loss: sp.Expr,
    diffusion: sp.Expr,
    start: float,
    end: float,
    left: float,
    alpha: float = 0.0,
    n: int = 4_000_000,
    points: tuple[float, ...] = (),
    features: tuple[float, ...] = (),
) -> float:
    """log T, T = ∫_start^end e^Φ D^−α ∫_left^y D^(α−1) e^−Φ, trapezoid on a uniform grid
    (through the jumps of D given as ``points``; refined around the narrow ``features``)."""
    # each jump as two points 10⁻¹² apart: D is sampled on both sides, never at the jump
    jumps = [p + e for p in points if left < p < end and p != start for e in (-1e-12, 1e-12)]
    t = _grid([left, start, end, *jumps], n, features)
    phi, d = _phi(loss, sp.sympify(diffusion), t)
    after = t >= start
    top, bottom = phi[after].max(), phi.min()
    f = np.where(after, d ** (-alpha) * np.exp(np.where(after, phi - top, 0.0)), 0.0)
    g = d ** (alpha - 1) * np.exp(bottom - phi)
    inner = _trapezoid_cumulative(t, g)
    return math.log(_trapezoid_cumulative(t, f * inner)[-1]) + top - bottom


def reference_splitting(
    loss: sp.Expr, diffusion: sp.Expr, start: float, lower: float, upper: float, n: int
) -> float:
    t = _grid([lower, start, upper], n)
    phi, _ = _phi(loss, sp.sympify(diffusion), t)
    psi = np.exp(phi - phi.max())
    cumulative = _trapezoid_cumulative(t, psi)
    return float(cumulative[t <= start][-1] / cumulative[-1])


def converged_reference(compute: Callable[[int], float], n: int = 2_000_000) -> float:
    coarse, fine = compute(n), compute(2 * n)
    assert abs(fine - coarse) < 1e-7 * max(1.0, abs(fine)), (coarse, fine)
    return fine


def statuses(result) -> list[tuple[str, str]]:
    return [(c.name, c.status) for c in result.checks]


# --------------------------------------------------------------------------- must be caught

BUMP = DOUBLE_WELL + sp.exp(-(((x + sp.Rational(2, 5)) * 10**4) ** 2))


def test_issue_reproducer_narrow_bump_is_found_and_the_answer_made_right() -> None:
    """The issue's case: without a breakpoint the panels never see the bump (T = 729.67, the
    bare double well); verify must find it, split there and return the true T ≈ 5.5e6."""
    args = (BUMP, sp.Rational(1, 20))
    plain = mfpt_1d(*args, start=-1, end=1, dps=20)
    reference = converged_reference(
        lambda n: reference_log_mfpt(BUMP, sp.Rational(1, 20), -1, 1, -3, n=n)
    )
    assert abs(float(plain.log_value) - reference) > 8  # the unverified panels miss it
    checked = mfpt_1d(*args, start=-1, end=1, dps=20, verify=True)
    assert float(checked.log_value) == pytest.approx(reference, abs=1e-6)
    assert 5.50e6 < float(checked.value) < 5.51e6
    assert ("feature scan", "refined") in statuses(checked)
    assert checked.verified_digits is not None and checked.verified_digits >= 15
    # and the refined value is the one with the feature given as a breakpoint, to dps − 5
    given = mfpt_1d(*args, start=-1, end=1, dps=20, breakpoints=["-0.4"])
    assert mpmath.almosteq(checked.value, given.value, rel_eps=mpmath.mpf(10) ** -15)
    assert checked.to_dict()["checks"][0]["status"] == "refined"


ADVERSARIAL = {
    # a narrow deep well between the panels' nodes: it becomes the deepest point
    "narrow well": (
        DOUBLE_WELL - sp.Rational(3, 5) * sp.exp(-(((x + sp.Rational(47, 100)) * 10**4) ** 2)),
        sp.Rational(1, 20),
        "ito",
        (),
    ),
    # two near-jumps (tanh of width 1e-6) enclosing a plateau 2e-4 wide
    "plateau between near-jumps": (
        DOUBLE_WELL
        + (
            sp.tanh((x + sp.Rational(3, 10)) * 10**6)
            - sp.tanh((x + sp.Rational(3, 10) - sp.Rational(2, 10**4)) * 10**6)
        )
        / 4,
        sp.Rational(1, 20),
        "ito",
        (-0.3, -0.2998),
    ),
    # a spike of a state-dependent diffusion (Stratonovich), between the saddle and the end
    "diffusion spike": (
        DOUBLE_WELL,
        sp.Rational(1, 20) + sp.exp(-(((x - sp.Rational(53, 100)) * 10**4) ** 2)),
        "stratonovich",
        (),
    ),
}


@pytest.mark.parametrize(
    "case",
    [
        "narrow well",
        "plateau between near-jumps",
        pytest.param("diffusion spike", marks=pytest.mark.slow),
    ],
)
def test_features_between_panels_are_found_and_resolved(case: str) -> None:
    loss, diffusion, interpretation, features = ADVERSARIAL[case]
    reference = converged_reference(
        lambda n: reference_log_mfpt(
            loss, diffusion, -1, 1, -3, ALPHA[interpretation], n, features=features
        )
    )
    plain = mfpt_1d(loss, diffusion, start=-1, end=1, interpretation=interpretation, dps=15)
    assert abs(float(plain.log_value) - reference) > 1e-5  # the default panels miss it
    checked = mfpt_1d(
        loss, diffusion, start=-1, end=1, interpretation=interpretation, dps=15, verify=True
    )
    assert float(checked.log_value) == pytest.approx(reference, abs=2e-7)
    assert ("feature scan", "refined") in statuses(checked)


def test_bump_narrower_than_the_scan_spacing_is_found_from_the_expression() -> None:
    """A bump of width 10⁻⁷, 40× narrower than the scan's spacing: the samples would miss it,
    but its exp argument −(10⁷(x + 2/5))² names its centre and scale, and the scan samples
    there."""
    loss = DOUBLE_WELL + sp.exp(-(((x + sp.Rational(2, 5)) * 10**7) ** 2)) / 2
    reference = converged_reference(
        lambda n: reference_log_mfpt(loss, sp.Rational(1, 20), -1, 1, -3, n=n, features=(-0.4,))
    )
    plain = mfpt_1d(loss, sp.Rational(1, 20), start=-1, end=1, dps=15)
    assert abs(float(plain.log_value) - reference) > 1e-4
    checked = mfpt_1d(loss, sp.Rational(1, 20), start=-1, end=1, dps=15, verify=True)
    assert float(checked.log_value) == pytest.approx(reference, abs=2e-7)
    assert ("feature scan", "refined") in statuses(checked)


@pytest.mark.slow
def test_steep_tanh_step_is_right_with_or_without_verify() -> None:
    """A near-jump (tanh of width 1e-4) straddled by nodes: the adaptive panels resolve it by
    themselves; verify confirms without a refinement."""
    loss = DOUBLE_WELL + sp.tanh((x - sp.Rational(3, 10)) * 10**4) / 10
    reference = converged_reference(
        lambda n: reference_log_mfpt(loss, sp.Rational(1, 20), -1, 1, -3, n=n)
    )
    checked = mfpt_1d(loss, sp.Rational(1, 20), start=-1, end=1, dps=15, verify=True)
    assert float(checked.log_value) == pytest.approx(reference, abs=2e-7)
    assert all(status == "passed" for _, status in statuses(checked))


def test_splitting_probability_bump_is_found() -> None:
    loss = DOUBLE_WELL + sp.exp(-(((x - sp.Rational(3, 10)) * 10**4) ** 2)) / 2
    reference = converged_reference(
        lambda n: reference_splitting(loss, sp.Rational(1, 10), 0, -1, 1, n)
    )
    plain = splitting_probability(loss, sp.Rational(1, 10), start=0, lower=-1, upper=1, dps=15)
    assert abs(float(plain.value) - reference) > 1e-3
    checked = splitting_probability(
        loss, sp.Rational(1, 10), start=0, lower=-1, upper=1, dps=15, verify=True
    )
    assert float(checked.value) == pytest.approx(reference, rel=1e-7)
    assert ("feature scan", "refined") in statuses(checked)


@pytest.mark.slow
def test_callable_bump_is_found_by_the_pointwise_scan() -> None:
    def loss(t):
        return t**4 / 4 - t**2 / 2 + mpmath.exp(-(((t + mpmath.mpf(2) / 5) * 10**4) ** 2))

    reference = converged_reference(
        lambda n: reference_log_mfpt(BUMP, sp.Rational(1, 20), -1, 1, -3, n=n)
    )
    checked = mfpt_1d(loss, "0.05", start=-1, end=1, dps=15, verify=True)
    assert float(checked.log_value) == pytest.approx(reference, abs=1e-6)
    assert ("feature scan", "refined") in statuses(checked)


def test_cannot_be_made_right_raises() -> None:
    """The bump needs more panels than allowed: ConvergenceError, not 729.67."""
    with pytest.raises(ConvergenceError):
        mfpt_1d(BUMP, sp.Rational(1, 20), start=-1, end=1, dps=15, max_panels=30, verify=True)


# --------------------------------------------------------------------------- no false alarms


def _switch_diffusion(kappa: sp.Expr) -> sp.Expr:
    return sp.Piecewise((2 * kappa, x < -1 / sp.sqrt(3)), (kappa, True))


NORMAL = {
    "double well": (DOUBLE_WELL, sp.Rational(1, 20), -1, 1, None, "ito"),
    "SGD switch model, Itô": (
        DOUBLE_WELL,
        _switch_diffusion(sp.Rational(1, 40)),
        -1,
        1,
        None,
        "ito",
    ),
    "Piecewise loss": (
        sp.Piecewise((x**2 / 2, x < 0), (2 * x**2, True)),
        sp.Rational(1, 2),
        0,
        1,
        -3,
        "ito",
    ),
    "state-dependent D": (DOUBLE_WELL, (1 + x**2) / 20, -1, 1, None, "stratonovich"),
}

SLOW_NORMAL = {
    "SGD switch model, anti-Itô": (
        DOUBLE_WELL,
        _switch_diffusion(sp.Rational(1, 40)),
        -1,
        1,
        None,
        "anti-ito",
    ),
    "Styblinski-Tang slice, leftward": (
        STYBLINSKI_TANG,
        sp.Integer(5),
        sp.Rational(27468, 10000),
        -1,
        None,
        "ito",
    ),
    "barrier 1e4": (DOUBLE_WELL, sp.Rational(1, 40000), -1, 1, None, "ito"),
}


def _no_false_alarm(case: tuple) -> None:
    loss, diffusion, start, end, left, interpretation = case
    kwargs = {} if left is None else {"left": left}
    checked = mfpt_1d(
        loss,
        diffusion,
        start=start,
        end=end,
        interpretation=interpretation,
        dps=15,
        verify=True,
        **kwargs,
    )
    names = [name for name, _ in statuses(checked)]
    assert names == [
        "feature scan",
        "dense float64 quadrature",
        "independent discretisation",
        "precision",
    ]
    assert all(status in ("passed", "skipped") for _, status in statuses(checked))
    assert checked.verified_digits is not None and checked.verified_digits >= 10
    if start < end:  # an independent reference (the float one runs left to right)
        reference = converged_reference(
            lambda n: reference_log_mfpt(
                loss,
                diffusion,
                float(start),
                float(end),
                -3.0 if left is None else float(left),
                ALPHA[interpretation],
                n,
                points=(-1 / math.sqrt(3), 0.0),  # the jumps of the switch model and Piecewise
            ),
            1_000_000,
        )
        assert float(checked.log_value) == pytest.approx(reference, abs=1e-6)


@pytest.mark.parametrize("case", sorted(NORMAL))
def test_ordinary_landscapes_pass_without_refinement(case: str) -> None:
    _no_false_alarm(NORMAL[case])


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(SLOW_NORMAL))
def test_ordinary_landscapes_pass_without_refinement_slow(case: str) -> None:
    _no_false_alarm(SLOW_NORMAL[case])


def test_ordinary_splitting_and_callables_pass() -> None:
    p = splitting_probability(
        DOUBLE_WELL, sp.Rational(1, 10), start="0.1", lower=-1, upper=1, dps=15, verify=True
    )
    assert all(status == "passed" for _, status in statuses(p))
    assert float(p.value) == pytest.approx(
        reference_splitting(DOUBLE_WELL, sp.Rational(1, 10), 0.1, -1, 1, 2_000_000), rel=1e-9
    )
    m = mfpt_1d(lambda t: t**4 / 4 - t**2 / 2, "0.05", start=-1, end=1, dps=15, verify=True)
    assert all(status in ("passed", "skipped") for _, status in statuses(m))
    assert float(m.value) == pytest.approx(729.670691942323, rel=1e-12)


# --------------------------------------------------------------------------- escape_time


def _kramers_white(barrier: str, diffusion: str, dps: int) -> mpmath.mpf:
    """τ = 2π/√(H_a|H_b|) e^{ΔL/D} for H_a = 2, H_b = −1 (textbook Kramers, 1-D)."""
    with mpmath.workdps(dps):
        return (
            2 * mpmath.pi / mpmath.sqrt(2) * mpmath.exp(mpmath.mpf(barrier) / mpmath.mpf(diffusion))
        )


@pytest.mark.parametrize("barrier", ["1e4", "1e6", "1e8"])
def test_escape_time_verify_at_large_barriers_is_not_a_false_alarm(barrier: str) -> None:
    """log τ = 10⁸ carries τ to 30 digits only with 8 more digits of log τ: the check compares
    τ (log τ at the precision it was computed), not log τ rounded to 30 digits."""
    kwargs = {"hess_min": 2, "hess_saddle": -1, "barrier": barrier, "diffusion": "1"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        checked = escape_time("white", dps=30, verify=True, **kwargs)
        high = escape_time("white", dps=60, **kwargs)
    assert checked.verified_digits is not None and checked.verified_digits >= 28
    assert [c.name for c in checked.checks] == ["precision"]
    with mpmath.workdps(80):
        exact = _kramers_white(barrier, "1", 80)
        assert abs(checked.tau / high.tau - 1) < mpmath.mpf(10) ** -28
        assert abs(checked.tau / exact - 1) < mpmath.mpf(10) ** -28


def test_escape_time_verify_still_raises_when_the_working_precision_is_short() -> None:
    """ΔL/D = 10¹⁸/3 is carried to dps + 10 = 40 digits, so e^{ΔL/D} is right to only ~22
    digits at dps = 30: verify must raise, and the unverified τ is indeed that far off."""
    kwargs = {"hess_min": 2, "hess_saddle": -1, "barrier": "1e18", "diffusion": "3"}
    with pytest.raises(ConvergenceError, match="agrees"):
        escape_time("white", dps=30, verify=True, **kwargs)
    plain = escape_time("white", dps=30, **kwargs)
    with mpmath.workdps(80):
        exact = _kramers_white("1e18", "3", 80)
        assert abs(plain.tau / exact - 1) > mpmath.mpf(10) ** -25


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"loss": x * sp.Symbol("y")}, "loss"),
        ({"diffusion": -1}, "diffusion"),
        ({"end": -1}, "end"),
    ],
)
def test_bad_input_with_verify_names_the_parameter(kwargs: dict, parameter: str) -> None:
    arguments = {"loss": DOUBLE_WELL, "diffusion": "0.05", "start": -1, "end": 1, "dps": 15}
    arguments.update(kwargs)
    with pytest.raises(FlatMinimaError, match=parameter):
        mfpt_1d(**arguments, verify=True)
