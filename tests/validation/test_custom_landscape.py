"""A user's landscape (`custom_landscape`) in the escape measurement (`measure_rate`): computed
fields against closed forms, correlated (non-diagonal) minibatch noise against the exact
first-passage time, the matrix noise path against the rotated diagonal one, and bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch

from flatminima.errors import ParameterError, ShapeError
from flatminima.numerics import mfpt_1d, mfpt_2d
from flatminima.validation import custom_landscape, measure_rate

F64 = torch.float64
ANGLE = 0.5
C, S = math.cos(ANGLE), math.sin(ANGLE)
ROT = torch.tensor([[C, -S], [S, C]], dtype=F64)  # x = ROT @ (u, v)


def rotated_well(x: torch.Tensor) -> torch.Tensor:
    """(u² − 1)² + 2v² in coordinates rotated by 0.5 rad: not aligned with the axes."""
    u, v = C * x[:, 0] + S * x[:, 1], -S * x[:, 0] + C * x[:, 1]
    return (u**2 - 1) ** 2 + 2 * v**2


def aligned_well(x: torch.Tensor) -> torch.Tensor:
    return (x[:, 0] ** 2 - 1) ** 2 + 2 * x[:, 1] ** 2


def constant(factor: torch.Tensor):
    return lambda x: factor.expand(x.shape[0], *factor.shape)


def test_hessians_barrier_and_escape_surface_are_the_closed_forms() -> None:
    land = custom_landscape(rotated_well, minimum=(-C, -S), saddles=[(0.0, 0.0)])
    rot = ROT.numpy()
    assert land.dim == 2 and land.barriers == pytest.approx((1.0,), abs=1e-14)
    # L_uu = 12u² − 4: 8 at u = −1, −4 at the saddle; L_vv = 4
    np.testing.assert_allclose(land.hess_min, rot @ np.diag([8.0, 4.0]) @ rot.T, atol=1e-12)
    np.testing.assert_allclose(land.hess_saddles[0], rot @ np.diag([-4.0, 4.0]) @ rot.T, atol=1e-12)
    # the unstable direction u, pointing away from the minimum; margin 0.2·|s − a|
    np.testing.assert_allclose(land.escape_normals[0], (C, S), atol=1e-12)
    assert land.margin == pytest.approx(0.2)
    x = torch.tensor(
        [[0.19 * C, 0.19 * S], [0.21 * C, 0.21 * S], [0.3 * C - S, 0.3 * S + C]], dtype=F64
    )
    assert land.escaped(x).tolist() == [False, True, True]  # the last: far along v, u = 0.3


def test_hessian_noise_is_the_square_root_of_the_absolute_hessian() -> None:
    land = custom_landscape(rotated_well, minimum=(-C, -S), saddles=[(0.0, 0.0)], noise="hessian")
    x = torch.tensor([[-C, -S], [0.0, 0.0]], dtype=F64)
    factor = land.noise_factor_fn(x)
    rot = ROT.numpy()
    for k, diag in enumerate(([8.0, 4.0], [4.0, 4.0])):  # |H| at the minimum and the saddle
        want = rot @ np.diag(np.sqrt(diag)) @ rot.T
        np.testing.assert_allclose(factor[k].numpy(), want, atol=1e-12)


@pytest.mark.parametrize("diffusion", [0.25, 0.2])
def test_sgd_with_correlated_noise_matches_the_exact_first_passage(diffusion: float) -> None:
    """Minibatch SGD with a constant noise factor F = R·diag(σ_u, σ_u/2): correlated in x
    (off-diagonal FFᵀ), separable in (u, v). The escape is the passage of u to the margin, a
    1-D diffusion with D_u = ησ_u²/(2B); its exact mean first-passage time (mfpt_1d) gives the
    rate per iteration η/τ. ΔΦ = 4 and 5; η·L_uu = 0.04, so the time-discretisation bias is a
    few per cent: the exact rate must lie in the 95 % Poisson interval widened by 5 %."""
    lr, batch = 0.005, 1
    sigma_u = math.sqrt(2 * diffusion * batch / lr)
    factor = ROT @ torch.diag(torch.tensor([sigma_u, sigma_u / 2], dtype=F64))
    land = custom_landscape(
        rotated_well, minimum=(-C, -S), saddles=[(0.0, 0.0)], noise=constant(factor)
    )
    r = measure_rate(land, noise="sgd", lr=lr, batch_size=batch, target_escapes=400, seed=2)
    u = sp.Symbol("u")
    exact = lr / float(mfpt_1d((u**2 - 1) ** 2, diffusion, -1, land.margin, dps=15).tau)
    assert r.escapes >= 400
    assert r.rate_low / 1.05 < exact < r.rate_high * 1.05, (r.rate, exact)


def test_sgd_with_state_dependent_correlated_noise_on_a_curved_valley_matches_mfpt_2d() -> None:
    """Not separable, not aligned, not constant: the curved valley (x² − 1)² + 2(y − x²/2)²
    (minimum (−1, ½) with a non-diagonal Hessian, saddle at the origin) and a noise factor
    S(x) = σ[[1, 0.4 + 0.2x], [0, 0.7]] that correlates the coordinates and changes along the
    path. Reference: the exact mean first-passage time of the Itô SDE with
    D(x) = ηS(x)S(x)ᵀ/(2B) to the escape surface x > margin (`mfpt_2d`, levels 3; the
    discrete update evaluates S at the current point, hence Itô). Measured 0.99 of it
    (400 escapes, η·L_xx = 0.06); the exact rate must lie in the 95 % Poisson interval widened
    by 5 % for the time discretisation."""
    lr, batch, beta = 0.005, 1, 0.5
    sigma = math.sqrt(2 * 0.25 * batch / lr)

    def loss(x: torch.Tensor) -> torch.Tensor:
        return (x[:, 0] ** 2 - 1) ** 2 + 2 * (x[:, 1] - beta * x[:, 0] ** 2) ** 2

    def factor(x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], 2, 2, dtype=x.dtype, device=x.device)
        out[:, 0, 0], out[:, 1, 1] = sigma, 0.7 * sigma
        out[:, 0, 1] = sigma * (0.4 + 0.2 * x[:, 0])
        return out

    land = custom_landscape(
        loss, minimum=(-1.0, beta), saddles=[(0.0, 0.0)], noise=factor, margin=0.2
    )
    np.testing.assert_allclose(land.hess_min, [[12.0, 4.0], [4.0, 4.0]], atol=1e-12)
    r = measure_rate(land, noise="sgd", lr=lr, batch_size=batch, target_escapes=400, seed=4)

    def diffusion(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        s = np.zeros((*np.broadcast(x, y).shape, 2, 2))
        s[..., 0, 0], s[..., 1, 1], s[..., 0, 1] = sigma, 0.7 * sigma, sigma * (0.4 + 0.2 * x)
        return lr * np.einsum("...ij,...kj->...ik", s, s) / (2 * batch)

    exact = mfpt_2d(
        lambda x, y: (x**2 - 1) ** 2 + 2 * (y - beta * x**2) ** 2,
        diffusion,
        bounds=((-2.2, 1.0), (-1.5, 2.5)),  # the absorbing face x = 0.2 lies on cell faces
        shape=(32, 40),
        start=(-1.0, beta),
        absorbing=lambda x, y: x > 0.2,
        levels=3,
    )
    rate = lr / float(exact.tau)
    assert r.escapes >= 400
    assert r.rate_low / 1.05 < rate < r.rate_high * 1.05, (r.rate, rate)


def test_a_matrix_noise_factor_is_the_rotated_diagonal_one() -> None:
    """The same run in two frames: the aligned well with the diagonal factor (σ_u, σ_v) and the
    rotated well with R·diag(σ_u, σ_v). With the same seed both draw the same batches, so the
    rotated paths are the aligned ones rotated and the escapes agree (up to a rare crossing
    that rounding moves). Sᵀ instead of S (another covariance) would change them."""
    sigma = torch.tensor([14.0, 3.0], dtype=F64)
    aligned = custom_landscape(
        aligned_well, minimum=(-1.0, 0.0), saddles=[(0.0, 0.0)], noise=constant(sigma)
    )
    rotated = custom_landscape(
        rotated_well,
        minimum=(-C, -S),
        saddles=[(0.0, 0.0)],
        noise=constant(ROT @ torch.diag(sigma)),
    )
    settings = dict(noise="sgd", lr=0.005, batch_size=2, target_escapes=200, seed=5)
    a = measure_rate(aligned, **settings)  # type: ignore[arg-type]
    b = measure_rate(rotated, **settings)  # type: ignore[arg-type]
    assert a.escapes >= 200
    assert abs(a.escapes - b.escapes) <= 2 and a.steps == b.steps, (a, b)
    transposed = custom_landscape(
        rotated_well,
        minimum=(-C, -S),
        saddles=[(0.0, 0.0)],
        noise=constant(torch.diag(sigma) @ ROT.T),
    )
    c = measure_rate(transposed, **settings)  # type: ignore[arg-type]
    assert c.steps != a.steps or abs(c.escapes - a.escapes) > 10


def test_white_noise_needs_no_noise_model_and_sgd_is_refused_without_one() -> None:
    land = custom_landscape(rotated_well, minimum=(-C, -S), saddles=[(0.0, 0.0)])
    r = measure_rate(land, noise="white", lr=0.005, diffusion=0.25, target_escapes=50, seed=1)
    assert r.escapes >= 50
    with pytest.raises(ParameterError, match=r"^landscape: .*noise="):
        measure_rate(land, noise="sgd", lr=0.005, batch_size=1)


BAD = [
    ({"minimum": (-0.9, 0.0)}, ParameterError, r"^minimum: expected a critical point .*\|∇L\| = "),
    ({"minimum": (0.0, 0.0)}, ParameterError, r"^minimum: expected a minimum \(positive definite"),
    (
        {"minimum": (-1.0,), "saddles": [(0.0,)]},
        ParameterError,
        r"^minimum: expected a point the loss accepts as a \(1, 1\) tensor",
    ),
    ({"saddles": [(-1.0, 0.0)]}, ParameterError, r"^saddles: expected index-1 saddles"),
    (
        {"saddles": (0.0, 0.0)},
        ShapeError,
        r"^saddles: expected a point with the minimum's 2 coordinates",
    ),
    ({"saddles": []}, ParameterError, r"^saddles: expected a non-empty list"),
    (
        {"saddles": [(0.0, 0.0, 0.0)]},
        ShapeError,
        r"^saddles: expected a point with the minimum's 2 coordinates",
    ),
    ({"noise": "hessain"}, ParameterError, r"^noise: expected None, 'hessian' or a callable"),
    (
        {"noise": lambda x: torch.ones(x.shape[0], 3)},
        ShapeError,
        r"^noise: expected S\(x\) of shape",
    ),
    ({"noise": lambda x: torch.full((x.shape[0], 2), math.nan)}, ParameterError, r"^noise: "),
    ({"noise": lambda x: torch.eye(2, dtype=F64)}, ShapeError, r"^noise: expected S\(x\) of shape"),
    (
        {"noise": lambda x: x[:, 5]},
        ParameterError,
        r"^noise: expected a noise factor S\(x\) that can be evaluated",
    ),
    ({"margin": -0.1}, ParameterError, r"^margin: expected a positive finite distance"),
]


@pytest.mark.parametrize(("change", "error", "message"), BAD)
def test_bad_input_gets_a_one_line_error_naming_the_parameter(change, error, message) -> None:
    kwargs = {"minimum": (-1.0, 0.0), "saddles": [(0.0, 0.0)], **change}
    with pytest.raises(error, match=message) as info:
        custom_landscape(aligned_well, **kwargs)
    assert "\n" not in str(info.value)


def test_a_loss_of_the_wrong_shape_is_named() -> None:
    with pytest.raises(
        ShapeError, match=r"^loss: expected a function mapping an \(R, dim\) tensor"
    ):
        custom_landscape(lambda x: aligned_well(x).sum(), minimum=(-1.0, 0.0), saddles=[(0.0, 0.0)])


def test_docs_example_runs() -> None:
    from test_docs import run_blocks

    assert run_blocks(Path(__file__).resolve().parents[2] / "docs" / "validation.md") >= 2
