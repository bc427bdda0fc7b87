"""Exact references for escape times on any landscape (issue 10), checked against each other,
and the tests `landscape_escape_time` must pass against them.

The references (tests/landscapes_any.py): the backward-Kolmogorov MFPT from the minimum to the
other basins on refined grids (`mfpt_2d`), cross-checked here against an independent nine-point
solver (`kolmogorov_mfpt`), against `mfpt_1d` on a rotated separable problem, and against Monte
Carlo (`simulate_escape`) at small barriers. Then the aligned formula of today (`escape_time`
with H_ae = eᵀH_a e) is measured on each case: right to O(1/ΔΦ) where it should be (white
noise), not converging where the issue says it does not (misaligned H_a, stiffness changing
along a switch-noise path, measured noise).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import sympy as sp
from landscapes_any import CASES, cell_grid, kolmogorov_mfpt, kolmogorov_reference, numpy_grad

import flatminima.numerics as numerics
from flatminima.errors import NoiseModelError, ValidityWarning
from flatminima.numerics import mfpt_1d, mfpt_2d, simulate_escape

LANDSCAPE = getattr(numerics, "landscape_escape_time", None)
needs_landscape = pytest.mark.skipif(
    LANDSCAPE is None, reason="landscape_escape_time not merged yet"
)
BARRIERS = (6.0, 10.0, 16.0)  # unmarked tests; the slow ones use 6, 8, 12, 16
SLOW_BARRIERS = (6.0, 8.0, 12.0, 16.0)
SLOPE_BAND = (-1.3, -0.7)  # |τ/τ_exact − 1| ∝ ΔΦ^slope
ERROR_AT_16 = 0.06  # |τ/τ_exact − 1| at ΔΦ = 16: the 1-D formulas measure 1.8–4% there


def loglog_slope(barriers: tuple[float, ...], errors: list[float]) -> float:
    return float(np.polyfit(np.log(barriers), np.log(np.abs(errors)), 1)[0])


# --------------------------------------------------------------------------------------------
# the references against each other
# --------------------------------------------------------------------------------------------


def test_nine_point_solver_matches_mfpt_1d_on_a_rotated_separable_problem() -> None:
    """A full constant tensor (off-diagonal on the grid) on a separable problem rotated by 45°:
    the nine-point solver's extrapolated MFPT equals the exact 1-D one."""
    x = sp.Symbol("x")
    exact = float(
        mfpt_1d(x**4 / 4 - x**2 / 2, sp.Rational(1, 16), start=-1, end="0.6", dps=20).value
    )
    r2 = math.sqrt(0.5)
    rot = np.array([[r2, -r2], [r2, r2]])
    tensor = rot @ np.diag([1 / 16, 1 / 10]) @ rot.T

    def loss(xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        u, v = (xx + yy) * r2, (yy - xx) * r2
        return u**4 / 4 - u**2 / 2 + v**2

    values = [
        kolmogorov_mfpt(
            loss,
            lambda xx, yy: np.broadcast_to(tensor, (*np.shape(xx), 2, 2)),
            cell_grid(((-2.6, 2.0), (-2.6, 2.0)), (n, n), lambda xx, yy: (xx + yy) * r2 > 0.6),
            (-r2, -r2),
        )
        for n in (60, 120)
    ]
    extrapolated = values[1] + (values[1] - values[0]) / 3
    assert extrapolated == pytest.approx(exact, rel=5e-3)
    assert abs(values[1] - exact) < abs(values[0] - exact)  # it converges


@pytest.mark.parametrize("key", ["a", "b", "f"])
def test_nine_point_solver_agrees_with_mfpt_2d(key: str) -> None:
    """Two independent discretizations of the same backward Kolmogorov problem (five-point SQRA
    with central cross terms vs nine-point exponential fitting), each extrapolated: equal within
    their Richardson error estimates plus 0.2%. Case b has the off-diagonal constant tensor,
    f a full state-dependent one."""
    instance = CASES[key].at(8.0)
    grid = mfpt_2d(
        instance.case.loss_np,
        instance.diffusion,
        bounds=instance.case.grid["bounds"],
        shape=instance.case.grid["shape"],
        start=tuple(instance.case.minimum),
        absorbing=instance.case.grid["absorbing"],
        levels=2,
    )
    other = kolmogorov_reference(instance, levels=2)
    tolerance = 3 * (grid.error + other.error) + 2e-3 * grid.extrapolated
    assert abs(grid.extrapolated - other.tau) < tolerance
    assert grid.error / grid.extrapolated < 1e-2


def _monte_carlo(key: str, barrier: float, step: float, n_paths: int, seed: int) -> tuple:
    """SDE paths from the minimum to the grid's absorbing set. The grid reflects at its box,
    drawn where L − L(a) is several barriers; past it the paths feel the loss's drift and the
    noise of the nearest box point. Without that, case f's measured noise (C(w) grows like
    w₁⁶ outside the box, faster than the loss's quartic drift) let a rare path (one of 1000
    at ΔΦ = 3, seeds 12 and 14; at w₁ ≈ −8 against the box's −2.2) take a kick that
    Euler–Maruyama cannot bring back: it overflows, a DivergenceError, at step 0.005 and
    0.0025 alike. Inside the box both solve the same problem, and the paths almost never
    leave it."""
    instance = CASES[key].at(barrier)
    case = instance.case
    absorbing = case.grid["absorbing"]
    (x_low, x_high), (y_low, y_high) = case.grid["bounds"]
    sim = simulate_escape(
        numpy_grad(case.loss),
        start=case.minimum,
        diffusion=lambda th: instance.diffusion(
            np.clip(th[:, 0], x_low, x_high), np.clip(th[:, 1], y_low, y_high)
        ),
        step=step,
        n_paths=n_paths,
        max_steps=2_000_000,
        escaped=lambda th: absorbing(th[:, 0], th[:, 1]),
        seed=seed,
    )
    return instance, sim


@pytest.mark.parametrize(("key", "barrier", "n_paths"), [("d", 2.0, 800), ("f", 1.5, 400)])
def test_monte_carlo_agrees_with_the_grid(key: str, barrier: float, n_paths: int) -> None:
    """At a small ΔΦ (d: switch noise with a jump; f: measured full state-dependent noise), Itô:
    SDE paths (step 0.005) to the same absorbing set agree with the grid within 3 standard
    errors plus the Euler–Maruyama bias (≲ step·max H ≈ 1%)."""
    instance, sim = _monte_carlo(key, barrier, 0.005, n_paths, seed=11)
    exact = instance.exact(levels=2).tau
    assert sim.n_censored == 0
    low, high = sim.mean_time_interval
    half = (high - low) / 2 * 3 / 1.96
    assert abs(sim.mean_time - exact) < half + 0.015 * exact


@pytest.mark.slow
@pytest.mark.parametrize(("key", "step"), [("a", 0.005), ("b", 0.005), ("c", 0.0005), ("f", 0.005)])
def test_monte_carlo_agrees_with_the_grid_slow(key: str, step: float) -> None:
    """ΔΦ = 3, 1000 paths, step·max H ≤ 0.018."""
    instance, sim = _monte_carlo(key, 3.0, step, 1000, seed=12)
    exact = instance.exact(levels=3).tau
    low, high = sim.mean_time_interval
    half = (high - low) / 2 * 3 / 1.96
    assert abs(sim.mean_time - exact) < half + 0.015 * exact


# --------------------------------------------------------------------------------------------
# where the absorbing surface goes
# --------------------------------------------------------------------------------------------


def test_absorbing_surface_through_the_saddle_gives_half_the_escape_time() -> None:
    """Case a: the MFPT to the line through the saddle (normal to the valley) is ≈ τ/2, the
    MFPT to a line halfway between b and the other minimum c equals the escape time (absorbing
    past c) to 0.3%: the escape time needs a surface where the committor is 1."""
    from landscapes_any import _UB, _UC

    instance = CASES["a"].at(10.0)
    case = instance.case
    deep = instance.exact(levels=2).tau

    def mfpt_to(u_line: float) -> float:
        return mfpt_2d(
            case.loss_np,
            instance.diffusion,
            bounds=case.grid["bounds"],
            shape=case.grid["shape"],
            start=tuple(case.minimum),
            absorbing=lambda x, y: 0.8 * x + 0.6 * y > u_line,
            levels=2,
        ).extrapolated

    assert mfpt_to(_UB) / deep == pytest.approx(0.5, abs=0.05)
    assert mfpt_to(0.5 * (_UB + _UC)) / deep == pytest.approx(1.0, abs=3e-3)


# --------------------------------------------------------------------------------------------
# today's aligned formula on the reference landscapes
# --------------------------------------------------------------------------------------------


def _aligned_errors(key: str, barriers: tuple[float, ...], levels: int = 2) -> list[float]:
    errors = []
    for barrier in barriers:
        instance = CASES[key].at(barrier)
        errors.append(instance.aligned() / instance.exact(levels=levels).tau - 1)
    return errors


@pytest.mark.parametrize("key", ["a", "e"])
def test_white_noise_formula_converges_like_inverse_barrier(key: str) -> None:
    """White noise: Eyring–Kramers (summed over saddles on e) is the exact asymptotics, so the
    references must show |error| ∝ 1/ΔΦ: a check of the references and their absorbing sets."""
    errors = _aligned_errors(key, BARRIERS)
    slope = loglog_slope(BARRIERS, errors)
    assert SLOPE_BAND[0] <= slope <= SLOPE_BAND[1], (errors, slope)
    assert abs(errors[-1]) < ERROR_AT_16


@pytest.mark.parametrize("key", ["c", "d"])
def test_aligned_sgd_formula_does_not_converge(key: str) -> None:
    """c (H_a misaligned with e) and d (transverse stiffness 1.0 → 1.36 on a switch-noise path):
    the aligned SGD formula's error does not fall like 1/ΔΦ from 6 to 16: that would shrink it
    to 6/16 = 0.375 of itself (at most 0.50 with the slope band's −0.7); it grows (c) or keeps
    more than 0.6 of itself (d), and the fit error = e∞ + c/ΔΦ leaves |e∞| > 5%."""
    errors = _aligned_errors(key, (6.0, 16.0))
    assert abs(errors[1]) > 0.6 * abs(errors[0]), errors
    limit = (16 * errors[1] - 6 * errors[0]) / 10
    assert abs(limit) > 0.05, (errors, limit)


def test_aligned_formula_is_far_off_with_anisotropic_and_measured_noise() -> None:
    """b with D = eᵀDe, f with the κH assumption: off by more than 30% at ΔΦ = 8."""
    for key in ("b", "f"):
        (error,) = _aligned_errors(key, (8.0,))
        assert abs(error) > 0.3, (key, error)


@pytest.mark.slow
@pytest.mark.parametrize("key", ["b", "c", "f", "g"])
def test_exponent_ratio_of_the_case_is_what_the_references_measure(key: str) -> None:
    """The stored ΔΦ_true/ΔΦ_nominal equals the slope d log τ_exact / dΔΦ_nominal fitted on
    refined grids (log τ = βΔΦ + c₀ + c₁/ΔΦ) to 3%."""
    case = CASES[key]
    nominal = np.array(SLOW_BARRIERS) / case.exponent_ratio
    logs = [math.log(case.at_nominal(float(n)).exact(levels=3).tau) for n in nominal]
    design = np.stack([nominal, np.ones_like(nominal), 1 / nominal], axis=1)
    beta = np.linalg.lstsq(design, np.array(logs), rcond=None)[0][0]
    assert beta == pytest.approx(case.exponent_ratio, rel=0.03)


# --------------------------------------------------------------------------------------------
# the Maier–Stein regime (cases c and f): μ = λ_s/|λ_b| < 1 at the saddle
# --------------------------------------------------------------------------------------------

#: Barriers of the prefactor-exponent fit (levels-2 references: Richardson error ≤ 0.07%).
MS_BARRIERS = (6.0, 8.0, 12.0, 16.0, 24.0)
#: |ν| allowed for "no power of ΔΦ in the prefactor". Measured 2026-12-02 on levels-3
#: references over ΔΦ = 4–24 (docs/numerics.md): the fitted ν moves with the fit (ranges 4–16,
#: 6–16, 4–24, 6–24, 8–24; with and without a 1/ΔΦ² term) within −0.028…+0.014 on c and
#: −0.017…+0.048 on f; the band is twice the largest of these.
MS_EXPONENT_BAND = 0.1


def _string(instance, points: int = 8):
    """The case's minimum-action path at this noise level (``points`` segments, refined to
    4·points)."""
    from flatminima.numerics import minimum_action_path

    case = instance.case
    return minimum_action_path(
        case.loss,
        minimum=tuple(case.minimum),
        saddle=tuple(case.saddles[0]),
        points=points,
        **instance.landscape_kwargs,
    )


def _prefactor_exponents(key: str, barriers: tuple[float, ...], levels: int) -> list[float]:
    """ν fitted to log τ_exact − ΔΦ = c₀ + ν log ΔΦ + c₁/ΔΦ (and + c₂/ΔΦ²), ΔΦ the
    quasi-potential barrier from the string (`minimum_action_path`, 8 segments refined to 32:
    within 0.03% of the converged one; Φ scales exactly like 1/D, so one string serves every
    noise level)."""
    path = _string(CASES[key].at(10.0))
    phi = np.array(barriers) * path.barrier / 10.0
    logs = [math.log(CASES[key].at(b).exact(levels=levels).tau) for b in barriers]
    y = np.array(logs) - phi
    exponents = []
    for extra in ([], [phi**-2]):
        design = np.stack([np.ones_like(phi), np.log(phi), 1 / phi, *extra], axis=1)
        exponents.append(float(np.linalg.lstsq(design, y, rcond=None)[0][1]))
    return exponents


@pytest.mark.parametrize("key", ["c", "f"])
def test_maier_stein_saddle_keeps_the_arrhenius_prefactor(key: str) -> None:
    """Cases c and f have μ = λ_s/|λ_b| < 1 (0.19 and 0.77), where the instanton reaches the
    saddle along its stable direction (`landscape_escape_time` computes the prefactor on f,
    with the arrival tail of the Maier–Stein regime, and refuses it on c's switch noise). The
    exact MFPT still has the Arrhenius form τ = C e^{ΔΦ}(1 + O(1/ΔΦ)): the power ν of ΔΦ in its
    prefactor, fitted from the references over ΔΦ = 6–24, is 0 within `MS_EXPONENT_BAND`. On c
    this excludes the anomalous powers a WKB prefactor cut off near the saddle would give:
    ΔΦ^((1−μ)/2) = ΔΦ^0.41 (the transport integral's divergence, F → |λ_b| − λ_s, cut where the
    instanton is √ε from the separatrix) and ΔΦ^((1/μ−1)/2) = ΔΦ^2.1 (cut at √ε from the
    saddle). On f, (1 − μ)/2 = 0.11 is too close to the band to be excluded by this fit."""
    lam_b, lam_s = np.linalg.eigvalsh(CASES[key].hess_saddle())
    mu = lam_s / abs(lam_b)
    assert mu < 1
    exponents = _prefactor_exponents(key, MS_BARRIERS, levels=2)
    assert all(abs(nu) < MS_EXPONENT_BAND for nu in exponents), exponents
    if key == "c":
        for anomalous in ((1 - mu) / 2, (1 / mu - 1) / 2):
            assert all(abs(nu - anomalous) > 3 * MS_EXPONENT_BAND for nu in exponents)


# --------------------------------------------------------------------------------------------
# landscape_escape_time against the references (the lead merges the function)
# --------------------------------------------------------------------------------------------


#: Segments of the coarsest string where 32 are too few for the prefactor. Measured
#: 2026-12-02 on the Maier–Stein cases: I's dependence on the string comes from the first 1% of
#: the path from the minimum (I there −0.064, −0.050, −0.004, +0.0015 on f with 32, 64, 128,
#: 256 segments; the rest of the flow agrees to 0.001 from 64 on): log τ − ΔΦ = 0.557, 0.583,
#: 0.629, 0.636 on f (exact limit 0.646) and −0.324, −0.309, −0.307 on g (exact limit
#: −0.302) with 32, 64, 128 (and 256 on f).
_POINTS = {"f": 128, "g": 64}


def _landscape_tau(instance) -> tuple[float, float]:
    """(τ, ΔΦ) from landscape_escape_time given all the case's saddles (rates summed, the
    lowest barrier)."""
    assert LANDSCAPE is not None
    case = instance.case
    r = LANDSCAPE(
        case.loss,
        minimum=tuple(float(v) for v in case.minimum),
        saddle=[tuple(float(v) for v in saddle) for saddle in case.saddles],
        interpretation=instance.interpretation,
        dps=20,
        points=_POINTS.get(case.key, 32),
        **instance.landscape_kwargs,
    )
    return float(r.tau), float(r.barrier)


@needs_landscape
def test_several_saddles_in_one_call_sum_the_rates() -> None:
    """Case e (two saddles, white noise): one call with both saddles gives the sum of the two
    single-saddle rates, the lower barrier and both channels' results."""
    instance = CASES["e"].at(9.0)
    case = instance.case
    kwargs = {"minimum": tuple(case.minimum), "dps": 20, "points": 8}
    kwargs.update(instance.landscape_kwargs)
    both = LANDSCAPE(case.loss, saddle=[tuple(s) for s in case.saddles], **kwargs)
    singles = [LANDSCAPE(case.loss, saddle=tuple(s), **kwargs) for s in case.saddles]
    assert float(both.rate) == pytest.approx(sum(float(r.rate) for r in singles), rel=1e-15)
    assert float(both.barrier) == pytest.approx(min(float(r.barrier) for r in singles), rel=0)
    assert float(both.barrier) == pytest.approx(9.0, rel=1e-9)
    assert [float(r.tau) for r in both.channels] == [float(r.tau) for r in singles]
    assert both.to_dict()["channels"][1]["saddle"] == pytest.approx(list(singles[1].saddle))


def _landscape_errors(key: str, barriers: tuple[float, ...], levels: int) -> list[float]:
    errors = []
    for barrier in barriers:
        instance = CASES[key].at(barrier)
        tau, _ = _landscape_tau(instance)
        errors.append(tau / instance.exact(levels=levels).tau - 1)
    return errors


#: Case f passes the slope criterion but not the 6% at ΔΦ = 16 (strict: a fix shows up as
#: XPASS). Measured 2026-12-02 (points = 128, levels-3 references, with the flow's departure
#: model): τ/τ_exact − 1 = −19.9%, −14.6%, −11.6%, −9.6%, −7.2% at ΔΦ = 6, 8, 10, 12, 16,
#: slope −1.03 (before it: −20.4%, …, −7.8%, slope −0.98). The exact log τ − ΔΦ is itself
#: 0.064 above its limit at ΔΦ = 16 (a 1.9/ΔΦ^1.2 correction, 6.6% of τ), and the formula's
#: constant 0.635 is 0.011 below the exact limit 0.646 (the same with 64–256 points).
_MAIER_STEIN_ABOVE_SIX_PERCENT = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="case f (μ = 0.77, Maier-Stein regime): slope −1.03 but |τ/τ_exact − 1| = 7.2% at "
    "ΔΦ = 16 > 6%: the exact prefactor's own correction there is 6.6%",
)
#: Reference grid levels where levels = 2 is too coarse for the error measured: case b's
#: extrapolated MFPT at ΔΦ = 16 has a Richardson error of 2.7% at levels 2 (0.5% at 3), as large
#: as the formula's error there (3.6%), so it cannot decide the slope.
_REFERENCE_LEVELS = {"b": 3}


