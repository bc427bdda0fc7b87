"""Monte Carlo escape against the exact MFPTs: SDE paths and discrete SGD agree within their
confidence intervals; the finite-η deviation of discrete SGD is measured; censoring, seeds,
backends and errors behave."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from flatminima.errors import FlatMinimaError
from flatminima.numerics import landscape_case, mfpt_1d, mfpt_2d, simulate_escape

x = sp.Symbol("x")
DOUBLE_WELL = landscape_case("double-well").loss_in(x)


def grad(z):
    return z * (z * z - 1)  # = z³ − z; numpy's power() is ~60× slower than the products


KAPPA = 0.05
C = -1 / np.sqrt(3)
# SGD noise in the harmonic switch model: D = κ H_a = 2κ left of the inflection point,
# κ|H_b| = κ right of it
SWITCH = sp.Piecewise((2 * sp.Rational(1, 20), x < -1 / sp.sqrt(3)), (sp.Rational(1, 20), True))


def switch(z):
    return np.where(z[:, 0] < C, 2 * KAPPA, KAPPA)


@pytest.fixture(scope="module")
def exact_white() -> float:
    return float(mfpt_1d(DOUBLE_WELL, sp.Rational(1, 16), start=-1, end="0.3", dps=20).value)


@pytest.fixture(scope="module")
def exact_switch() -> float:
    return float(mfpt_1d(DOUBLE_WELL, SWITCH, start=-1, end="0.3", dps=20).value)


def assert_agrees(r, exact: float, sigmas: float = 3.0) -> None:
    """The exact value lies within `sigmas` standard errors of the Monte Carlo mean (the
    reported interval is ±1.96 standard errors). Three sigmas: a fixed seed is one draw."""
    lo, hi = r.mean_time_interval
    standard_error = (hi - lo) / (2 * 1.959964)
    z = (r.mean_time - exact) / standard_error
    assert abs(z) < sigmas, (r, exact, z)


def run(**kwargs):
    base = {
        "start": [-1.0],
        "saddle": [0.0],
        "direction": [1.0],
        "margin": 0.3,
        "n_paths": 1500,
        "seed": 11,
    }
    base.update(kwargs)
    return simulate_escape(grad, **base)


def test_sde_paths_agree_with_the_exact_mfpt(exact_white: float) -> None:
    r = run(diffusion=1 / 16, step=0.01, max_steps=1_000_000)
    assert r.n_censored == 0 and r.n_escaped == 1500
    assert_agrees(r, exact_white)


def test_discrete_sgd_at_small_lr_agrees_and_finite_lr_deviates(exact_switch: float) -> None:
    """Discrete SGD-shaped noise (step = η, D = κ H in the switch model) against the SDE's exact
    MFPT: at ηH_a = 0.02 within 3 standard errors; at ηH_a = 0.4 clearly faster (measured about
    −22%, see docs/numerics.md), and the deviation grows with η."""
    small = run(diffusion=switch, step=0.01, max_steps=2_000_000)
    assert_agrees(small, exact_switch)
    middle = run(diffusion=switch, step=0.1, max_steps=200_000)
    large = run(diffusion=switch, step=0.2, max_steps=100_000)
    assert large.mean_time_interval[1] < exact_switch  # significantly faster
    deviation_large = large.mean_time / exact_switch - 1
    assert -0.35 < deviation_large < -0.1
    assert large.mean_time < middle.mean_time < exact_switch


def test_two_dimensional_paths_agree_with_the_grid_solver() -> None:
    def loss(u, v):
        return (u**2 - 1) ** 2 + 0.5 * (1 + 0.5 * u**2) * (v - 0.5 * u**2) ** 2

    def gradient(z):
        u, v = z[:, 0], z[:, 1]
        w = v - 0.5 * u**2
        du = 4 * u * (u**2 - 1) + 0.5 * u * w**2 - (1 + 0.5 * u**2) * w * u
        dv = (1 + 0.5 * u**2) * w
        return np.stack([du, dv], axis=1)

    exact = mfpt_2d(
        loss,
        0.25,
        bounds=((-2.2, 0.6), (-1.5, 2.5)),
        shape=(70, 100),
        start=(-1.0, 0.5),
        absorbing=lambda u, v: u > 0.52,
    )
    r = simulate_escape(
        gradient,
        start=[-1.0, 0.5],
        diffusion=np.diag([0.25, 0.25]),
        step=0.004,
        n_paths=1000,
        max_steps=500_000,
        escaped=lambda z: z[:, 0] > 0.52,
        seed=5,
    )
    assert_agrees(r, exact.extrapolated)


def test_censored_paths_are_reported_not_averaged() -> None:
    r = run(diffusion=1 / 16, step=0.02, max_steps=2000, n_paths=400)
    assert r.n_censored > 0 and r.n_escaped + r.n_censored == 400
    assert r.times.size == r.n_escaped and np.all(r.times <= 2000 * 0.02)
    assert "censored" in r.method
    # the mean is 1/rate with the censored time at risk, not the mean of the escaped times
    assert r.mean_time > r.times.mean()


def test_renewal_estimator_agrees(exact_white: float) -> None:
    r = run(diffusion=1 / 16, step=0.02, max_steps=20_000, restart=True)
    assert_agrees(r, exact_white)


def test_same_seed_same_numbers_and_torch_backend() -> None:
    a = run(diffusion=1 / 16, step=0.05, max_steps=20_000, n_paths=200, seed=7)
    b = run(diffusion=1 / 16, step=0.05, max_steps=20_000, n_paths=200, seed=7)
    c = run(diffusion=1 / 16, step=0.05, max_steps=20_000, n_paths=200, seed=8)
    assert np.array_equal(a.times, b.times) and not np.array_equal(a.times, c.times)
    pytest.importorskip("torch")
    t1 = run(diffusion=1 / 16, step=0.05, max_steps=20_000, n_paths=300, seed=7, backend="torch")
    t2 = run(diffusion=1 / 16, step=0.05, max_steps=20_000, n_paths=300, seed=7, backend="torch")
    assert np.array_equal(t1.times, t2.times)
    n = run(diffusion=1 / 16, step=0.05, max_steps=20_000, n_paths=300, seed=7)
    # different generators, same physics: the two means agree within their intervals
    assert (
        t1.mean_time_interval[0] < n.mean_time_interval[1]
        and n.mean_time_interval[0] < t1.mean_time_interval[1]
    )


def test_interpretation_runs_the_alpha_sde_and_agrees_with_its_exact_mfpt() -> None:
    """A smooth state-dependent D (larger at the minimum than at the saddle) makes the Itô,
    Stratonovich and anti-Itô escape times differ by 60%; the simulated α-SDE (Itô with drift
    α∇·D) must match mfpt_1d for the same α, and the anti-Itô run must be far from Itô's."""
    smooth = sp.Rational(1, 20) * (sp.Rational(3, 2) - sp.tanh(3 * (x + sp.Rational(2, 5))) / 2)

    def d(z):
        return 0.05 * (1.5 - np.tanh(3 * (z[:, 0] + 0.4)) / 2)

    exact = {
        a: float(mfpt_1d(DOUBLE_WELL, smooth, start=-1, end="0.3", interpretation=a).value)
        for a in ("ito", "stratonovich", "anti-ito")
    }
    assert exact["anti-ito"] / exact["ito"] > 1.5
    for a in exact:
        r = run(diffusion=d, step=0.01, max_steps=400_000, interpretation=a, seed=3)
        assert_agrees(r, exact[a])
        assert r.n_censored == 0
    lo, hi = r.mean_time_interval  # anti-Itô: not the Itô value
    assert (r.mean_time - exact["ito"]) / ((hi - lo) / 3.92) > 10


