"""The same checks on every path, and simulations that say when they diverge (issue 16, items 4
and 5; issue 15's reproducers for mfpt_2d, simulate_escape and log_escape_time).

Each case here returned a number (or a raw numpy/Python exception) before: a non-symmetric
Hessian read as its symmetric part, a complex Hessian or loss losing its imaginary part, a
diverged simulation reporting a finite mean escape time, NaN paths reported as censored.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sympy as sp

from flatminima.errors import (
    BudgetError,
    DivergenceError,
    FlatMinimaError,
    HessianError,
    ParameterError,
    ShapeError,
)
from flatminima.numerics import (
    escape_time,
    landscape_escape_time,
    log_escape_time,
    mfpt_2d,
    simulate_escape,
)

SGD = {"lr": 0.1, "batch_size": 4, "s": 0.5, "barrier": 1}


@pytest.fixture(autouse=True)
def _complex_warnings_are_errors():
    """A ComplexWarning (numpy dropping an imaginary part) must never be the only signal."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        yield


# --- item 4: one set of matrix checks on every path ------------------------------------------


def test_log_escape_time_rejects_a_non_symmetric_hessian_like_escape_time() -> None:
    bad, saddle = [[2, 100], [0, 5]], [[-1, 0], [0, 3]]
    with pytest.raises(HessianError, match=r"hess_min.*symmetric"):
        escape_time("sgd", hess_min=bad, hess_saddle=saddle, **SGD)
    with pytest.raises(HessianError, match=r"hess_min.*symmetric"):
        log_escape_time("sgd", hess_min=bad, hess_saddle=saddle, **SGD)
    with pytest.raises(HessianError, match=r"hess_saddle.*symmetric"):
        log_escape_time("sgd", hess_min=[[2, 0], [0, 5]], hess_saddle=[[-1, 7], [0, 3]], **SGD)


def test_round_off_asymmetry_is_still_accepted_on_both_paths() -> None:
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    ha = (q * [1.0, 2.0, 3.0]) @ q.T
    hb = (q * [-1.0, 2.0, 4.0]) @ q.T
    ha[0, 1] *= 1 + 1e-14  # asymmetric by round-off only
    assert not np.array_equal(ha, ha.T)
    a = escape_time("white", hess_min=ha, hess_saddle=hb, diffusion=0.1, barrier=1, dps=15)
    b = log_escape_time("white", hess_min=ha, hess_saddle=hb, diffusion=0.1, barrier=1)
    assert float(b) == pytest.approx(float(a.log_tau), rel=1e-12)


@pytest.mark.parametrize("where", ["hess_min", "hess_saddle"])
def test_complex_hessians_are_errors_on_both_paths(where: str) -> None:
    ha = np.array([[2, 0.5j], [-0.5j, 5]])
    hb = np.array([[-1, 0.5j], [-0.5j, 3]])
    matrices = {"hess_min": [[2, 0], [0, 5]], "hess_saddle": [[-1, 0], [0, 3]]}
    matrices[where] = ha if where == "hess_min" else hb
    for function in (escape_time, log_escape_time):
        with pytest.raises(ParameterError, match=where):
            function("sgd", **matrices, **SGD)
    # a complex dtype with zero imaginary parts is still a complex input: refused, not cast
    matrices[where] = np.array(matrices[where], dtype=complex).real.astype(complex)
    with pytest.raises(ParameterError, match=where):
        log_escape_time("sgd", **matrices, **SGD)


def test_log_escape_time_refuses_nan_and_inf_entries_naming_the_matrix() -> None:
    with pytest.raises(ParameterError, match="hess_saddle"):
        log_escape_time("sgd", hess_min=[[2, 0], [0, 5]], hess_saddle=[[-1, 0], [0, np.nan]], **SGD)


GRID = {"bounds": ((-2, 2), (-1, 1)), "shape": (8, 8), "start": (-1, 0)}


def _double_well(x, y):
    return (x**2 - 1) ** 2 + y**2


def _absorb(x, y):
    return x > 0.5


def test_mfpt_2d_rejects_a_complex_loss_and_diffusion() -> None:
    with pytest.raises(ParameterError, match=r"loss.*real"):
        mfpt_2d(lambda x, y: _double_well(x, y) + 0.1j * x, 0.5, absorbing=_absorb, **GRID)
    with pytest.raises(ParameterError, match="diffusion"):
        mfpt_2d(_double_well, lambda x, y: 0.5 + 0j * x, absorbing=_absorb, **GRID)
    with pytest.raises(ParameterError, match="diffusion"):
        mfpt_2d(_double_well, 0.5 + 0.1j, absorbing=_absorb, **GRID)