@needs_landscape
@pytest.mark.parametrize(
    "key",
    [
        "a",
        pytest.param("b", marks=pytest.mark.slow),  # levels-3 references: minutes
        pytest.param("c", marks=pytest.mark.slow),  # ~2 min: string and shooting per barrier
        "d",
        "e",
        pytest.param("f", marks=[_MAIER_STEIN_ABOVE_SIX_PERCENT, pytest.mark.slow]),  # ~2 min
        pytest.param("g", marks=pytest.mark.slow),  # ~1 min
    ],
)
def test_landscape_escape_time_converges_like_inverse_barrier(key: str) -> None:
    """|τ/τ_exact − 1| ∝ 1/ΔΦ (log-log slope in [−1.3, −0.7] over ΔΦ = 6, 10, 16) and below
    6% at ΔΦ = 16, on every case — where the aligned formula does not converge (c, d) or is
    far off (b, f). Measured on b (near-resonant saddle, λ_s/|λ_b| = 1.12; 2026-12-02, I =
    1.372 ± 0.018): τ/τ_exact = 0.859, 0.924, 0.947, slope −1.00 (with points = 64, I =
    1.390 ± 0.004: 0.874, 0.941, 0.964, slope −1.27)."""
    errors = _landscape_errors(key, BARRIERS, levels=_REFERENCE_LEVELS.get(key, 2))
    slope = loglog_slope(BARRIERS, errors)
    assert SLOPE_BAND[0] <= slope <= SLOPE_BAND[1], (errors, slope)
    assert abs(errors[-1]) < ERROR_AT_16, errors


