"""Parameter design for escape experiments on a landscape: pick η, λ and D so that the
quasi-potential barrier ΔΦ and the time-discretization parameter ηλH are where asked.

SGD: ΔΦ = (2B/η)·Q with Q = ΔL(s/H_a + (1 − s)/|H_b|) (independent of the loss scale λ), so
η = 2BQ/ΔΦ. White noise: ΔΦ = λΔL/D. The largest step multiplier (k_max for sharpness, the
largest η for a learning-rate sweep) fixes λ through h_max = k_max·η·λ·max|H| (docs/conventions.md §6:
keep it ≲ 0.05, the discrete chain runs hotter by about 1/(1 − hH/2)).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._landscapes import Landscape

__all__ = ["Design", "point_seed", "sgd_design", "white_design"]


def point_seed(*parts: Any) -> int:
    """A seed that depends only on what a point is (never on the worker that runs it)."""
    return zlib.crc32("|".join(map(str, parts)).encode()) & 0x7FFFFFFF


def _q(land: Landscape) -> float:
    """min over saddles of ΔL(s/H_a + (1 − s)/|H_b|) along the escape direction."""
    values = []
    for hess_saddle, barrier, s in zip(
        land.hess_saddles, land.barriers, land.switch_fractions, strict=True
    ):
        vals, vecs = np.linalg.eigh(hess_saddle)
        e = vecs[:, 0]
        h_ae = float(e @ land.hess_min @ e)
        values.append(barrier * (s / h_ae + (1 - s) / -vals[0]))
    return min(values)


def _h_max(land: Landscape) -> float:
    return max(
        np.abs(np.linalg.eigvalsh(land.hess_min)).max(),
        *(np.abs(np.linalg.eigvalsh(h)).max() for h in land.hess_saddles),
    )


@dataclass(frozen=True)
class Design:
    lr: float  # base learning rate η (k = 1, or the reference point)
    loss_scale: float  # λ
    batch_size: int | None
    diffusion: float | None


def sgd_design(
    land: Landscape,
    *,
    batch_size: int,
    barrier_phi: float,
    largest_step: float = 1.0,
    step_bound: float = 0.05,
) -> Design:
    """η so that ΔΦ = barrier_phi at step multiplier 1; λ so that the largest step keeps ηλH
    below ``step_bound``."""
    eta = 2 * batch_size * _q(land) / barrier_phi
    lam = step_bound / (largest_step * eta * _h_max(land))
    return Design(lr=eta, loss_scale=lam, batch_size=batch_size, diffusion=None)


def white_design(
    land: Landscape, *, barrier_phi: float, largest_step: float = 1.0, step_bound: float = 0.05
) -> Design:
    """η = 1, λ so that the largest step keeps ηλH below ``step_bound``, D = λΔL/barrier_phi."""
    lam = step_bound / (largest_step * _h_max(land))
    return Design(
        lr=1.0, loss_scale=lam, batch_size=None, diffusion=lam * min(land.barriers) / barrier_phi
    )