def test_mfpt_2d_reproducers_of_issue_15() -> None:
    with pytest.raises(ShapeError, match="loss"):  # a callable returning a scalar
        mfpt_2d(lambda x, y: 1.0, 0.5, absorbing=_absorb, **GRID)
    with pytest.raises(ParameterError, match="absorbing"):  # a region containing start
        mfpt_2d(_double_well, 0.5, absorbing=lambda x, y: x < 0, **GRID)
    with pytest.raises(BudgetError, match=r"shape.*GiB"):  # 74.5 GiB tried before
        mfpt_2d(_double_well, 0.5, absorbing=_absorb, **{**GRID, "shape": (10**5, 10**5)})
    with pytest.raises(ParameterError, match="diffusion"):  # NaN D: blamed on D, not the loss
        mfpt_2d(_double_well, lambda x, y: np.full(x.shape, np.nan), absorbing=_absorb, **GRID)


def test_mfpt_2d_budget_can_be_raised_and_lowered() -> None:
    with pytest.raises(BudgetError, match="max_memory"):
        mfpt_2d(_double_well, 0.5, absorbing=_absorb, max_memory=1e3, **GRID)
    result = mfpt_2d(_double_well, 0.5, absorbing=_absorb, max_memory=1e9, **GRID)
    assert np.isfinite(result.value) and result.value > 0


# --- item 5: simulate_escape says when paths diverge ------------------------------------------


def _grad(z):
    return z * (z * z - 1)


SIM = {
    "start": [-1.0],
    "diffusion": 0.125,
    "n_paths": 200,
    "max_steps": 20_000,
    "saddle": [0.0],
    "direction": [1.0],
    "seed": 1,
}


def test_an_unstable_step_is_a_divergence_error_not_a_mean_time() -> None:
    """step = 10 on L = x⁴/4 − x²/2 (curvature 2 at the minimum): the update overshoots; the old
    code reported mean_time = 20.45 with nothing censored."""
    with pytest.raises(DivergenceError, match="step") as info:
        simulate_escape(_grad, step=10.0, **SIM)
    assert "curvature" in str(info.value)
    assert isinstance(info.value, FlatMinimaError)


def test_a_gradient_returning_inf_is_named() -> None:
    """The old code counted the inf paths as escaped: mean_time = 0.01."""
    with pytest.raises(ParameterError, match="grad"):
        simulate_escape(lambda z: z * np.inf, step=0.01, **SIM)


def test_a_nan_gradient_is_named() -> None:
    with pytest.raises(ParameterError, match="grad"):
        simulate_escape(lambda z: z * np.nan, step=0.01, **SIM)


def test_nan_appearing_during_the_run_is_a_divergence_error() -> None:
    """NaN only where paths go later (x > −0.2): the old code called them censored, mean inf."""

    def grad(z):
        return np.where(z > -0.2, np.nan, _grad(z))

    with pytest.raises(DivergenceError, match="non-finite"):
        simulate_escape(grad, step=0.01, **{**SIM, "margin": 0.3})


@pytest.mark.parametrize("name", ["saddle", "direction"])
def test_nan_in_the_escape_surface_is_named(name: str) -> None:
    with pytest.raises(ParameterError, match=name):
        simulate_escape(_grad, step=0.01, **{**SIM, name: [np.nan]})


@pytest.mark.parametrize(
    "diffusion",
    [
        lambda z: -np.ones(z.shape[0]),
        lambda z: np.full(z.shape[0], np.nan),
        lambda z: np.where(z[:, 0] > -0.8, -1.0, 0.125),  # negative only away from start
    ],
    ids=["negative", "nan", "negative-later"],
)
def test_a_bad_diffusion_callable_is_named(diffusion) -> None:
    with pytest.raises(ParameterError, match="diffusion"):
        simulate_escape(_grad, step=0.01, **{**SIM, "diffusion": diffusion})


def test_a_singular_matrix_diffusion_is_named_not_a_linalg_error() -> None:
    def diffusion(z):
        out = np.zeros((z.shape[0], 2, 2))
        out[:, 0, 0] = 0.1
        out[:, 1, 1] = np.where(z[:, 0] > -0.9, 0.0, 0.1)  # singular away from start
        return out

    with pytest.raises(ParameterError, match=r"diffusion.*positive definite"):
        simulate_escape(
            lambda z: z * np.array([1.0, 1.0]) * 2,
            start=[-1.0, 0.0],
            diffusion=diffusion,
            step=0.01,
            n_paths=50,
            max_steps=2000,
            escaped=lambda z: z[:, 0] > 5,
        )


def test_a_custom_escape_test_does_not_hide_nan_paths() -> None:
    with pytest.raises(DivergenceError):
        simulate_escape(
            lambda z: np.where(z > -0.5, np.nan, _grad(z)),
            start=[-1.0],
            diffusion=0.125,
            step=0.01,
            n_paths=100,
            max_steps=20_000,
            escaped=lambda z: z[:, 0] > 0.3,
            seed=2,
        )


