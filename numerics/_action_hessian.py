"""A banded preconditioner for the string relaxation of the geometric action.

The discretized geometric action Ŝ = ½ Σ_i (u_i v_i − w_i) (u = |Δ|_M, v = |b(m)|_M,
w = ⟨Δ, b(m)⟩_M on each segment Δ = x_{i+1} − x_i with midpoint m) couples only neighbouring
points, so its Hessian with respect to the interior points is block tridiagonal (n × n blocks);
the spacing term Σ (|Δ_{i+1}| − |Δ_i|)² adds blocks two apart. Its conditioning grows like N²
(the string's tension is a discrete Laplacian), which is what makes plain L-BFGS slow on fine
strings: the iteration count grew 2.5–4× per doubling of N.

Here the Hessian is assembled exactly for a constant D (per segment, with the metric M = D(m)⁻¹
frozen at the midpoint for a state-dependent D, which only makes the preconditioner approximate),
with the loss's third derivative contracted with one vector per segment, and the spacing term by
its Gauss–Newton part. Its banded Cholesky factor P = UᵀU (a small diagonal shift if it is not
positive definite) changes variables x = x₀ + U⁻¹y, in which L-BFGS sees a Hessian near the
identity: the iteration count no longer grows with N or with the stiffness ratio of the
landscape. Cost per factorization O(N n³) (bandwidth 3n), per application O(N n²).
"""

from __future__ import annotations

import numpy as np

from ._loss_model import LossModel
from ._noise_models import NoiseModel

__all__ = ["BandedPreconditioner", "action_blocks", "constant_metric", "spacing_blocks"]

Array = np.ndarray
_TINY = 1e-300

_METRIC: list[tuple[Array, Array]] = []


def constant_metric(constant: Array) -> Array:
    """D⁻¹ of a constant D, computed once per matrix (the relaxation calls it thousands of
    times; one 100 × 100 inverse cost more than the rest of an action evaluation)."""
    for matrix, inverse in _METRIC:
        if matrix is constant:
            return inverse
    inverse = np.linalg.inv(constant)
    _METRIC[:] = [(constant, inverse)]
    return inverse


def _segment_terms(phi: Array, loss: LossModel, noise: NoiseModel) -> tuple[Array, Array, Array]:
    """Per segment: the second derivatives of ½(uv − w) in (Δ, Δ), (Δ, m) and (m, m)."""
    delta = np.diff(phi, axis=0)
    mid = 0.5 * (phi[1:] + phi[:-1])
    drift = -loss.gradient(mid)
    k, n = delta.shape
    if noise.constant is not None:
        metric = np.broadcast_to(constant_metric(noise.constant), (k, n, n))
    else:
        metric = np.linalg.inv(noise.field(mid))
    a = np.einsum("mij,mj->mi", metric, delta)
    c = np.einsum("mij,mj->mi", metric, drift)
    u = np.maximum(np.sqrt(np.maximum(np.einsum("mi,mi->m", delta, a), 0.0)), _TINY)
    v = np.maximum(np.sqrt(np.maximum(np.einsum("mi,mi->m", drift, c), 0.0)), _TINY)
    hess = loss.hessian(mid)
    hc = np.einsum("mij,mj->mi", hess, c)
    f_dd = (
        0.5
        * (v / u)[:, None, None]
        * (metric - np.einsum("mi,mj->mij", a, a) / (u**2)[:, None, None])
    )
    f_dm = 0.5 * (-np.einsum("mi,mj->mij", a, hc) / (u * v)[:, None, None] + metric @ hess)
    hmh = hess @ metric @ hess
    third = loss.third(mid, a - (u / v)[:, None] * c)
    f_mm = 0.5 * (
        (u / v)[:, None, None] * (hmh - np.einsum("mi,mj->mij", hc, hc) / (v**2)[:, None, None])
        + 0.5 * (third + np.swapaxes(third, 1, 2))
    )
    return f_dd, f_dm, f_mm


