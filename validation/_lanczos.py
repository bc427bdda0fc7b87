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

Later rounds (deflation, see ``lanczos_top``) only have to show that nothing is left above the
k-th value found: such a run stops as soon as its top Ritz pair has converged below that value,
which takes far fewer products than converging k pairs.

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

Matvec = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class LanczosResult:
    values: torch.Tensor  # (k,) eigenvalues, descending
    vectors: torch.Tensor  # (n, k) orthonormal eigenvectors
    residuals: torch.Tensor  # (k,) ‖Hv − λv‖, recomputed
    iterations: int  # Hessian-vector products, the k residual checks included


@dataclass(frozen=True)
class _Settings:
    n: int
    k: int
    dtype: torch.dtype
    device: torch.device
    tol: float
    max_iter: int | None

    def limit(self, k: int) -> int:
        """Largest Krylov dimension of a run: min(n, max(4k + 40, 120)) or ``max_iter``."""
        if self.max_iter is not None:
            return min(self.n, self.max_iter)
        return min(self.n, max(4 * k + 40, 120))


@dataclass
class _Krylov:
    """The growing Lanczos basis and tridiagonal matrix of one run."""

    basis: torch.Tensor  # (limit, n), rows 0..m-1 filled
    alphas: list[float]
    betas: list[float]  # betas[j] couples basis j and j + 1
    m: int = 0

    def tridiagonal(self) -> torch.Tensor:
        t = torch.diag(torch.tensor(self.alphas, dtype=torch.float64, device="cpu"))
        if self.m > 1:
            off = torch.tensor(self.betas[: self.m - 1], dtype=torch.float64, device="cpu")
            t = t + torch.diag(off, 1) + torch.diag(off, -1)
        return t

    def orthogonalise(self, w: torch.Tensor) -> torch.Tensor:
        """w minus its components on the basis, twice ("twice is enough")."""
        for _ in range(2):
            w = w - self.basis[: self.m].T @ (self.basis[: self.m] @ w)
        return w


def _random_unit(
    n: int, dtype: torch.dtype, device: torch.device, generator: torch.Generator
) -> torch.Tensor:
    v = torch.randn(n, generator=generator, dtype=torch.float64, device="cpu")
    v = v.to(dtype=dtype, device=device)
    return v / v.norm()


def _orthogonal_unit(
    locked: torch.Tensor, st: _Settings, generator: torch.Generator
) -> torch.Tensor:
    v = _random_unit(st.n, st.dtype, st.device, generator)
    for _ in range(2):
        v = v - locked @ (locked.T @ v)
    return v / v.norm()


def _deflated(matvec: Matvec, locked: torch.Tensor) -> Matvec:
    """v ↦ PHPv with P = I − QQᵀ, Q = ``locked`` (H itself when Q is empty)."""
    if not locked.shape[1]:
        return matvec

    def product(v: torch.Tensor) -> torch.Tensor:
        v = v - locked @ (locked.T @ v)
        w = matvec(v)
        return w - locked @ (locked.T @ w)

    return product


def _run(
    matvec: Matvec,
    st: _Settings,
    *,
    seed: int,
    locked: torch.Tensor,
    ceiling: float | None = None,
) -> LanczosResult:
    """The k algebraically largest Ritz pairs of PHP (P off ``locked``), one Lanczos run.

    Stops when every top-k Ritz residual bound is ≤ tol·|θ_max|, at the Krylov limit, or —
    with ``ceiling`` — as soon as the top Ritz pair has converged at or below ``ceiling``
    (nothing left above it: the caller's deflation rounds are done).
    """
    k = min(st.k, st.n - locked.shape[1])
    limit = st.limit(k)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    operator = _deflated(matvec, locked)
    kr = _Krylov(torch.zeros((limit, st.n), dtype=st.dtype, device=st.device), [], [])
    v = _orthogonal_unit(locked, st, generator)
    while True:
        kr.basis[kr.m] = v
        w = operator(v)
        kr.alphas.append(float(w @ v))
        kr.m += 1
        w = kr.orthogonalise(w)
        beta = float(w.norm())
        theta, s = torch.linalg.eigh(kr.tridiagonal())
        scale = max(abs(float(theta[-1])), abs(float(theta[0])), 1e-300)
        bound = beta * s[-1, -min(k, kr.m) :].abs()
        converged = bool((bound <= st.tol * scale).all())
        if ceiling is not None and bound[-1] <= st.tol * scale and theta[-1] <= ceiling:
            return _ritz(kr, theta, s, k, st)
        if (kr.m >= k and converged) or kr.m == limit:
            if kr.m < k:
                raise ConvergenceError(
                    f"Lanczos stopped after {kr.m} steps with fewer than k={k} Ritz pairs"
                )
            return _ritz(kr, theta, s, k, st)
        if beta <= 1e-10 * scale:
            # invariant subspace: restart orthogonally (the coupling to it is zero)
            w = kr.orthogonalise(_orthogonal_unit(locked, st, generator))
            if float(w.norm()) <= 1e-8:  # the basis spans everything
                return _ritz(kr, theta, s, min(k, kr.m), st)
            kr.betas.append(0.0)
            v = w / w.norm()
        else:
            kr.betas.append(beta)
            v = w / beta