def test_divergence_of_scalar_diagonal_and_full_diffusion_fields() -> None:
    """(∇·D)_i = Σ_j ∂_j D_ij by central differences, against the analytic divergence."""
    from flatminima.numerics._simulate import _divergence

    rng = np.random.default_rng(0)
    z = rng.normal(size=(7, 2))

    def scalar(p):
        return np.exp(p[:, 0]) * (2 + np.sin(p[:, 1]))

    def diagonal(p):
        return np.stack([p[:, 0] ** 2 + p[:, 1], np.cos(p[:, 0]) + 3 * p[:, 1] ** 3], axis=1)

    def full(p):
        a, b = p[:, 0], p[:, 1]
        return np.stack(
            [np.stack([a * b, np.sin(a)], -1), np.stack([np.sin(a) * b**2, a + b**2], -1)], 1
        )

    a, b = z[:, 0], z[:, 1]
    cases = [
        (scalar, np.stack([np.exp(a) * (2 + np.sin(b)), np.exp(a) * np.cos(b)], 1)),
        (diagonal, np.stack([2 * a, 9 * b**2], 1)),
        # row i: ∂_a D_i0 + ∂_b D_i1
        (full, np.stack([b + 0 * a, np.cos(a) * b**2 + 2 * b], 1)),
    ]
    for field, expected in cases:
        np.testing.assert_allclose(_divergence(field, 2)(z), expected, rtol=1e-7, atol=1e-8)
    torch = pytest.importorskip("torch")
    got = _divergence(lambda p: torch.exp(p[:, 0]) * (2 + torch.sin(p[:, 1])), 2)(
        torch.as_tensor(z)
    )
    np.testing.assert_allclose(got.numpy(), cases[0][1], rtol=1e-7)


