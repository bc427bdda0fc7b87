"""Parameter design for escape experiments on a landscape: pick η, λ and D so that the
quasi-potential barrier ΔΦ and the time-discretization parameter ηλH are where asked.

SGD: ΔΦ ∝ 1/η (independent of the loss scale λ), so η = ΔΦ(η = 1)/ΔΦ. White noise: ΔΦ ∝ 1/D.
Both quasi-potentials are the theory layer's (``flatminima.theory._formulas``). The largest step multiplier (k_max for sharpness, the
largest η for a learning-rate sweep) fixes λ through h_max = k_max·η·λ·max|H| (docs/conventions.md §6:
keep it ≲ 0.05, the discrete chain runs hotter by about 1/(1 − hH/2)).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from flatminima.theory._formulas import compiled_formula, formula

from ._landscapes import Landscape

__all__ = ["Design", "exact_kappa", "kappa", "point_seed", "sgd_design", "white_design"]


def point_seed(*parts: Any) -> int:
    """A seed that depends only on what a point is (never on the worker that runs it)."""
    return zlib.crc32("|".join(map(str, parts)).encode()) & 0x7FFFFFFF


def kappa(lr: float, batch_size: float) -> float:
    """The SGD noise scale κ = η/(2B) of the theory layer's SGD noise model (D = κ[H]⁺)."""
    return float(compiled_formula("kappa").value(eta=lr, B=batch_size))


def exact_kappa(lr: Any, batch_size: Any) -> Any:
    """κ = η/(2B) as an exact SymPy number, for exact η and B (Rationals, Integers)."""
    kappa_formula = formula("kappa")
    return kappa_formula.value.subs(
        dict(zip(kappa_formula.parameters, (lr, batch_size), strict=True))
    )


def _phi_at_unit_lr(land: Landscape, batch_size: int) -> float:
    """min over saddles of the SGD quasi-potential ΔΦ at η = 1 along the escape direction (the
    theory layer's formula, ∝ 1/η)."""
    phi = compiled_formula("quasi_potential_sgd")
    values = []
    for hess_saddle, barrier, s in zip(
        land.hess_saddles, land.barriers, land.switch_fractions, strict=True
    ):
        vals, vecs = np.linalg.eigh(hess_saddle)
        e = vecs[:, 0]
        h_ae = float(e @ land.hess_min @ e)
        values.append(
            float(phi.value(H_a=h_ae, H_b=-vals[0], Delta_L=barrier, eta=1.0, B=batch_size, s=s))
        )
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
    eta = _phi_at_unit_lr(land, batch_size) / barrier_phi  # ΔΦ ∝ 1/η
    lam = step_bound / (largest_step * eta * _h_max(land))
    return Design(lr=eta, loss_scale=lam, batch_size=batch_size, diffusion=None)


def white_design(
    land: Landscape, *, barrier_phi: float, largest_step: float = 1.0, step_bound: float = 0.05
) -> Design:
    """η = 1, λ so that the largest step keeps ηλH below ``step_bound``, D = λΔL/barrier_phi."""
    lam = step_bound / (largest_step * _h_max(land))
    phi = compiled_formula("quasi_potential_white")  # ΔΦ = λΔL/D ∝ 1/D
    diffusion = float(phi.value(Delta_L=lam * min(land.barriers), D=1.0)) / barrier_phi
    return Design(lr=1.0, loss_scale=lam, batch_size=None, diffusion=diffusion)
