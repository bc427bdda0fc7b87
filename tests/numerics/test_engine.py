"""The escape engine's pieces against independent references: the stepper's weak order on
linear SDEs with exact moments (fitted slope of the weak error against the step, as diffrax's
tests do), each stopping event on hand-computed points, the estimators' censoring, burn-in and
zero-exposure rules and the exact Poisson interval against hand-computed values, and the three
former Monte Carlo loops running through the one engine."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import expm, solve_continuous_lyapunov

from flatminima.errors import DivergenceError, FlatMinimaError, ParameterError
from flatminima.numerics._engine import (
    Custom,
    Distance,
    EulerMaruyama,
    FirstPassage,
    LevelSet,
    LossJump,
    Ops,
    Plane,
    Renewal,
    SDEProblem,
    mean_escape_time,
    poisson_rate_interval,
    rate_estimate,
    run_escape,
)
from flatminima.numerics._engine_events import NonFinitePaths

# --- stepper: weak order 1 ------------------------------------------------------------------

STEPS = (0.2, 0.1, 0.05, 0.025)
T = 1.0
U = np.array([0.8, -0.6])


def _linear_case():
    """dX = −A X dt + √(2D) dW in 2-D, A rotated and anisotropic (eigenvalues 1, 2), D a full
    matrix not aligned with A: E[X_T] = e^{−AT} x0, Cov = Σ∞ − e^{−AT} Σ∞ e^{−AT} with
    AΣ∞ + Σ∞A = 2D (scipy's expm and Lyapunov solver). Returns the problem, x0 and the exact
    E[X_T·u], E[(X_T·u)²]."""
    c, s = math.cos(0.5), math.sin(0.5)
    rotation = np.array([[c, -s], [s, c]])
    a = np.ascontiguousarray(rotation @ np.diag([1.0, 2.0]) @ rotation.T)
    d = 0.3 * np.array([[0.3, 0.1], [0.1, 0.2]])
    x0 = np.array([1.5, -0.5])
    propagator = expm(-a * T)
    mean = propagator @ x0
    stationary = solve_continuous_lyapunov(a, 2 * d)
    covariance = stationary - propagator @ stationary @ propagator.T
    exact = np.array([mean @ U, (mean @ U) ** 2 + U @ covariance @ U])
    return SDEProblem(lambda x: x @ a, d), x0, exact


def _moments(problem: SDEProblem, x0: np.ndarray, h: float, n: int, seed: int, backend: str):
    """Monte Carlo E[X_T·u], E[(X_T·u)²] and their standard errors, by the engine's stepper."""
    ops = Ops(backend, seed)
    stepper = EulerMaruyama(problem, ops, h, x0.size)
    x = ops.array(np.broadcast_to(x0, (n, x0.size)).copy())
    if backend == "torch":
        import torch

        a = torch.as_tensor(problem.grad(np.eye(2)))
        stepper.grad = lambda z: z @ a
    for _ in range(round(T / h)):
        x = stepper.step(x)
    projection = ops.to_numpy(x) @ U
    values = (projection, projection**2)
    return (
        np.array([v.mean() for v in values]),
        np.array([v.std() / math.sqrt(n) for v in values]),
    )


def _slope(steps, errors) -> float:
    return float(np.polyfit(np.log(steps), np.log(np.abs(errors)), 1)[0])


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_euler_maruyama_has_weak_order_one(backend: str) -> None:
    """Weak error |E f(X_T^h) − E f(X_T)| for f(x) = x·u and (x·u)² at h = 0.2 … 0.025: the
    fitted slope of log error against log h is 1 within ±0.2, and at the finest step the
    error is still 4 standard errors above the Monte Carlo noise (else the slope would be
    noise)."""
    if backend == "torch":
        pytest.importorskip("torch")
    problem, x0, exact = _linear_case()
    errors, noise = [], []
    for i, h in enumerate(STEPS):
        measured, standard_error = _moments(problem, x0, h, 200_000, 100 + i, backend)
        errors.append(measured - exact)
        noise.append(standard_error)
    errors_arr, noise_arr = np.array(errors), np.array(noise)
    for j, name in enumerate(("E[X·u]", "E[(X·u)²]")):
        assert abs(errors_arr[-1, j]) > 4 * noise_arr[-1, j], (name, errors_arr[:, j])
        slope = _slope(STEPS, errors_arr[:, j])
        assert 0.8 < slope < 1.2, (name, slope, errors_arr[:, j])


def test_weak_error_of_a_wrong_noise_scale_does_not_vanish() -> None:
    """The order test can fail: a stepper with √(hD) instead of √(2hD) keeps an O(1) error in
    E[(X·u)²] (its fitted slope is outside the band, its finest error far above the noise)."""
    problem, x0, exact = _linear_case()
    wrong = SDEProblem(problem.grad, problem.diffusion / 2)
    runs = [_moments(wrong, x0, h, 50_000, 7, "numpy") for h in STEPS]
    errors = [measured[1] - exact[1] for measured, _ in runs]
    assert not 0.8 < _slope(STEPS, errors) < 1.2
    assert abs(errors[-1]) > 10 * runs[-1][1][1]


# --- stopping events ------------------------------------------------------------------------


def test_plane_event_on_hand_computed_points() -> None:
    point, normal = np.array([1.0, 2.0]), np.array([3.0, 4.0]) / 5
    # projections (x − point)·n: 0, 1, 0.5 (on the margin: not beyond), −1, 0.6
    x = np.array([[1.0, 2.0], [1.6, 2.8], [1.3, 2.4], [0.4, 1.2], [1.0, 2.75]])
    np.testing.assert_array_equal(Plane(point, normal, 0.5)(x), [False, True, False, False, True])
    bad = Plane(point, normal, 0.5, guard=True)
    with pytest.raises(DivergenceError, match="step 3"):
        run_escape(x, _nan_at(3), bad, FirstPassage(Ops("numpy", 0), 5, 1.0), max_steps=5)


def test_a_guard_tells_an_overflow_of_finite_paths_from_a_diverged_path() -> None:
    """Finite coordinates whose projection (or squared distance) overflows to inf are beyond the
    surface, not diverged paths; a NaN or ±inf coordinate still is one (numpy and torch)."""
    backends = [np]
    try:
        import torch
    except ImportError:
        pass
    else:
        backends.append(torch)
    for xp in backends:
        _overflowing_events(xp)


def _overflowing_events(xp) -> None:
    with np.errstate(over="ignore", invalid="ignore"):  # the overflows are the point here

        def array(value):
            return xp.asarray(np.asarray(value, dtype=float))

        plane = Plane(array([0.0, 0.0]), array([0.6, 0.8]), 1.0, guard=True)
        # 0.6·1.5e308 + 0.8·1.5e308 = 2.1e308 overflows; −2.1e308 too; the third is 1.4
        far = array([[1.5e308, 1.5e308], [-1.5e308, -1.5e308], [1.0, 1.0]])
        assert np.asarray(plane(far)).tolist() == [True, False, True]
        distance = Distance(array([0.0, 0.0]), 3.0, guard=True)  # |x|² = 2e400 overflows
        assert np.asarray(distance(array([[1e200, 1e200], [1.0, 1.0]]))).tolist() == [True, False]
        for bad in ([[np.inf, 0.0], [1.0, 1.0]], [[1.0, np.nan], [1.0, 1.0]]):
            for event in (plane, distance):
                with pytest.raises(NonFinitePaths):
                    event(array(bad))


def _nan_at(step: int):
    calls = {"k": 0}

    def step_fn(x):
        calls["k"] += 1
        if calls["k"] == step:
            x = x.copy()
            x[1, 0] = np.nan
        return x

    return step_fn


def test_level_set_distance_and_custom_events() -> None:
    x = np.array([[1.0, 0.0], [0.0, 0.8], [0.5, 0.5], [1.0, 1.0], [3.0, 3.0]])
    # f = x₀² + 2x₁²: 1, 1.28, 0.75, 3, 27 against level 1 (strictly above)
    level = LevelSet(lambda z: z[:, 0] ** 2 + 2 * z[:, 1] ** 2, 1.0)
    np.testing.assert_array_equal(level(x), [False, True, False, True, True])
    # distances from (1, 1): 1, √1.04 ≈ 1.02, √0.5, 0, √8 against radius 1.01
    distance = Distance(np.array([1.0, 1.0]), 1.01)
    np.testing.assert_array_equal(distance(x), [False, True, False, False, True])
    custom = Custom(lambda z: z[:, 0] > 0.75, guard=True)
    np.testing.assert_array_equal(custom(x), [True, False, False, True, True])
    with pytest.raises(Exception, match="non-finite"):
        custom(np.array([[np.inf, 0.0]]))


def test_loss_jump_with_and_without_a_screen() -> None:
    torch = pytest.importorskip("torch")
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.2, 0.1], [0.99, 0.1]])

    def loss(z):
        return (z * z).sum(1) + 0.5  # 0.5, 1.5, 2.5, 0.55, 1.4901

    exact = LossJump(loss, 0.5, 0.99)  # jump > 0.99: rows 1, 2 and 4 (0.9901)
    expected = [False, True, True, False, True]
    assert exact(x).tolist() == expected and exact.exact_rows == 5
    # a screen off by up to 0.05 with band 0.1: rows whose screened jump is > 0.89 are checked
    # exactly (rows 1, 2, 4); rows 0 and 3 never are
    screened = LossJump(loss, 0.5, 0.99, screen=lambda z: loss(z) + 0.05, band=0.1)
    assert screened(x).tolist() == expected and screened.exact_rows == 3


