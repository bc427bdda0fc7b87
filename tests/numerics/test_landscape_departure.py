"""The start of the non-Gibbs integral at the minimum (`departure_form`), checked on a minimum's
local model against an independent high-accuracy computation.

Local model: L = ½xᵀH_a x + a cubic, H_a = diag(1, 0.6), D = D₀ + Σ_k x_k D_k (D₀ misaligned
with H_a's axes; D_k = 0 for a constant D). Reference: the instanton on the minimum's unstable
manifold (the Hamiltonian flow ẋ = −∇L + 2D(x)p, ṗ = −∇_x(pᵀD(x)p − ∇L·p) started 10⁻⁸ from
the minimum along the slow eigenvector of its linear flow, with p = Q_a x), Q = Y X⁻¹ from the
variational equations of that flow started at (I, Q_a), and V = I + ½ log det Q with
I = ∫ tr(DQ) − tr ∇²L + (2 − α)(∇·D)·p dt. Nothing of this uses `departure_form`'s linear model.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from local_models import cubic_tensor, rotated
from scipy.integrate import solve_ivp
from scipy.linalg import solve_continuous_lyapunov

from flatminima.numerics import _prefactor

CUBIC = (0.3, 0.5, -0.4, 0.2)  # L₃ = a₁x³ + a₂x²y + a₃xy² + a₄y³
ANGLE = 0.4
SLOPES = (np.array([[0.4, 0.1], [0.1, -0.2]]), np.array([[-0.1, 0.3], [0.3, 0.5]]))


class Minimum:
    def __init__(self, noisy: bool, alpha: float) -> None:
        self.h = np.diag([1.0, 0.6])
        self.d0 = rotated((1.0, 0.3), ANGLE)
        self.dk = np.stack(SLOPES, axis=-1) if noisy else np.zeros((2, 2, 2))  # [i, j, k]
        self.alpha = alpha
        self.t = cubic_tensor(CUBIC)
        self.sigma = solve_continuous_lyapunov(self.h, 2 * self.d0)
        self.q_a = np.linalg.inv(self.sigma)

    def d(self, x: np.ndarray) -> np.ndarray:
        return self.d0 + self.dk @ x

    def flow(self, _t: float, z: np.ndarray) -> np.ndarray:
        """(x, p), the variational (X, Y) and I."""
        x, p = z[:2], z[2:4]
        big_x, big_y = z[4:8].reshape(2, 2), z[8:12].reshape(2, 2)
        hess = self.h + self.t @ x
        grad = self.h @ x + 0.5 * np.einsum("ijk,j,k->i", self.t, x, x)
        dx = -grad + 2 * self.d(x) @ p
        dp = hess @ p - np.einsum("i,ijk,j->k", p, self.dk, p)
        # Jacobian of (dx, dp) in (x, p)
        xx = -hess + 2 * np.einsum("ijk,j->ik", self.dk, p)
        xp = 2 * self.d(x)
        px = self.t @ p
        pp = hess - 2 * np.einsum("ijk,i->kj", self.dk, p)
        d_big_x = xx @ big_x + xp @ big_y
        d_big_y = px @ big_x + pp @ big_y
        q = big_y @ np.linalg.inv(big_x)
        divergence = np.einsum("iji->j", self.dk)
        f = np.trace(self.d(x) @ q) - np.trace(hess) + (2 - self.alpha) * divergence @ p
        return np.concatenate([dx, dp, d_big_x.ravel(), d_big_y.ravel(), [f]])

    def v(self, z: np.ndarray) -> float:
        q = z[8:12].reshape(2, 2) @ np.linalg.inv(z[4:8].reshape(2, 2))
        return float(z[-1] + 0.5 * np.linalg.slogdet(q)[1])

    def form(self) -> np.ndarray:
        model = SimpleNamespace(dim=2, third=lambda x, q: np.einsum("ijk,mk->mij", self.t, q))
        nm = SimpleNamespace(
            constant=None if self.dk.any() else self.d0,
            derivative=lambda x: self.dk[None],
        )
        return _prefactor.departure_form(
            model,  # type: ignore[arg-type]
            nm,  # type: ignore[arg-type]
            np.zeros(2),
            self.h,
            self.q_a,
            self.alpha,
        )


def _instanton(m: Minimum, side: float) -> tuple[np.ndarray, np.ndarray]:
    rates, vectors = np.linalg.eig(m.sigma @ m.h @ m.q_a)
    slow = vectors[:, int(np.argmin(rates.real))].real * side
    z0 = np.concatenate([1e-8 * slow, 1e-8 * m.q_a @ slow, np.eye(2).ravel(), m.q_a.ravel(), [0]])

    def leave(_t: float, z: np.ndarray) -> float:
        return float(np.linalg.norm(z[:2]) - 0.35)

    leave.terminal = True  # type: ignore[attr-defined]
    sol = solve_ivp(
        m.flow,
        (0, 100),
        z0,
        method="DOP853",
        rtol=1e-13,
        atol=1e-16,
        events=leave,
        dense_output=True,
    )
    times = np.linspace(0, float(sol.t[-1]), 20001)
    return times, sol.sol(times)


CASES = [(False, 0.0), (True, 0.0), (True, 0.5)]


@pytest.mark.parametrize(("noisy", "alpha"), CASES)
@pytest.mark.parametrize("side", [1.0, -1.0])
def test_departure_leaves_an_error_of_order_distance_squared(
    noisy: bool, alpha: float, side: float
) -> None:
    m = Minimum(noisy, alpha)
    w = m.form()
    _, states = _instanton(m, side)
    r = np.linalg.norm(states[:2], axis=0)
    v0 = 0.5 * np.linalg.slogdet(m.q_a)[1]
    errors = []
    for distance in [0.05, 0.025, 0.0125]:
        z = states[:, int(np.argmax(r > distance))]
        change = m.v(z) - v0
        errors.append(change - w @ z[:2])
        assert abs(change) > 10 * abs(errors[-1])  # the first order is most of the change
    orders = [math.log2(abs(errors[k] / errors[k + 1])) for k in range(2)]
    assert all(1.8 < o < 2.2 for o in orders), (errors, orders)


@pytest.mark.parametrize(("noisy", "alpha"), CASES)
def test_flow_started_at_q_a_with_the_departure_integral(noisy: bool, alpha: float) -> None:
    """Started at a point x₀ of the instanton with Q = Q_a (off by O(x₀)) and I = w·x₀, V at
    r = 0.3 is off by O(x₀²); with I = 0 it is off by O(x₀)."""
    m = Minimum(noisy, alpha)
    w = m.form()
    times, states = _instanton(m, 1.0)
    r = np.linalg.norm(states[:2], axis=0)
    end = int(np.argmax(r > 0.3))
    v_end = m.v(states[:, end])
    with_form, without = [], []
    for distance in [0.04, 0.02, 0.01]:
        j = int(np.argmax(r > distance))
        z = states[:, j].copy()
        z[4:8], z[8:12] = np.eye(2).ravel(), m.q_a.ravel()
        for start, out in [(float(w @ z[:2]), with_form), (0.0, without)]:
            z[-1] = start
            sol = solve_ivp(
                m.flow, (times[j], times[end]), z, method="DOP853", rtol=1e-13, atol=1e-16
            )
            out.append(m.v(sol.y[:, -1]) - v_end)
    orders = [math.log2(abs(with_form[k] / with_form[k + 1])) for k in range(2)]
    assert all(1.7 < o < 2.3 for o in orders), (with_form, orders)
    assert abs(with_form[-1]) < 0.1 * abs(without[-1])