def test_parallel_random_streams_are_deterministic_and_independent(monkeypatch) -> None:
    """The normals come from two SFC64 streams filled in parallel threads: the numbers must not
    depend on the threads (one worker gives the same), and the streams must be independent
    standard normals (not one stream twice)."""
    from concurrent.futures import ThreadPoolExecutor

    from flatminima.numerics import _engine_backend, _simulate

    ops = _simulate._Ops("numpy", 11, "cpu", None)
    block = ops.normal((64, 1024, 4))  # 2¹⁸ normals: the threaded path
    first, second = block.reshape(2, -1)
    n = first.size
    for half in (first, second):  # N(0, 1): mean, variance, kurtosis within 5 standard errors
        assert abs(half.mean()) < 5 / np.sqrt(n)
        assert abs(half.var() - 1) < 5 * np.sqrt(2 / n)
        assert abs(np.mean(half**4) - 3) < 5 * np.sqrt(96 / n)
    assert abs(np.corrcoef(first, second)[0, 1]) < 5 / np.sqrt(n)

    def paths(seed: int):
        return run(diffusion=1 / 16, step=0.05, max_steps=20_000, n_paths=2000, seed=seed)

    threaded = paths(5)
    serial_pool = ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(_engine_backend, "_rng_pool", lambda: serial_pool)
    assert np.array_equal(paths(5).times, threaded.times)
    again = _simulate._Ops("numpy", 11, "cpu", None).normal((64, 1024, 4))
    assert np.array_equal(again, block)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"step": 0}, "step"),
        ({"step": float("nan")}, "step"),
        ({"n_paths": 0}, "n_paths"),
        ({"max_steps": 1.5}, "max_steps"),
        ({"seed": -1}, "seed"),
        ({"diffusion": -1.0}, "diffusion"),
        ({"diffusion": np.eye(3)}, "diffusion"),
        ({"backend": "jax"}, "backend"),
        ({"interpretation": "sideways"}, "interpretation"),
        ({"interpretation": 1.5}, "interpretation"),
        ({"direction": [-1.0]}, "direction"),
        ({"saddle": None, "direction": None}, "escaped"),
        ({"confidence": 1.5}, "confidence"),
        ({"start": [float("nan")]}, "start"),
    ],
)
def test_bad_input(kwargs: dict, parameter: str) -> None:
    arguments = {"diffusion": 0.1, "step": 0.01, "max_steps": 10}
    arguments.update(kwargs)
    with pytest.raises(FlatMinimaError, match=parameter):
        run(**arguments)


@pytest.mark.parametrize("scale", [1e-308, 1e308])
def test_a_direction_of_any_size_is_the_same_plane(scale: float) -> None:
    """The escape plane depends on the direction's orientation only: [1e-308] (whose squared
    norm underflows to 0) and [1e308] (overflows) give the numbers of [1.0], not a NaN plane
    reported as a divergence."""
    kwargs = {"diffusion": 0.25, "step": 0.01, "max_steps": 2000, "n_paths": 20}
    unit = run(**kwargs)
    scaled = run(direction=[scale], **kwargs)
    assert scaled.to_dict() == unit.to_dict()