# --- estimators -----------------------------------------------------------------------------


def _walk(speeds):
    """A deterministic stepper: the row whose second coordinate is i moves by speeds[i] per
    step along the first axis (rows are removed when they escape)."""
    v = np.array(speeds, dtype=float)

    def step(x):
        x[:, 0] += v[np.rint(x[:, 1]).astype(int)]
        return x

    return step


def _first_passage(check_every: int = 1, speeds=(2.0, 1.0, 0.0), max_steps: int = 20):
    ops = Ops("numpy", 0)
    x = np.zeros((3, 2))
    x[:, 1] = np.arange(3)  # the second coordinate names the row (rows are removed on escape)
    estimator = FirstPassage(ops, 3, 0.5)
    return run_escape(
        x,
        _walk(speeds),
        Plane(np.array([10.0, 0.0]), np.array([1.0, 0.0]), 0.0),
        estimator,
        max_steps=max_steps,
        check_every=check_every,
        unit=0.5,
    )


def test_first_passage_censors_and_rounds_to_the_check() -> None:
    """Speeds 2, 1, 0 towards the plane x₀ = 10: escapes at steps 6 and 11 (x > 10), the third
    path is censored at step 20; unit 0.5. Exposure (6 + 11 + 20)·0.5 = 18.5."""
    counts = _first_passage()
    np.testing.assert_array_equal(counts.times, [3.0, 5.5])
    assert (counts.escapes, counts.censored, counts.steps) == (2, 1, 20)
    assert counts.exposure == 18.5 and counts.stopped == "max_steps"
    rate = rate_estimate(counts.escapes, counts.exposure)
    mean, (lo, hi), how = mean_escape_time(counts, rate, 0.95, restart=False)
    assert mean == pytest.approx(9.25) and "1 censored" in how  # 1/rate, not mean(3, 5.5)
    assert lo == pytest.approx(1 / rate.rate_high) and hi == pytest.approx(1 / rate.rate_low)
    # checked every 4 steps: the escapes are seen at steps 8 and 12
    np.testing.assert_array_equal(_first_passage(check_every=4).times, [4.0, 6.0])
    # everything escapes: the sample mean of 3 and 5.5 with a normal interval
    done = _first_passage(speeds=(2.0, 1.0, 4.0))
    assert done.stopped == "all escaped" and done.steps == 11 and done.censored == 0
    rate = rate_estimate(done.escapes, done.exposure)
    mean, (lo, hi), how = mean_escape_time(done, rate, 0.95, restart=False)
    times = np.array([3.0, 5.5, 1.5])  # speed 4 escapes at step 3
    half = 1.959963984540054 * times.std(ddof=1) / math.sqrt(3)
    assert mean == pytest.approx(times.mean())
    assert (lo, hi) == pytest.approx((times.mean() - half, times.mean() + half))