@needs_landscape
@pytest.mark.slow
@pytest.mark.parametrize(
    "key",
    [
        "a",
        "b",
        "c",
        "d",
        "e",
        pytest.param("f", marks=_MAIER_STEIN_ABOVE_SIX_PERCENT),
        "g",
    ],
)
def test_landscape_escape_time_converges_like_inverse_barrier_slow(key: str) -> None:
    """ΔΦ = 6, 8, 12, 16 on levels-3 grids. Measured on b (2026-12-02): τ/τ_exact = 0.859,
    0.904, 0.936, 0.947, slope −1.00 (points = 64: 0.874, 0.920, 0.952, 0.964, slope −1.27)."""
    errors = _landscape_errors(key, SLOW_BARRIERS, levels=3)
    slope = loglog_slope(SLOW_BARRIERS, errors)
    assert SLOPE_BAND[0] <= slope <= SLOPE_BAND[1], (errors, slope)
    assert abs(errors[-1]) < ERROR_AT_16, errors


@needs_landscape
def test_landscape_escape_time_with_anisotropic_noise_at_one_barrier() -> None:
    """Case b unmarked at one barrier (its fine grid makes the three-barrier test slow): within
    the 1/ΔΦ band's size at ΔΦ = 10 (8%). Measured 0.925 with I = 1.372 ± 0.018 (this
    saddle has λ_s/|λ_b| = 1.12, so Q tends to Q_b like r^0.12: the tail of I beyond the last
    stop is the saddle's linear-model integral; it was 0.51 with the tail F/|λ_b| and 1.07,
    ±39%, with the tail F/κ from a decay rate)."""
    instance = CASES["b"].at(10.0)
    tau, _ = _landscape_tau(instance)
    assert tau / instance.exact(levels=2).tau == pytest.approx(1.0, abs=0.08)