def action_blocks(phi: Array, loss: LossModel, noise: NoiseModel) -> tuple[Array, Array]:
    """Diagonal (N + 1, n, n) and super-diagonal (N, n, n) blocks of the action's Hessian with
    respect to all the string's points (exact for a constant D)."""
    f_dd, f_dm, f_mm = _segment_terms(phi, loss, noise)
    sym = 0.5 * (f_dm + np.swapaxes(f_dm, 1, 2))
    diag = np.zeros((phi.shape[0], phi.shape[1], phi.shape[1]))
    diag[:-1] += f_dd - sym + 0.25 * f_mm
    diag[1:] += f_dd + sym + 0.25 * f_mm
    upper = -f_dd - 0.5 * f_dm + 0.5 * np.swapaxes(f_dm, 1, 2) + 0.25 * f_mm
    return diag, upper


def spacing_blocks(phi: Array, weight: float) -> tuple[Array, Array, Array]:
    """Gauss–Newton blocks (diagonal, one apart, two apart) of weight·Σ(|Δ_{i+1}| − |Δ_i|)²."""
    delta = np.diff(phi, axis=0)
    t = delta / np.maximum(np.linalg.norm(delta, axis=1), _TINY)[:, None]
    n_pts, n = phi.shape
    left, right = t[:-1], t[1:]  # residual i: +t_i at x_i, −(t_i + t_{i+1}) at x_{i+1}, …
    both = left + right
    w2 = 2.0 * weight

    def outer(p: Array, q: Array) -> Array:
        return w2 * np.einsum("mi,mj->mij", p, q)

    diag = np.zeros((n_pts, n, n))
    one = np.zeros((n_pts - 1, n, n))
    diag[:-2] += outer(left, left)
    diag[1:-1] += outer(both, both)
    diag[2:] += outer(right, right)
    one[:-1] -= outer(left, both)
    one[1:] -= outer(both, right)
    two = outer(left, right)
    return diag, one, two


class BandedPreconditioner:
    """P = UᵀU from block bands of a symmetric matrix over the interior points; ``to_x(y)`` is
    U⁻¹y and ``to_y(g)`` is U⁻ᵀg."""

    def __init__(self, bands: list[Array]) -> None:
        from scipy.linalg import cholesky_banded

        diag = bands[0]
        k, n, _ = diag.shape
        offsets = [b for b in bands[1:] if b.shape[0] > 0]
        self.size, self.bw = k * n, n * (len(offsets) + 1) - 1
        ab = np.zeros((self.bw + 1, self.size))
        p, q = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        for off, block in enumerate([diag, *offsets]):
            keep = (q >= p) if off == 0 else np.ones_like(p, dtype=bool)
            rows = (np.arange(block.shape[0])[:, None] * n + p[keep][None, :]).ravel()
            cols = ((np.arange(block.shape[0])[:, None] + off) * n + q[keep][None, :]).ravel()
            ab[self.bw + rows - cols, cols] = block[:, keep].ravel()
        scale = max(float(np.max(np.abs(ab[self.bw]))), _TINY)
        shift = 0.0
        for attempt in range(13):
            trial = ab.copy()
            trial[self.bw] += shift
            try:
                self.factor = cholesky_banded(trial, lower=False, check_finite=False)
                break
            except np.linalg.LinAlgError:
                shift = scale * 10.0 ** (-10 + attempt)
        else:  # far from positive definite: a diagonal scaling only
            trial = np.zeros_like(ab)
            trial[self.bw] = np.abs(ab[self.bw]) + scale
            self.factor = cholesky_banded(trial, lower=False, check_finite=False)
        self.shift = shift / scale

    def _solve(self, rhs: Array, trans: str) -> Array:
        from scipy.linalg.lapack import dtbtrs

        x, _ = dtbtrs(self.factor, rhs[:, None], uplo="U", trans=trans)
        return np.asarray(x[:, 0])

    def to_x(self, y: Array) -> Array:
        return self._solve(y, "N")

    def to_y(self, g: Array) -> Array:
        return self._solve(g, "T")