def _renewal(burn_in: int, target: int | None, max_steps: int = 20):
    ops = Ops("numpy", 0)
    estimator = Renewal(ops, 3, np.zeros(1), 2.0, burn_in=burn_in, target=target)

    def step(x):
        x += 1.0
        return x

    return run_escape(
        np.zeros((3, 1)), step, Plane(np.zeros(1), np.ones(1), 3.0), estimator, max_steps=max_steps
    )


def test_renewal_counts_after_the_burn_in_and_stops_at_the_target() -> None:
    """Every path passes x > 3 at steps 4, 8, 12, ... and restarts at 0. Burn-in 5: escapes
    at 8, 12, 16, 20 count, 4 × 3 paths; exposure 3 × 15 × unit 2 = 90. Target 5: the run
    stops at step 12 (6 escapes counted)."""
    counts = _renewal(5, None)
    assert (counts.escapes, counts.exposure, counts.stopped) == (12, 90.0, "max_steps")
    early = _renewal(5, 5)
    assert (early.escapes, early.steps, early.exposure, early.stopped) == (6, 12, 42.0, "escapes")


def test_zero_exposure_and_zero_escapes() -> None:
    """Zero exposure (a horizon inside the burn-in) has no estimate: an error naming the
    horizon. Zero escapes in a positive exposure: rate 0, interval (0, −ln(0.025)/exposure),
    mean time ∞ with interval (exposure/−ln 0.025, ∞)."""
    counts = _renewal(burn_in=30, target=None)
    assert counts.exposure == 0
    with pytest.raises(ParameterError, match="max_steps"):
        rate_estimate(counts.escapes, counts.exposure)
    with pytest.raises(FlatMinimaError, match="horizon_steps"):
        rate_estimate(0, 0.0, horizon="horizon_steps")
    none = _renewal(burn_in=0, target=None, max_steps=3)  # nobody reaches x > 3 in 3 steps
    rate = rate_estimate(none.escapes, none.exposure)
    assert none.exposure == 18.0 and rate.rate == 0 and rate.rate_low == 0
    assert rate.rate_high == pytest.approx(-math.log(0.025) / 18.0, rel=1e-12)
    mean, (lo, hi), _ = mean_escape_time(none, rate, 0.95, restart=True)
    assert mean == math.inf and hi == math.inf and lo == pytest.approx(18.0 / -math.log(0.025))