@needs_landscape
def test_maier_stein_prefactor_at_one_barrier() -> None:
    """Case g (μ = 0.5, constant misaligned D) unmarked at one barrier: the prefactor in the
    Maier–Stein regime (tail of I integrated in the saddle's linear model) within the 1/ΔΦ
    band's size at ΔΦ = 10 (8%). Measured 2026-12-02: τ/τ_exact = 0.960 (points = 64)."""
    instance = CASES["g"].at(10.0)
    tau, _ = _landscape_tau(instance)
    assert tau / instance.exact(levels=2).tau == pytest.approx(1.0, abs=0.08)


@needs_landscape
def test_maier_stein_prefactor_with_switch_noise_at_one_barrier() -> None:
    """Case c (harmonic-switch SGD noise, μ = 0.19) unmarked at one barrier: the instanton shot
    from the saddle (numerics/_shooting.py) gives τ within 10% of the exact MFPT at ΔΦ = 10
    (measured 2026-12-02: 0.918 against levels-3 references; the exact log τ − ΔΦ there,
    −1.518, is itself 0.086 above the formula's constant −1.6035, inside the spread −1.597 …
    −1.618 of its extrapolations in 1/ΔΦ), and the barrier integrated along the shot
    trajectory (∫ p·ẋ dt, Hamilton's equations) agrees with gMAM's string to 10⁻⁴."""
    import re

    instance = CASES["c"].at(10.0)
    case = instance.case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ValidityWarning)
        r = LANDSCAPE(
            case.loss,
            minimum=tuple(case.minimum),
            saddle=tuple(case.saddles[0]),
            **instance.landscape_kwargs,
        )
    assert "shot backwards from the saddle's stable manifold" in r.method
    shot = float(re.search(r"barrier along the shot instanton ([0-9.]+)", r.method).group(1))
    assert shot == pytest.approx(float(r.barrier), rel=1e-4)
    assert float(r.tau) / instance.exact(levels=2).tau == pytest.approx(1.0, abs=0.10)


