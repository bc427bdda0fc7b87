"""Top Hessian eigenvalue of a model's loss by Lanczos on exact Hessian-vector products.

The gradient is computed once with ``create_graph=True``; each Hessian-vector product is then one
backward pass through that graph, ``∂(∇L·v)/∂θ`` (reverse-over-reverse with the graph kept), so
no forward pass is repeated. (Forward-over-reverse ``jvp(grad(L))`` recomputes the forward and
backward on every product: about 5× slower on the benchmark MLP.)

The products feed a Lanczos iteration with full reorthogonalisation (twice, classical
Gram–Schmidt) instead of power iteration: the Ritz value of largest magnitude of the
tridiagonal T_m converges at a rate set by the square root of the relative gap, where power
iteration's Rayleigh quotient converges at the gap ratio λ₂/λ₁ per step (on the benchmark MLP,
1058 parameters, 8 products reach a residual of 10⁻⁵·λ and a value within 10⁻¹⁰ of eigvalsh).
The iteration stops when the relative residual ‖Hy − θy‖/|θ| = β_m|s_m|/|θ| (Parlett's bound,
exact up to rounding with full reorthogonalisation) falls below ``tol``: an eigenvalue of H
then lies within tol·|θ| of θ (within (tol·θ)²/gap, in fact), so no separate test on the change
of θ is needed. The Krylov basis is restarted from the current Ritz
vector every ``_RESTART`` products to bound memory. Like power iteration it finds the eigenvalue
of largest magnitude; at a minimum that is λ_max.

Source: Golub & Van Loan, *Matrix Computations*, 4th ed., §10.1; Parlett, *The Symmetric
Eigenvalue Problem*, ch. 13.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from flatminima.errors import ConvergenceError, ParameterError

__all__ = ["TopEigen", "top_hessian_eigenvalue"]

#: Largest Krylov basis kept before an explicit restart from the current Ritz vector.
_RESTART = 64


@dataclass(frozen=True)
class TopEigen:
    value: float
    vector: torch.Tensor
    residual: float
    iterations: int  # Hessian-vector products


def top_hessian_eigenvalue(
    loss: Callable[[torch.Tensor], torch.Tensor],
    theta: torch.Tensor,
    *,
    tol: float = 1e-4,
    max_iter: int = 500,
    seed: int = 0,
) -> TopEigen:
    """Dominant eigenpair of ∇²loss(θ) (``loss`` maps a flat parameter vector to a scalar).

    ``max_iter`` bounds the number of Hessian-vector products; ``iterations`` reports it.
    """
    if not isinstance(theta, torch.Tensor) or theta.ndim != 1:
        raise ParameterError("theta", "a flat parameter vector (1-D tensor)", type(theta).__name__)
    if not (0 < tol < 1):
        raise ParameterError("tol", "a tolerance in (0, 1)", tol)
    point = theta.detach().clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(loss(point), point, create_graph=True)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        (product,) = torch.autograd.grad(gradient, point, grad_outputs=v, retain_graph=True)
        return product

    generator = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.randn(theta.shape, generator=generator, dtype=theta.dtype, device="cpu")
    v = v.to(theta.device)
    return _lanczos_dominant(hvp, v / v.norm(), tol, max_iter)


def _lanczos_dominant(
    hvp: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor, tol: float, max_iter: int
) -> TopEigen:
    """Restarted Lanczos for the eigenpair of largest magnitude (see the module docstring)."""
    n = start.numel()
    products, v = 0, start
    while products < max_iter:
        size = min(_RESTART, n, max_iter - products)
        basis = torch.empty((size, n), dtype=start.dtype, device=start.device)
        alphas: list[float] = []
        betas: list[float] = []
        for m in range(size):
            basis[m] = v
            w = hvp(v)
            products += 1
            alphas.append(float(w @ v))
            for _ in range(2):  # full reorthogonalisation, twice
                w = w - basis[: m + 1].T @ (basis[: m + 1] @ w)
            beta = float(w.norm())
            value, s = _dominant_ritz(alphas, betas)
            scale = max(abs(value), 1e-300)
            bound = beta * abs(float(s[-1]))
            exhausted = beta <= 1e-12 * scale  # an invariant subspace: the Ritz pair is exact
            if exhausted or bound <= tol * scale:
                vector = basis[: m + 1].T @ s.to(dtype=start.dtype, device=start.device)
                return TopEigen(value, vector / vector.norm(), bound, products)
            betas.append(beta)
            v = w / beta
        # restart from the current Ritz vector (s from the last step's tridiagonal)
        v = basis.T @ s.to(dtype=start.dtype, device=start.device)
        v = v / v.norm()
    raise ConvergenceError(
        f"Lanczos did not reach tol={tol} in {max_iter} Hessian-vector products (raise max_iter)"
    )


def _dominant_ritz(alphas: list[float], betas: list[float]) -> tuple[float, torch.Tensor]:
    """The Ritz value of largest magnitude of the Lanczos tridiagonal, and its eigenvector."""
    m = len(alphas)
    t = np.diag(alphas)
    if m > 1:
        index = np.arange(m - 1)
        t[index, index + 1] = t[index + 1, index] = betas
    values, vectors = np.linalg.eigh(t)
    i = 0 if abs(values[0]) > abs(values[-1]) else m - 1
    return float(values[i]), torch.from_numpy(vectors[:, i].copy())