def test_string_start_is_a_clear_error() -> None:
    with pytest.raises(ParameterError, match="start"):
        simulate_escape(_grad, step=0.01, **{**SIM, "start": "abc"})


def test_healthy_runs_are_unchanged() -> None:
    """Sanity: a stable step still gives an escape time near the exact MFPT (29.94 for this
    landscape, mfpt_1d in the simulate_escape docstring)."""
    sim = simulate_escape(
        _grad, step=0.01, **{**SIM, "n_paths": 400, "margin": 0.3, "max_steps": 100_000}
    )
    assert sim.n_censored == 0
    lo, hi = sim.mean_time_interval
    assert lo < 29.94 < hi


# --- issue 15: log_escape_time reproducers ------------------------------------------------------


def test_log_escape_time_takes_torch_tensors_as_parameters() -> None:
    """`barrier=torch.tensor([0.1])` raised `TypeError: new(): invalid data type 'str'`."""
    torch = pytest.importorskip("torch")
    kwargs = {"hess_min": 2.0, "hess_saddle": -1.0, "lr": 0.1, "batch_size": 4, "s": 0.5}
    # Itô, 1-D: log τ = log(2π/H_a) + (2BΔL/η)(s/H_a + (1 − s)/|H_b|)
    expected = np.log(2 * np.pi / 2.0) + 2 * 4 * 0.1 / 0.1 * (0.5 / 2.0 + 0.5 / 1.0)
    out = log_escape_time("sgd", barrier=torch.tensor([0.1], dtype=torch.float64), **kwargs)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    assert float(out[0]) == pytest.approx(expected, rel=1e-12)
    single = log_escape_time("sgd", barrier=torch.tensor([0.1]), **kwargs)  # float32 kept
    assert float(single[0]) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("change", "name"),
    [({"barrier": "abc"}, "barrier"), ({"lr": 1e-308}, "lr"), ({"barrier": 1e308}, "barrier")],
    ids=["word", "tiny-lr-overflows", "huge-barrier-overflows"],
)
def test_log_escape_time_never_returns_inf_or_raw_errors(change: dict, name: str) -> None:
    kwargs = {"hess_min": 2.0, "hess_saddle": -1.0, "lr": 0.1, "batch_size": 4, "s": 0.5}
    kwargs["barrier"] = 1
    with pytest.raises(ParameterError) as info:
        log_escape_time("sgd", **{**kwargs, **change})
    assert str(info.value).startswith(name)


def test_escape_time_computes_what_the_array_path_cannot() -> None:
    """The same lr = 1e-308 in mpmath: a finite log τ of ~6e308, as the message suggests."""
    r = escape_time(
        "sgd", hess_min=2, hess_saddle=-1, barrier=1, lr="1e-308", batch_size=4, s="0.5", dps=20
    )
    import mpmath

    with mpmath.workdps(40):
        expected = mpmath.log(mpmath.pi) + 8 / mpmath.mpf("1e-308") * mpmath.mpf("0.75")
        assert mpmath.almosteq(r.log_tau, expected, rel_eps=mpmath.mpf(10) ** -18)


def test_numpy_integers_are_integers_and_huge_sizes_are_budgeted() -> None:
    sim = simulate_escape(
        _grad, step=0.01, **{**SIM, "n_paths": np.int64(20), "max_steps": np.int32(500)}
    )
    assert sim.n_paths == 20
    with pytest.raises(BudgetError, match=r"n_paths.*GiB"):
        simulate_escape(_grad, step=0.01, **{**SIM, "n_paths": 10**12})
    result = mfpt_2d(_double_well, 0.5, absorbing=_absorb, **{**GRID, "shape": (np.int64(8), 8)})
    assert result.shapes[0] == (8, 8)
    with pytest.raises(BudgetError, match="levels"):
        mfpt_2d(_double_well, 0.5, absorbing=_absorb, levels=10**9, **GRID)


@pytest.mark.parametrize("name", ["minimum", "saddle"])
@pytest.mark.parametrize("value", [10**400, [10**400, 0]])
def test_a_point_past_float64_range_is_named_not_an_overflow(name: str, value: object) -> None:
    """An int too large for float64 as a point (found by the slow fuzz test: it raised a raw
    OverflowError from numpy for ``saddle``) is a ParameterError naming the point."""
    x, y = sp.symbols("x y")
    points = {"minimum": [-1, 0], "saddle": [0, 0], name: value}
    with pytest.raises(ParameterError, match=f"^{name}: expected a point with finite float64"):
        landscape_escape_time((x**2 - 1) ** 2 + y**2, diffusion="0.1", **points)