@needs_landscape
def test_shot_instanton_agrees_with_the_string_flow_in_the_maier_stein_regime() -> None:
    """Case g (μ = 0.5, constant misaligned D), two independent computations of the same
    constant log τ − ΔΦ: the Riccati flow along gMAM's string (what landscape_escape_time
    uses for a continuous D) and the instanton shot backwards from the saddle with V carried
    by the variational equations (numerics/_shooting.py, used for the switch noise). Measured
    2026-12-02: −0.30497 ± 2·10⁻⁵ shot (barrier along it 10.000283 against gMAM's 10.000239),
    −0.3089 with the string at points = 64 (−0.3247, −0.3070 at 32, 128): they agree to the
    string's discretisation error; the exact MFPT extrapolates to −0.302 … −0.308."""
    from scipy.linalg import solve_continuous_lyapunov

    from flatminima.numerics._action import _prepare, converged_path
    from flatminima.numerics._prefactor import SaddleModel
    from flatminima.numerics._shooting import shooting_non_gibbs

    instance = CASES["g"].at(10.0)
    case = instance.case
    kwargs = dict(instance.landscape_kwargs)
    noise = kwargs.pop("noise")
    problem = _prepare(
        case.loss, noise, tuple(case.minimum), tuple(case.saddles[0]),
        kwargs.get("diffusion"), None, None, None, None, None,
    )  # fmt: skip
    model, nm, a, b, h_a, h_b = problem
    path = converged_path(problem, 64, 1e-11, None, "test")
    sigma_a = solve_continuous_lyapunov(h_a, 2 * nm.field(a[None])[0])
    sigma_b = solve_continuous_lyapunov(h_b, 2 * nm.field(b[None])[0])
    lam = abs(float(np.linalg.eigvalsh(h_b)[0]))
    saddle = SaddleModel(nm.field(b[None])[0], h_b, sigma_b, lam)
    non_gibbs, error, _, detail = shooting_non_gibbs(
        model, nm, path.path, np.linalg.inv(sigma_a), 0.0, saddle, h_a
    )
    shot = (
        math.log(2 * math.pi / lam)
        + 0.5 * (np.linalg.slogdet(sigma_a)[1] - np.linalg.slogdet(sigma_b)[1])
        + non_gibbs
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ValidityWarning)
        r = LANDSCAPE(
            case.loss, minimum=tuple(case.minimum), saddle=tuple(case.saddles[0]), points=64,
            **instance.landscape_kwargs,
        )  # fmt: skip
    string = float(r.log_tau) - float(r.barrier)
    assert error < 1e-3
    assert shot == pytest.approx(string, abs=0.006)
    along = float(detail.rsplit("barrier along the shot instanton ", 1)[1])
    assert along == pytest.approx(float(r.barrier), rel=1e-4)


