"""Top eigenpairs of a symmetric operator by Lanczos with full reorthogonalisation.

The operator is given only through products ``v ↦ Hv`` (Hessian-vector products of a model's
loss). Each Lanczos step adds one Krylov vector; every new vector is orthogonalised twice
against all the previous ones (classical Gram–Schmidt, repeated: "twice is enough"), so the
basis stays orthonormal to rounding and no spurious copies of converged eigenvalues appear.
The Ritz pairs of the tridiagonal matrix T_m approximate the extreme eigenpairs of H; the
residual of Ritz pair i is ‖Hy_i − θ_i y_i‖ = β_m |s_{m,i}| (s_i the eigenvector of T_m), which is
the classical a-posteriori error bound: some eigenvalue of H lies within that distance of θ_i.
The iteration stops when the top-k residual estimates fall below ``tol · |θ_max|``; the true
residuals ‖Hv − λv‖ are then recomputed with k more products and reported.

On an invariant subspace (β = 0: the Krylov space is exhausted, e.g. when H has exact zero modes
or few distinct eigenvalues) the iteration continues from a fresh random vector orthogonal to
the basis, so the whole spectrum can be reached (k up to the dimension n).

Source: Golub & Van Loan, *Matrix Computations*, 4th ed., §10.1–10.3; Parlett, *The Symmetric
Eigenvalue Problem*, ch. 13 (residual bound).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from flatminima.errors import ConvergenceError

__all__ = ["LanczosResult", "lanczos_top"]


@dataclass(frozen=True)
class LanczosResult:
    values: torch.Tensor  # (k,) eigenvalues, descending
    vectors: torch.Tensor  # (n, k) orthonormal eigenvectors
    residuals: torch.Tensor  # (k,) ‖Hv − λv‖, recomputed
    iterations: int  # Lanczos steps (Hessian-vector products, without the k residual checks)


def _random_unit(
    n: int, dtype: torch.dtype, device: torch.device, generator: torch.Generator
) -> torch.Tensor:
    v = torch.randn(n, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)
    return v / v.norm()


def _run(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    k: int,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    tol: float = 1e-6,
    max_iter: int | None = None,
    seed: int = 0,
    locked: torch.Tensor,
) -> LanczosResult:
    """The k algebraically largest eigenpairs of the symmetric n×n operator ``matvec``.

    Parameters
    ----------
    matvec
        v ↦ Hv for a 1-D tensor v of length n (H symmetric).
    n, k
        Dimension, and the number of eigenpairs (1 ≤ k ≤ n).
    tol
        Stop when every top-k Ritz residual bound is ≤ tol·|θ_max|.
    max_iter
        Largest Krylov dimension (default min(n, max(4k + 40, 120)), capped at n).
    seed
        Seed of the random start vector (CPU generator, so the same on every device).
    """
    device = torch.device(device)
    if n - locked.shape[1] < k:
        k = n - locked.shape[1]
    limit = n if max_iter is None else min(n, max_iter)
    if max_iter is None:
        limit = min(n, max(4 * k + 40, 120))
    generator = torch.Generator().manual_seed(seed)
    if locked.shape[1]:
        plain = matvec

        def matvec(v: torch.Tensor) -> torch.Tensor:  # P H P, P = I − QQᵀ
            v = v - locked @ (locked.T @ v)
            w = plain(v)
            return w - locked @ (locked.T @ w)

    basis = torch.zeros((limit, n), dtype=dtype, device=device)
    alphas: list[float] = []
    betas: list[float] = []  # betas[j] couples basis j and j + 1
    v = _orthogonal_unit(locked, n, dtype, device, generator)
    m = 0
    values = vectors_t = bounds = None
    while m < limit:
        basis[m] = v
        w = matvec(v)
        alpha = float(w @ v)
        alphas.append(alpha)
        for _ in range(2):  # full reorthogonalisation, twice
            w = w - basis[: m + 1].T @ (basis[: m + 1] @ w)
        m += 1
        beta = float(w.norm())
        theta, s = torch.linalg.eigh(_tridiagonal(alphas, betas[: m - 1]))
        top = min(k, m)
        scale = max(abs(float(theta[-1])), abs(float(theta[0])), 1e-300)
        bound = beta * s[-1, -top:].abs()
        if m >= k and (bool((bound <= tol * scale).all()) or m == limit):
            values, vectors_t, bounds = theta, s, bound
            break
        if m == limit:
            break
        if beta <= 1e-10 * scale or beta == 0.0:
            # invariant subspace: restart orthogonally (the coupling to it is zero)
            w = _orthogonal_unit(locked, n, dtype, device, generator)
            for _ in range(2):
                w = w - basis[:m].T @ (basis[:m] @ w)
            norm = float(w.norm())
            if norm <= 1e-8:  # the basis spans everything
                values, vectors_t, bounds = theta, s, torch.zeros(top, dtype=dtype)
                break
            betas.append(0.0)
            v = w / norm
        else:
            betas.append(beta)
            v = w / beta
    if values is None or vectors_t is None:
        raise ConvergenceError(f"Lanczos stopped after {m} steps with fewer than k={k} Ritz pairs")
    del bounds
    order = torch.argsort(values, descending=True)[:k]
    ritz = vectors_t[:, order].to(dtype=dtype, device=device)
    eigvecs = basis[:m].T @ ritz  # (n, k)
    eigvecs = eigvecs / eigvecs.norm(dim=0, keepdim=True)
    eigvals = values[order].to(dtype=dtype, device=device)
    return LanczosResult(eigvals, eigvecs, eigvals.new_zeros(k), m)


def _orthogonal_unit(
    locked: torch.Tensor,
    n: int,
    dtype: torch.dtype,
    device: torch.device,
    generator: torch.Generator,
) -> torch.Tensor:
    v = _random_unit(n, dtype, device, generator)
    for _ in range(2):
        v = v - locked @ (locked.T @ v)
    return v / v.norm()


def lanczos_top(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    k: int,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    tol: float = 1e-6,
    max_iter: int | None = None,
    seed: int = 0,
    max_rounds: int = 8,
) -> LanczosResult:
    """The k algebraically largest eigenpairs of the symmetric n×n operator ``matvec``.

    A single Lanczos run finds one vector of each eigenspace (a Krylov space from one start
    vector holds one direction of a repeated eigenvalue), so repeated eigenvalues, common in
    networks with symmetric units, would be missed. Rounds of deflation find them: the next run
    works on PHP, P = I − QQᵀ the projector off the vectors Q found so far, from a start
    vector orthogonal to Q; its Ritz pairs are merged with the previous ones and the top k
    kept. The rounds stop when a deflated run finds nothing above the current k-th value (up to
    tol·|λ_1|), or after ``max_rounds``.

    Parameters
    ----------
    matvec
        v ↦ Hv for a 1-D tensor v of length n (H symmetric).
    n, k
        Dimension, and the number of eigenpairs (1 ≤ k ≤ n).
    tol
        Stop a run when every top-k Ritz residual bound is ≤ tol·|θ_max|.
    max_iter
        Largest Krylov dimension of a run (default min(n, max(4k + 40, 120))).
    seed
        Seed of the random start vectors (CPU generator: the same on every device).
    """
    device = torch.device(device)
    locked = torch.zeros((n, 0), dtype=dtype, device=device)
    values = torch.zeros(0, dtype=dtype, device=device)
    steps = 0
    for round_ in range(max_rounds):
        if locked.shape[1] >= n:
            break
        run = _run(
            matvec,
            n,
            k,
            dtype=dtype,
            device=device,
            tol=tol,
            max_iter=max_iter,
            seed=seed + round_,
            locked=locked,
        )
        steps += run.iterations
        keep = (locked.T @ run.vectors).norm(dim=0) < 0.5 if locked.shape[1] else None
        new_values, new_vectors = run.values, run.vectors
        if keep is not None:
            new_values, new_vectors = new_values[keep], new_vectors[:, keep]
        if round_ > 0 and values.numel() >= k:
            scale = float(values.abs().max())
            if (
                new_values.numel() == 0
                or float(new_values.max()) <= float(values[k - 1]) + tol * scale
            ):
                break
        values = torch.cat([values, new_values])
        locked = torch.cat([locked, new_vectors], 1)
        order = torch.argsort(values, descending=True)
        values, locked = values[order], locked[:, order]
        if round_ == 0 and values.numel() < k:
            continue
    values, vectors = values[:k], locked[:, :k]
    # one Rayleigh–Ritz step on the merged span (exact eigenpairs of H on it)
    hv = torch.stack([matvec(vectors[:, i]) for i in range(vectors.shape[1])], 1)
    small = vectors.T @ hv
    small = 0.5 * (small + small.T)
    theta, s = torch.linalg.eigh(small)
    order = torch.argsort(theta, descending=True)
    theta, s = theta[order], s[:, order]
    vectors = vectors @ s
    hv = hv @ s
    residuals = (hv - vectors * theta).norm(dim=0)
    return LanczosResult(theta, vectors, residuals, steps + vectors.shape[1])


def _tridiagonal(alphas: list[float], betas: list[float]) -> torch.Tensor:
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        off = torch.tensor(betas, dtype=torch.float64)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    return t