def _ritz(
    kr: _Krylov, theta: torch.Tensor, s: torch.Tensor, k: int, st: _Settings
) -> LanczosResult:
    """The top-k Ritz pairs (values descending, unit vectors) of a run."""
    order = torch.argsort(theta, descending=True)[:k]
    ritz = s[:, order].to(dtype=st.dtype, device=st.device)
    vectors = kr.basis[: kr.m].T @ ritz  # (n, k)
    vectors = vectors / vectors.norm(dim=0, keepdim=True)
    values = theta[order].to(dtype=st.dtype, device=st.device)
    return LanczosResult(values, vectors, values.new_zeros(len(order)), kr.m)


def lanczos_top(
    matvec: Matvec,
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
    kept. The rounds stop when a deflated run's top Ritz value converges at or below the
    current k-th value (up to tol·|λ_1|), or after ``max_rounds``. One Rayleigh–Ritz step on
    the merged vectors ends it, and the true residuals ‖Hv − λv‖ are reported.

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
    st = _Settings(n, k, dtype, torch.device(device), tol, max_iter)
    locked = torch.zeros((n, 0), dtype=dtype, device=st.device)
    values = torch.zeros(0, dtype=dtype, device=st.device)
    steps = 0
    for round_ in range(max_rounds):
        if locked.shape[1] >= n:
            break
        full = values.numel() >= k
        ceiling = float(values[k - 1]) + tol * float(values.abs().max()) if full else None
        run = _run(matvec, st, seed=seed + round_, locked=locked, ceiling=ceiling)
        steps += run.iterations
        new_values, new_vectors = _new_pairs(run, locked)
        if ceiling is not None and (new_values.numel() == 0 or new_values.max() <= ceiling):
            break
        values = torch.cat([values, new_values])
        locked = torch.cat([locked, new_vectors], 1)
        order = torch.argsort(values, descending=True)
        values, locked = values[order], locked[:, order]
    result = _rayleigh_ritz(matvec, locked[:, :k])
    return LanczosResult(result.values, result.vectors, result.residuals, steps + result.iterations)


def _new_pairs(run: LanczosResult, locked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The Ritz pairs of a deflated run that are not (numerically) in the span of ``locked``."""
    if not locked.shape[1]:
        return run.values, run.vectors
    keep = (locked.T @ run.vectors).norm(dim=0) < 0.5
    return run.values[keep], run.vectors[:, keep]


def _rayleigh_ritz(matvec: Matvec, vectors: torch.Tensor) -> LanczosResult:
    """Exact eigenpairs of H on span(``vectors``), with the true residuals ‖Hv − λv‖."""
    hv = torch.stack([matvec(vectors[:, i]) for i in range(vectors.shape[1])], 1)
    small = vectors.T @ hv
    theta, s = torch.linalg.eigh(0.5 * (small + small.T))
    order = torch.argsort(theta, descending=True)
    theta, s = theta[order], s[:, order]
    vectors, hv = vectors @ s, hv @ s
    residuals = (hv - vectors * theta).norm(dim=0)
    return LanczosResult(theta, vectors, residuals, vectors.shape[1])