@needs_landscape
@pytest.mark.slow
def test_maier_stein_prefactor_error_falls_like_inverse_barrier_on_measured_noise() -> None:
    """Case f (μ = 0.77, measured state-dependent noise): |τ/τ_exact − 1| falls like 1/ΔΦ
    (log-log slope in [−1.3, −0.7] over ΔΦ = 6, 8, 12, 16, levels-3 references), the done-when
    of issue 10 for this case; the 6% at ΔΦ = 16 of the other cases is not met (see
    `_MAIER_STEIN_ABOVE_SIX_PERCENT`). Measured 2026-12-02 (points = 128): −19.9%, −14.6%,
    −9.6%, −7.2%, slope −1.03 (before the departure model: −20.4%, −15.1%, −10.2%, −7.8%)."""
    errors = _landscape_errors("f", SLOW_BARRIERS, levels=3)
    slope = loglog_slope(SLOW_BARRIERS, errors)
    assert SLOPE_BAND[0] <= slope <= SLOPE_BAND[1], (errors, slope)


@needs_landscape
@pytest.mark.parametrize("key", ["a", "e"])
def test_landscape_barrier_is_the_white_noise_barrier(key: str) -> None:
    """White noise: the quasi-potential barrier is ΔL/D exactly (the smallest one over saddles
    for e)."""
    instance = CASES[key].at(9.0)
    _, barrier = _landscape_tau(instance)
    assert barrier == pytest.approx(9.0, rel=1e-6)