def test_poisson_interval_against_hand_computed_values() -> None:
    """Garwood: for one event the lower end solves P(N ≥ 1) = 1 − e^{−μ} = 0.025, the upper
    end P(N ≤ 1) = e^{−μ}(1 + μ) = 0.025 (solved here by bisection)."""
    lo, hi = poisson_rate_interval(1, 4.0, 0.95)
    assert lo == pytest.approx(-math.log(0.975) / 4.0, rel=1e-12)
    a, b = 1.0, 20.0
    for _ in range(200):
        mid = 0.5 * (a + b)
        a, b = (mid, b) if math.exp(-mid) * (1 + mid) > 0.025 else (a, mid)
    assert hi == pytest.approx(a / 4.0, rel=1e-10)


def test_minibatches_without_replacement_are_uniform_subsets_numpy() -> None:
    """numpy backend's Ops.subsets (Floyd's algorithm): no repeated index in a row and each of
    the C(7, 3) = 35 subsets equally likely (chi-square), as the torch backend's (tested in
    tests/validation/test_probe.py); DiscreteSGD draws them when ``replace`` is False."""
    from scipy import stats

    from flatminima.numerics._engine import DiscreteSGD, MinibatchProblem, Ops

    rows = Ops("numpy", 0).subsets(7, 70000, 3)
    assert rows.shape == (70000, 3) and rows.min() >= 0 and rows.max() < 7
    ordered = np.sort(rows, axis=1)
    assert np.all(np.diff(ordered, axis=1) > 0)
    _, counts = np.unique(ordered, axis=0, return_counts=True)
    assert counts.size == 35 and stats.chisquare(counts).pvalue > 1e-3
    seen: list[np.ndarray] = []
    problem = MinibatchProblem(
        lambda x, idx: seen.append(idx) or np.zeros_like(x), 5, 5, replace=False
    )
    DiscreteSGD(problem, Ops("numpy", 1), 0.1).step(np.zeros((4, 2)))
    assert np.all(np.sort(seen[0], axis=1) == np.arange(5))  # a whole permutation per row
