"""Test landscapes: critical points and Hessians, the minibatch noise covariance, the C¹ joins,
and the identity the sharpness experiments rest on (L_k with step η ≡ L with step kη)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from flatminima.errors import FlatMinimaError
from flatminima.validation import landscape
from flatminima.validation._dynamics import _stepper
from flatminima.validation._landscapes import minibatch_noise_table


@pytest.mark.parametrize("name", ["double-well", "styblinski-tang-1d", "styblinski-tang-2d"])
def test_critical_points_and_hessians(name: str) -> None:
    land = landscape(name)
    points = [land.minimum, *land.saddles]
    hessians = [land.hess_min, *land.hess_saddles]
    for point, hessian in zip(points, hessians, strict=True):
        x = torch.tensor([point], dtype=torch.float64)
        assert torch.allclose(land.grad(x), torch.zeros_like(x), atol=1e-10)
        h = 1e-5  # finite-difference Hessian of the loss, independent of the analytic gradient
        fd = np.zeros((land.dim, land.dim))
        for i in range(land.dim):
            for j in range(land.dim):
                e_i, e_j = torch.zeros_like(x), torch.zeros_like(x)
                e_i[0, i], e_j[0, j] = h, h
                f = land.loss
                fd[i, j] = float(
                    f(x + e_i + e_j) - f(x + e_i - e_j) - f(x - e_i + e_j) + f(x - e_i - e_j)
                ) / (4 * h * h)
        assert np.allclose(fd, hessian, rtol=1e-4, atol=1e-4)
    for saddle, barrier in zip(land.saddles, land.barriers, strict=True):
        delta = float(
            land.loss(torch.tensor([saddle], dtype=torch.float64))
            - land.loss(torch.tensor([land.minimum], dtype=torch.float64))
        )
        assert delta == pytest.approx(barrier, rel=1e-12)


def test_flat_sharp_is_c1_and_has_equal_depths() -> None:
    flat, sharp = landscape("flat-sharp", which="flat"), landscape("flat-sharp", which="sharp")
    eps = 1e-9
    for junction in (flat.switch[0], sharp.switch[0]):  # where the parabolas meet
        left = torch.tensor([[junction - eps]], dtype=torch.float64)
        right = torch.tensor([[junction + eps]], dtype=torch.float64)
        assert abs(float(flat.loss(left) - flat.loss(right))) < 1e-7  # continuous
        assert abs(float(flat.grad(left) - flat.grad(right))) < 1e-7  # and so is the slope (C¹)
    x = torch.linspace(-3, 3, 20001, dtype=torch.float64)[:, None]
    loss, grad = flat.loss(x), flat.grad(x)[:, 0]
    numeric = (loss[2:] - loss[:-2]) / (x[2:, 0] - x[:-2, 0])
    # central differences are exact on a parabola; across a junction they are off by h·ΔH/4
    assert torch.allclose(numeric, grad[1:-1], atol=3e-4 * 4 / 4 + 1e-9)
    depth = float(flat.loss(torch.tensor([flat.minimum], dtype=torch.float64)))
    assert depth == pytest.approx(
        float(sharp.loss(torch.tensor([sharp.minimum], dtype=torch.float64))), abs=1e-12
    )


def test_minibatch_noise_covariance_is_lambda_h_switch_over_b() -> None:
    """The gradient noise of real minibatches at a fixed point: covariance λ·H_switch/B."""
    land = landscape("styblinski-tang-2d")
    lam, batch, draws = 0.01, 8, 200_000
    point = torch.tensor([[2.0, 0.5]], dtype=torch.float64)  # a's side in x, b's side in y
    table = minibatch_noise_table(4096, 2, seed=5)
    generator = torch.Generator().manual_seed(1)
    idx = torch.randint(4096, (draws, batch), generator=generator)
    noise = table[idx].mean(1) * torch.sqrt(lam * land.noise_curvature(point.expand(draws, 2)))
    covariance = np.cov(noise.numpy().T)
    expected = np.diag([lam * land.noise_min[0], lam * land.noise_saddle[1]]) / batch
    assert np.allclose(np.diag(covariance), np.diag(expected), rtol=0.02)
    assert abs(covariance[0, 1]) < 0.02 * math.sqrt(expected[0, 0] * expected[1, 1])
    assert torch.allclose(table.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("noise", ["sgd", "white"])
def test_sharpness_is_step_size(noise: str) -> None:
    """SGD (or white-noise GD) on L_k(θ) = L(√kθ) with step η, mapped by u = √kθ, is the same
    update on L with step kη, draw for draw."""
    land = landscape("double-well")
    k, eta, lam, batch, diffusion = 2.5, 0.1, 0.5, 4, 0.01
    step_u = _stepper(
        land,
        noise,
        k * eta,
        lam,
        batch,
        diffusion,
        4096,
        7,
        torch.Generator().manual_seed(3),
        torch.float64,
        torch.device("cpu"),
    )
    generator = torch.Generator().manual_seed(3)
    table = minibatch_noise_table(4096, 1, 7 + 1_000_003)
    u = torch.full((64, 1), -1.0, dtype=torch.float64)
    theta = u / math.sqrt(k)
    for _ in range(50):
        u = step_u(u)
        # the update on L_k written out: ∇_θ ℓ_i(√kθ) = √k ℓ_i'(√kθ)
        z = math.sqrt(k) * theta
        if noise == "sgd":
            idx = torch.randint(4096, (64, batch), generator=generator)
            g = math.sqrt(k) * (
                lam * land.grad(z) + table[idx].mean(1) * torch.sqrt(lam * land.noise_curvature(z))
            )
            theta = theta - eta * g
        else:
            # white noise of the same D on L_k in θ: √(2Dη); in u it is √k·√(2Dη) = √(2D·kη)
            g = math.sqrt(k) * lam * land.grad(z)
            theta = (
                theta
                - eta * g
                + math.sqrt(2 * diffusion * eta)
                * torch.randn(theta.shape, generator=generator, dtype=torch.float64)
            )
    assert torch.allclose(u, math.sqrt(k) * theta, atol=1e-12)


def test_unknown_landscape() -> None:
    with pytest.raises(FlatMinimaError, match="landscape"):
        landscape("rosenbrock")
    # an unhashable name is the same one-line error, not a TypeError from the dict lookup
    with pytest.raises(FlatMinimaError, match=r"landscape: expected one of \['double-well'"):
        landscape(["double-well"])  # type: ignore[arg-type]
    with pytest.raises(FlatMinimaError, match="which"):
        landscape("flat-sharp", which="middle")