@needs_landscape
@pytest.mark.parametrize(
    "key",
    [
        "b",
        pytest.param("c", marks=pytest.mark.slow),  # ~2 min
        pytest.param("f", marks=pytest.mark.slow),  # ~1 min
    ],
)
def test_landscape_barrier_matches_the_exponent_the_references_show(key: str) -> None:
    """The reported ΔΦ is the exponent of the exact MFPT: log τ_exact(ΔΦ₂) − log τ_exact(ΔΦ₁)
    over ΔΦ₂ − ΔΦ₁ (ΔΦ from landscape_escape_time at two noise levels) is 1 to within the
    change of the prefactor's 1/ΔΦ correction (5%)."""
    low, high = CASES[key].at(8.0), CASES[key].at(16.0)
    (_, b_low), (_, b_high) = _landscape_tau(low), _landscape_tau(high)
    slope = (math.log(high.exact(levels=2).tau) - math.log(low.exact(levels=2).tau)) / (
        b_high - b_low
    )
    assert slope == pytest.approx(1.0, abs=0.05)


@needs_landscape
@pytest.mark.slow
@pytest.mark.parametrize("interpretation", ["stratonovich", "anti-ito"])
def test_switch_noise_converges_like_inverse_barrier_for_other_interpretations(
    interpretation: str,
) -> None:
    """Case d with the harmonic switch, Stratonovich and anti-Itô (the jump term is
    (1 − α) log(D⁺_nn/D⁻_nn), half and none of Itô's): the same 1/ΔΦ criterion against
    `mfpt_2d` with that interpretation (measured −7.2%, −4.4%, −2.8%, slope −0.98; −5.8%,
    −4.0%, −2.7%, slope −0.78)."""
    errors = []
    for barrier in BARRIERS:
        instance = CASES["d"].at(barrier)
        instance.interpretation = interpretation
        tau, _ = _landscape_tau(instance)
        errors.append(tau / instance.exact(levels=2).tau - 1)
    slope = loglog_slope(BARRIERS, errors)
    assert SLOPE_BAND[0] <= slope <= SLOPE_BAND[1], (errors, slope)
    assert abs(errors[-1]) < ERROR_AT_16, errors


