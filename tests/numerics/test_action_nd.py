"""minimum_action_path and landscape_escape_time in n = 10 and n = 100 dimensions, on a landscape
built from a random rotation (fixed seed): a double well in u₀ ⊕ quadratic valleys of
stiffnesses 9 … 20 whose floor is curved (u_k = β_k u₀²/2), u = Qx. Not separable in x (and, for
β ≠ 0, not in u either). References independent of the package: ΔΦ = ΔL/d for white noise,
Eyring–Kramers from the dense Hessians written in u coordinates, and for a constant D aligned
with the valley's axes the Langer / Lyapunov formula computed here with scipy.linalg."""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import solve_continuous_lyapunov

from flatminima.numerics import escape_time, landscape_escape_time, minimum_action_path


class Valley:
    """L(x) = (u₀² − 1)² + ½ Σ_k c_k (u_k − β_k u₀²/2)², u = Qx; ΔL = 1 from a to b = 0."""

    def __init__(self, n: int, *, rotate: bool = True, beta: float = 0.5, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        if rotate:
            q, r = np.linalg.qr(rng.standard_normal((n, n)))
            self.q = q * np.sign(np.diag(r))
        else:
            self.q = np.eye(n)
        w = rng.standard_normal(n - 1)
        self.beta = beta * w / np.linalg.norm(w)  # a curved floor of n-independent size
        self.c = np.linspace(9.0, 20.0, n - 1)  # λ_s ≥ 2|λ_b| = 8 at the saddle
        self.n = n
        # O(n²) per point: H = Qᵀ(C + arrow)Q with C = diag(0, c) constant
        self.const = self.q[1:].T @ (self.c[:, None] * self.q[1:])
        self.minimum = self.q.T @ np.r_[-1.0, self.beta / 2]
        self.saddle = np.zeros(n)

    def _parts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = np.asarray(x) @ self.q.T
        return u, u[..., 0], u[..., 1:] - self.beta * u[..., :1] ** 2 / 2

    def loss(self, x: np.ndarray) -> np.ndarray:
        _, u0, r = self._parts(x)
        return (u0**2 - 1) ** 2 + 0.5 * np.sum(self.c * r**2, axis=-1)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        u, u0, r = self._parts(x)
        gu = np.empty_like(u)
        gu[..., 0] = 4 * u0 * (u0**2 - 1) - u0 * np.sum(self.beta * self.c * r, axis=-1)
        gu[..., 1:] = self.c * r
        return gu @ self.q

    def hessian(self, x: np.ndarray) -> np.ndarray:
        _, u0, r = self._parts(x)
        bc = self.beta * self.c
        h00 = 12 * u0**2 - 4 - np.sum(bc * r, axis=-1) + u0**2 * np.sum(self.beta * bc)
        s = (-u0[:, None] * bc) @ self.q[1:]  # the arrow's off-diagonal row, rotated
        q0 = self.q[0]
        return (
            self.const
            + h00[:, None, None] * np.outer(q0, q0)
            + q0[None, :, None] * s[:, None, :]
            + s[:, :, None] * q0[None, None, :]
        )

    def hessians_u(self) -> tuple[np.ndarray, np.ndarray]:
        """The Hessians at a and b in u coordinates, written out (an arrow matrix at a)."""
        n = self.n
        h_a = np.diag(np.r_[8.0 + np.sum(self.c * self.beta**2), self.c])
        h_a[0, 1:] = h_a[1:, 0] = self.beta * self.c
        h_b = np.diag(np.r_[-4.0, self.c])
        assert h_a.shape == (n, n)
        return h_a, h_b

    def kwargs(self) -> dict[str, object]:
        return {
            "minimum": self.minimum,
            "saddle": self.saddle,
            "gradient": self.gradient,
            "hessian": self.hessian,
        }


def eyring_kramers_log_tau(valley: Valley, d: float) -> float:
    h_a, h_b = valley.hessians_u()
    det_a, det_b = np.linalg.slogdet(h_a)[1], np.linalg.slogdet(h_b)[1]
    return math.log(2 * math.pi / 4.0) + 0.5 * (det_b - det_a) + 1.0 / d


def langer_log_tau(h_a: np.ndarray, h_b: np.ndarray, d: np.ndarray, barrier: float) -> float:
    """τ = (2π/|λ_b|)√(|det Q_b|/det Q_a) e^{ΔΦ}, Q = Σ⁻¹, HΣ + ΣH = 2D (a reversible case:
    D commutes with both Hessians, so no non-Gibbs term)."""
    sigma_a = solve_continuous_lyapunov(h_a, 2 * d)
    sigma_b = solve_continuous_lyapunov(h_b, 2 * d)
    lam = abs(np.linalg.eigvalsh(h_b)[0])
    log_det = -np.linalg.slogdet(sigma_b)[1] + np.linalg.slogdet(sigma_a)[1]
    return math.log(2 * math.pi / lam) + 0.5 * log_det + barrier


def observed_order(actions: tuple[float, ...]) -> float:
    return math.log2((actions[0] - actions[1]) / (actions[1] - actions[2]))


def test_white_noise_n10_barrier_order_and_eyring_kramers() -> None:
    """White noise: ΔΦ = ΔL/d exactly, the action converges at order 2 in the number of points
    (midpoint rule), and τ is the Eyring–Kramers time of the dense Hessians."""
    v = Valley(10)
    p = minimum_action_path(v.loss, "white", diffusion=0.1, points=8, **v.kwargs())
    assert p.converged
    assert 1.7 < observed_order(p.actions) < 2.5  # theory: 2
    assert abs(p.barrier - 10.0) <= 3 * p.error
    assert abs(p.barrier / 10.0 - 1) < 1e-4
    assert abs(p.actions[-1] - 10.0) > abs(p.barrier - 10.0)  # extrapolation helps
    r = landscape_escape_time(v.loss, "white", diffusion=0.1, points=8, **v.kwargs())
    assert abs(float(r.log_tau) - eyring_kramers_log_tau(v, 0.1)) < 1e-9


def check_langer(n: int) -> None:
    """A constant D = Qᵀ diag(d) Q (a full matrix in x) on the straight valley (β = 0): the
    process is reversible, ΔΦ = ΔL/d₀ and τ is the Langer / Lyapunov formula, computed here.
    Φ = Σ_i L_i(u_i)/d_i there, so tr(D∇²Φ) = tr H all along the path: the non-Gibbs integral
    is 0 only if the Riccati flow carries Q = ∇²Φ along the whole instanton."""
    v = Valley(n, beta=0.0)
    d_u = np.linspace(0.1, 0.3, n)
    d = v.q.T @ np.diag(d_u) @ v.q
    p = minimum_action_path(v.loss, "anisotropic", diffusion=d, points=8, **v.kwargs())
    assert p.converged
    assert 1.7 < observed_order(p.actions) < 2.5
    assert abs(p.barrier - 10.0) <= 3 * p.error and abs(p.barrier / 10.0 - 1) < 1e-4
    r = landscape_escape_time(v.loss, "anisotropic", diffusion=d, points=8, **v.kwargs())
    h_a, h_b = (v.q.T @ h @ v.q for h in v.hessians_u())
    expected = langer_log_tau(h_a, h_b, d, 10.0)
    assert abs(float(r.log_tau) - expected) < max(3 * r.accuracy, 1e-4)
    assert abs(r.non_gibbs) < 1e-3


def test_anisotropic_aligned_with_the_rotated_axes_is_langer_n10() -> None:
    check_langer(10)


def test_anisotropic_aligned_with_the_rotated_axes_is_langer_n30() -> None:
    """n = 30: the Riccati flow (900 unknowns) by the explicit method (LSODA took 18 s here)."""
    check_langer(30)


def test_identity_rotation_equals_the_aligned_formula_n10() -> None:
    """Q = I, β = 0, diagonal D: the escape is the 1-D one along u₀ and landscape_escape_time
    (Bouchet–Reygner with gMAM) equals escape_time's aligned white formula with d = D₀₀ to its
    reported accuracy."""
    v = Valley(10, rotate=False, beta=0.0)
    d = np.diag(np.linspace(0.1, 0.3, 10))
    r = landscape_escape_time(v.loss, "anisotropic", diffusion=d, points=8, dps=20, **v.kwargs())
    h_a, h_b = v.hessians_u()
    aligned = escape_time(
        "white", hess_min=h_a, hess_saddle=h_b, barrier=1, diffusion="0.1", dps=20
    )
    gap = abs(float(r.log_tau - aligned.log_tau))
    assert gap <= max(r.accuracy, 1e-6), (gap, r.accuracy)


def check_misaligned(n: int) -> None:
    """D diagonal in x, the curved valley rotated: not reversible, ΔΦ between the white bounds
    ΔL/d_max and ΔL/d_min, second-order convergence of the action."""
    v = Valley(n)
    d = np.diag(np.linspace(0.1, 0.3, n))
    p = minimum_action_path(v.loss, "anisotropic", diffusion=d, points=8, **v.kwargs())
    assert p.converged
    assert 1.7 < observed_order(p.actions) < 2.5
    assert 1 / 0.3 < p.barrier < 1 / 0.1


def test_misaligned_anisotropic_n10_converges_between_the_bounds() -> None:
    check_misaligned(10)


def test_white_noise_n100_barrier_and_order() -> None:
    """n = 100 (reduced: white noise only): ΔΦ = ΔL/d and order 2 (measured 2.03, 21 L-BFGS
    iterations on the three strings)."""
    v = Valley(100)
    p = minimum_action_path(v.loss, "white", diffusion=0.1, points=8, **v.kwargs())
    assert p.converged
    assert 1.7 < observed_order(p.actions) < 2.5
    assert abs(p.barrier - 10.0) <= 3 * p.error and abs(p.barrier / 10.0 - 1) < 1e-4


def test_anisotropic_n100_langer_and_misaligned_order() -> None:
    """n = 100, constant D: aligned with the rotated axes on the straight valley, ΔΦ = ΔL/d₀
    exactly at order 2 and τ is Langer's (the Riccati flow carries 10⁴ unknowns: 7 s by the
    explicit method; LSODA's dense Jacobians did not finish in 8 minutes); diagonal in x on the
    curved valley, the action converges at order 2 between the white bounds."""
    check_langer(100)
    check_misaligned(100)


def test_extrapolated_barrier_converges_at_fourth_order_n10() -> None:
    """The midpoint rule's error is even in h, so the Richardson-extrapolated ΔΦ (from N, 2N,
    4N) converges at order 4 in N: measured on the aligned-frame case, where ΔΦ = ΔL/d₀ = 10
    exactly (errors 2.1·10⁻⁵, 1.2·10⁻⁶, 7.3·10⁻⁸ for N = 4, 8, 16)."""
    v = Valley(10, beta=0.0)
    d = v.q.T @ np.diag(np.linspace(0.1, 0.3, 10)) @ v.q
    errors = [
        minimum_action_path(v.loss, "anisotropic", diffusion=d, points=k, **v.kwargs()).barrier
        - 10.0
        for k in (4, 8, 16)
    ]
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(3.3 < q < 4.7 for q in orders), (errors, orders)