@needs_landscape
@pytest.mark.parametrize("key", ["c", "d"])
def test_discontinuous_callable_noise_is_refused_at_the_switch(key: str) -> None:
    """The same switch noise given as a callable D(θ) (whose jump the toolkit does not know)
    jumps on the surface x = c (c: √(8/3), d: −1/√3): a clear NoiseModelError that names the
    parameter, a point on that surface and the way out (noise='sgd' with switch=), before any
    path is relaxed."""
    instance = CASES[key].at(10.0)
    case = instance.case
    with pytest.raises(NoiseModelError, match="noise: expected a D") as info:
        LANDSCAPE(
            case.loss,
            instance.diffusion_at,
            minimum=tuple(case.minimum),
            saddle=tuple(case.saddles[0]),
            dps=20,
        )
    assert "switch=" in str(info.value)
    where = [float(v) for v in str(info.value).split("θ = [")[1].split("]")[0].split(",")]
    assert where[0] == pytest.approx(case.extra["switch"], abs=1e-6)


@needs_landscape
@pytest.mark.parametrize("key", ["c", "f"])
def test_string_barrier_is_the_exponent_the_references_show(key: str) -> None:
    """Cases c and f (Maier–Stein saddles): the quasi-potential
    barrier by the string (c: harmonic-switch noise, split at the switch; f: measured noise),
    at two noise levels, is the exponent of the exact MFPT (log τ_exact(ΔΦ₂) − log τ_exact(ΔΦ₁)
    over the barriers' difference is 1 within the prefactor's 1/ΔΦ drift, 5%), and the action
    converges with N (8, 16, 32 segments: order 2.9 on c, 1.9 on f; barrier 0.03% and 0.0004%
    from the one on 32, 64, 128)."""
    barriers = []
    for instance in (CASES[key].at(8.0), CASES[key].at(16.0)):
        path = _string(instance)
        assert path.order is not None and path.order > 1.5, path.actions
        barriers.append(path.barrier)
    low, high = CASES[key].at(8.0), CASES[key].at(16.0)
    slope = (math.log(high.exact(levels=2).tau) - math.log(low.exact(levels=2).tau)) / (
        barriers[1] - barriers[0]
    )
    assert slope == pytest.approx(1.0, abs=0.05)


@needs_landscape
def test_saddle_found_from_a_second_minimum() -> None:
    """Case a without its saddle: given the other minimum c, the saddle found on the
    minimum-energy path (white-noise string, highest point, Newton) is the case's saddle to
    1e-9 and τ is the one computed with the saddle given; neither given is a ParameterError
    naming ``saddle``."""
    from landscapes_any import _UC, _valley_point

    from flatminima.errors import ParameterError

    instance = CASES["a"].at(9.0)
    case = instance.case
    kwargs = {"minimum": tuple(case.minimum), "dps": 20, "points": 8}
    kwargs.update(instance.landscape_kwargs)
    found = LANDSCAPE(case.loss, other_minimum=tuple(_valley_point(_UC)), **kwargs)
    given = LANDSCAPE(case.loss, saddle=tuple(case.saddles[0]), **kwargs)
    assert np.linalg.norm(found.saddle - case.saddles[0]) < 1e-9
    assert float(found.tau) == pytest.approx(float(given.tau), rel=1e-12)
    with pytest.raises(ParameterError, match=r"^saddle: expected"):
        LANDSCAPE(case.loss, **kwargs)
