"""The instanton by shooting from the saddle, for the harmonic-switch noise in the Maier–Stein
regime (2-D): the prefactor where the string does not carry the momentum.

Where the saddle's unstable curvature is above its stable one (μ = λ_s/|λ_b| < 1) the instanton
reaches the saddle along its stable direction with a momentum p = O(r^{1/μ}) (r the distance);
at μ = 0.19 that is r^5.3, which no string carries, and the values of V = I + ½ log|det Q| at
stops near the saddle do not level off. Here the instanton is computed as a trajectory of the
Hamiltonian flow ẋ = −∇L + 2Dp, ṗ = ∇²L p (D constant on each side of the switch surface S)
instead, started on the saddle's stable manifold and integrated backwards in time:

- near the saddle, in its linear model (`ArrivalModel`), the stable manifold is spanned by the
  slow x-mode (e_s, 0) (rate −λ_s) and the p-mode of the unstable direction (rate −|λ_b|); a
  start ρ(σ e_s-mode + η p-mode) at ρ = 10⁻³|b − a| is on the manifold up to O(ρ²), an error
  that the backward flow contracts (it is along the saddle's unstable modes). σ is the side the
  string arrives from;
- across S the momentum refracts (`refract`, the root of the Hamilton–Jacobi equation on the
  minimum's side whose velocity crosses S the same way) and the flow goes on with D_a;
- η is fixed by bisection (on log η) so that the backward trajectory reaches the minimum: at its
  closest approach to a, the coefficient of a's slow relaxation mode (the direction in which a
  trajectory off the minimum's unstable manifold leaves it, backwards in time) changes sign.

The trajectory (dense output) is then followed forwards, and V = I + ½ log|det Q| is carried
along it by the variational equations, Q = Y X⁻¹ with Ẋ = H_px X + 2D Y, Ẏ = −H_xx X − H_pxᵀ Y,
and V(t) − V(t₀) = ½[log|det Y|] + ∫ −½ tr ∇²L dt (for a constant D, F = tr(DQ) − tr ∇²L =
½ d log|det X|/dt − ½ tr ∇²L: no inverse of Q, which is singular where its signature changes).
The columns of (X; Y) are orthonormalised at short intervals (Q is unchanged; log|det R| is
accumulated). The start is on the trajectory at a distance r₀ from a with V = ½ log det Q_a +
w·(x₀ − a) (`departure_form`, error O(r₀²)); Q is mapped across S (`map_hessian`) and the jump
term (1 − α) log(D⁺_nn/D⁻_nn) added; near the saddle the tail is `_arrival_tail`, and the value
at the nearest stop where the values are level is used (`_plateau`). The error adds the change
when the start is at 2r₀.

Measured on the misaligned Styblinski–Tang case of the tests (μ = 0.189, ΔΦ = 10): log τ − ΔΦ =
−1.6035 for starts at r₀ = 0.005–0.04 from a (spread 7·10⁻⁴), the stops from 6% to 0.5% of the
distance from S to the saddle level to 10⁻⁶; the barrier along the trajectory 10.00664 against
gMAM's 10.00681. The exact MFPT's log τ − ΔΦ, extrapolated in 1/ΔΦ from ΔΦ = 4–24, tends to
−1.597 … −1.618.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from flatminima.errors import ConvergenceError

from ._loss_model import LossModel
from ._switch import Switch, map_hessian, refract

Array = np.ndarray
#: The backward start's distance from the saddle, in units of |b − a|.
_START = 1e-3
#: Stops, as fractions of the distance from the switch crossing to the saddle (those at least
#: `_START_MARGIN` starts from the saddle are used).
_MARKS = (0.16, 0.08, 0.04, 0.02, 0.01, 0.005, 0.0025)
_START_MARGIN = 4.0


def _hamilton(model: LossModel, d: Array) -> Any:
    """ẋ = −∇L + 2Dp, ṗ = ∇²L p for a constant D (one side of the switch)."""
    n = model.dim

    def rhs(_t: float, y: Array) -> Array:
        x, p = y[:n], y[n:]
        grad = model.gradient(x[None])[0]
        hess = model.hessian(x[None])[0]
        return np.concatenate([-grad + 2 * d @ p, hess @ p])

    return rhs


def _linear_modes_at(hessian: Array, diffusion: Array) -> tuple[Array, Array]:
    """H's eigenvectors and the inverse of the linear flow's modes at a critical point
    (`_linear_modes`)."""
    from ._prefactor import _linear_modes

    basis, modes, _ = _linear_modes(hessian, diffusion)
    return basis, np.linalg.inv(modes)


class _Shot:
    """One backward trajectory from the saddle (saddle's side, then minimum's side)."""

    def __init__(self, saddle_leg: Any, minimum_leg: Any, crossing: tuple[Array, Array, Array]):
        self.saddle_leg, self.minimum_leg = saddle_leg, minimum_leg
        self.point, self.p_plus, self.p_minus = crossing


class _Shooter:
    def __init__(
        self,
        model: LossModel,
        sw: Switch,
        a: Array,
        b: Array,
        h_a: Array,
        arrival: Any,
        side: float,
    ):
        self.model, self.sw, self.a, self.b = model, sw, a, b
        self.n = n = a.size
        self.arrival = arrival
        basis, modes = arrival.basis, arrival.modes
        slow = [k for k in range(n) if arrival.stable[k]]
        fast = [k for k in range(n, 2 * n) if arrival.stable[k]]
        if len(slow) != 1 or len(fast) != 1:
            raise ConvergenceError(
                "landscape_escape_time: shooting the instanton needs a 2-D saddle of index 1"
            )
        rho = _START * float(np.linalg.norm(b - a))
        self.rho = rho
        self.slow = side * rho * modes[:, slow[0]]
        self.fast = rho * modes[:, fast[0]]
        self.basis = basis
        self.rhs_b = _hamilton(model, sw.d_b)
        self.rhs_a = _hamilton(model, sw.d_a)
        self.basis_a, self.inverse_a = _linear_modes_at(h_a, sw.d_a)
        # backward time to the switch: the slow mode grows like e^{λ_s|t|} from ρ; a shot
        # that has not crossed S after many such times has missed it
        slowest = float(-arrival.rates[slow[0]])
        self.horizon = (4.0 * math.log(1.0 / _START) + 20.0) / slowest

    def _start(self, eta: float) -> Array:
        z = self.slow + eta * self.fast
        n = self.n
        return np.concatenate([self.b + self.basis @ z[:n], self.basis @ z[n:]])

    def shoot(self, eta: float, dense: bool = False) -> _Shot | None:
        # shots far from the instanton run up the walls: overflows there only mean "missed"
        with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return self._shoot(eta, dense)

    def _shoot(self, eta: float, dense: bool) -> _Shot | None:
        from scipy.integrate import solve_ivp

        n, sw, model = self.n, self.sw, self.model

        def surface(_t: float, y: Array) -> float:
            return float(sw.surface(y[None, :n])[0])

        surface.terminal = True  # type: ignore[attr-defined]
        reach = 4.0 * float(np.linalg.norm(self.b - self.a))

        def away(_t: float, y: Array) -> float:  # a shot that runs up a wall has missed
            return reach - float(np.linalg.norm(y[:n] - self.a))

        away.terminal = True  # type: ignore[attr-defined]
        leg_b = solve_ivp(
            self.rhs_b, (0.0, -self.horizon), self._start(eta), method="DOP853", rtol=1e-13,
            atol=1e-16, events=[surface, away], dense_output=dense,
        )  # fmt: skip
        if leg_b.status != 1 or leg_b.t_events[0].size == 0:
            return None
        y, t = leg_b.y_events[0][0], float(leg_b.t_events[0][0])
        x, p_plus = y[:n], y[n:]
        drift = -model.gradient(x[None])[0]
        normal = sw.normal(x)[0]
        try:
            p_minus = refract(p_plus, normal, drift, sw.d_a, drift + 2 * sw.d_b @ p_plus)
        except ConvergenceError:
            return None
        a = self.a
        rhs_a = self.rhs_a

        def turn(_t: float, z: Array) -> float:  # the distance to a stops falling (backwards)
            return float((z[:n] - a) @ rhs_a(_t, z)[:n])

        turn.terminal = True  # type: ignore[attr-defined]
        turn.direction = -1  # type: ignore[attr-defined]
        leg_a = solve_ivp(
            rhs_a, (t, t - 4 * self.horizon), np.concatenate([x, p_minus]), method="DOP853", rtol=1e-13,
            atol=1e-16, events=[turn, away], dense_output=True,
        )  # fmt: skip
        if leg_a.status == -1:
            return None
        return _Shot(leg_b, leg_a, (x, p_plus, p_minus))

    def closest(self, shot: _Shot) -> tuple[float, float, float]:
        """(time, distance to a, coefficient of a's slow relaxation mode) at the closest
        approach of the minimum's leg to a."""
        leg = shot.minimum_leg
        times = np.linspace(leg.t[0], leg.t[-1], 2001)
        states = leg.sol(times)
        distance = np.linalg.norm(states[: self.n].T - self.a, axis=1)
        j = int(np.argmin(distance))
        z = states[:, j]
        n = self.n
        local = np.concatenate([self.basis_a.T @ (z[:n] - self.a), self.basis_a.T @ z[n:]])
        return float(times[j]), float(distance[j]), float((self.inverse_a @ local)[0])

    def miss(self, log_eta: float) -> float | None:
        shot = self.shoot(10.0**log_eta)
        return None if shot is None else self.closest(shot)[2]

    def solve(self) -> tuple[_Shot, float]:
        """The instanton (bisection on log η), and log η."""
        previous: tuple[float, float] | None = None
        bracket = None
        for log_eta in np.arange(-16.0, 1.0, 0.5):
            m = self.miss(float(log_eta))
            if m is None:
                continue
            if previous is not None and np.sign(m) != np.sign(previous[1]):
                bracket = (previous[0], float(log_eta), np.sign(previous[1]))
                break
            previous = (float(log_eta), m)
        if bracket is None:
            raise ConvergenceError(
                "landscape_escape_time: no trajectory from the saddle's stable manifold reaches "
                "the minimum across the switch surface (shooting found no sign change)"
            )
        low, high, sign_low = bracket
        for _ in range(60):
            mid = 0.5 * (low + high)
            if mid in (low, high):
                break
            m = self.miss(mid)
            if m is None:
                raise ConvergenceError(
                    "landscape_escape_time: a shot trajectory inside the bracket did not reach "
                    "the switch surface"
                )
            if np.sign(m) == sign_low:
                low = mid
            else:
                high = mid
        shot = self.shoot(10.0**low, dense=True)
        assert shot is not None
        return shot, low


def _variational(model: LossModel, d: Array, trajectory: Any) -> Any:
    """(X, Y, J) along a stored trajectory: Ẋ = H_px X + 2D Y, Ẏ = −H_xx X − H_pxᵀ Y,
    J̇ = −½ tr ∇²L (constant D: H_px = −∇²L, H_xx = −∇³L[p])."""
    n = model.dim

    def rhs(t: float, y: Array) -> Array:
        z = trajectory(t)
        x, p = z[:n], z[n:]
        big_x = y[: n * n].reshape(n, n)
        big_y = y[n * n : 2 * n * n].reshape(n, n)
        hess = model.hessian(x[None])[0]
        third = model.third(x[None], p[None])[0]
        x_dot = -hess @ big_x + 2 * d @ big_y
        y_dot = third @ big_x + hess @ big_y
        return np.concatenate([x_dot.ravel(), y_dot.ravel(), [-0.5 * float(np.trace(hess))]])

    return rhs


def _carry(
    model: LossModel,
    d: Array,
    trajectory: Any,
    span: tuple[float, float],
    q0: Array,
    v0: float,
    stops: tuple[float, ...] = (),
    interval: float = 0.05,
) -> tuple[float, Array, list[tuple[float, float, Array]]]:
    """V and Q carried from ``span[0]`` (Q = ``q0``, V = ``v0``) to ``span[1]`` along
    ``trajectory``; also (t, V, Q) at each time in ``stops``."""
    from scipy.integrate import solve_ivp

    n = model.dim
    rhs = _variational(model, d, trajectory)
    state = np.concatenate([np.eye(n).ravel(), q0.ravel(), [0.0]])
    base = float(np.linalg.slogdet(q0)[1])
    accumulated = 0.0
    t0, t1 = span
    inner = [s for s in stops if t0 < s < t1]
    times = np.unique(np.concatenate([np.arange(t0, t1, interval), [t1], inner]))
    out: list[tuple[float, float, Array]] = []

    def value(y: Array) -> tuple[float, Array]:
        big_x = y[: n * n].reshape(n, n)
        big_y = y[n * n : 2 * n * n].reshape(n, n)
        v = v0 + 0.5 * (float(np.linalg.slogdet(big_y)[1]) + accumulated - base) + float(y[-1])
        return v, big_y @ np.linalg.inv(big_x)

    t = t0
    for t_next in times[1:]:
        sol = solve_ivp(rhs, (t, float(t_next)), state, method="DOP853", rtol=1e-12, atol=1e-300)
        state, t = sol.y[:, -1], float(t_next)
        if any(abs(t - s) <= 1e-14 * max(1.0, abs(s)) for s in inner):
            v, q = value(state)
            out.append((t, v, q))
        frame, r = np.linalg.qr(
            np.vstack([state[: n * n].reshape(n, n), state[n * n : -1].reshape(n, n)])
        )
        accumulated += float(np.linalg.slogdet(r)[1])
        state = np.concatenate([frame[:n].ravel(), frame[n:].ravel(), state[-1:]])
    v, q = value(state)
    return v, q, out


def _barrier_along(leg: Any, rhs: Any, span: tuple[float, float], n: int) -> float:
    """∫ p·ẋ dt along a leg (Simpson on 4001 points)."""
    from scipy.integrate import simpson

    times = np.linspace(span[0], span[1], 4001)
    states = leg.sol(times)
    values = np.array([states[n:, k] @ rhs(0.0, states[:, k])[:n] for k in range(times.size)])
    return float(simpson(values, x=times))


def shooting_non_gibbs(
    model: LossModel,
    nm: Any,
    path: Array,
    q_a: Array,
    alpha: float,
    saddle: Any,
    h_a: Array,
) -> tuple[float, float, Array, str]:
    """I (so that V's limit is ½ log|det Q_b| + I), its error, Q at the last stop and a
    description, for the harmonic-switch noise at a 2-D saddle with μ < 1 (module docstring).
    ``path`` is the converged string (it gives the side the instanton arrives from and the
    barrier to compare with); ``saddle`` the saddle's `SaddleModel` (D of the saddle's side)."""
    from ._noise_models import _constant
    from ._prefactor import _arrival_model, _arrival_tail, _plateau, departure_form
    from ._switch import jump_term

    sw: Switch = nm.switch
    a, b = path[0], path[-1]
    n = model.dim
    nm_a = _constant("sgd", sw.d_a, "switch noise, minimum's side", None)
    nm_b = _constant("sgd", sw.d_b, "switch noise, saddle's side", None)
    arrival = _arrival_model(model, nm_b, b, saddle, alpha)
    e_s = arrival.basis[:, 1]
    near = path[int(0.95 * (path.shape[0] - 1))]
    side = 1.0 if float((near - b) @ e_s) >= 0 else -1.0
    shooter = _Shooter(model, sw, a, b, h_a, arrival, side)
    shot, log_eta = shooter.solve()
    t_close, closest, _ = shooter.closest(shot)
    t_switch = float(shot.minimum_leg.t[0])
    w = departure_form(model, nm_a, a, h_a, q_a, alpha)
    log_det_a = float(np.linalg.slogdet(q_a)[1])
    leg_a, leg_b = shot.minimum_leg, shot.saddle_leg
    times = np.linspace(t_close, t_switch, 20001)
    distance = np.linalg.norm(leg_a.sol(times)[:n].T - a, axis=1)
    scale = float(np.linalg.norm(b - a))
    r0 = max(2.0 * closest, 4e-3 * scale)

    def start_at(radius: float) -> tuple[float, float]:
        index = np.nonzero(distance >= radius)[0]
        if index.size == 0:
            raise ConvergenceError(
                "landscape_escape_time: the shot instanton does not leave the minimum's "
                "neighbourhood before the switch surface"
            )
        t = float(times[index[0]])
        x0 = leg_a.sol(t)[:n]
        return t, 0.5 * log_det_a + float(w @ (x0 - a))

    crossing = shot.point
    drift = -model.gradient(crossing[None])[0]
    normal, size, curvature = sw.normal(crossing)
    hess = model.hessian(crossing[None])[0]
    jump = float((shot.p_plus - shot.p_minus) @ normal) / float(size)
    term = jump_term(sw, normal, alpha)
    x_plus = drift + 2 * sw.d_b @ shot.p_plus

    def across(radius: float) -> tuple[float, Array]:
        t, v0 = start_at(radius)
        v_minus, q_minus, _ = _carry(model, sw.d_a, leg_a.sol, (t, t_switch), q_a, v0)
        q_plus = map_hessian(q_minus, normal, curvature, jump, x_plus, hess @ shot.p_plus)
        log_ratio = float(np.linalg.slogdet(q_plus)[1] - np.linalg.slogdet(q_minus)[1])
        return v_minus + term + 0.5 * log_ratio, q_plus

    v_plus, q_plus = across(r0)
    v_plus_far, _ = across(2 * r0)
    # stops on the saddle's side, by distance from the saddle
    length = float(np.linalg.norm(crossing - b))
    side_times = np.linspace(t_switch, 0.0, 40001)
    side_distance = np.linalg.norm(leg_b.sol(side_times)[:n].T - b, axis=1)
    stop_times = tuple(
        float(side_times[np.nonzero(side_distance < m * length)[0][0]])
        for m in _MARKS
        if m * length >= _START_MARGIN * shooter.rho
    )
    if len(stop_times) < 3:
        raise ConvergenceError(
            "landscape_escape_time: the switch surface is too close to the saddle for the "
            "shooting's stops"
        )
    _, q_end, stops = _carry(model, sw.d_b, leg_b.sol, (t_switch, 0.0), q_plus, v_plus, stop_times)
    values = []
    for t, v, q in stops:
        z = leg_b.sol(t)
        values.append(v + _arrival_tail(z[:n] - b, z[n:], q, arrival))
    v_limit, error = _plateau(values)
    error += abs(v_plus_far - v_plus)
    barrier = (
        0.5 * float((leg_a.sol(t_close)[:n] - a) @ q_a @ (leg_a.sol(t_close)[:n] - a))
        + _barrier_along(leg_a, shooter.rhs_a, (t_close, t_switch), n)
        + _barrier_along(leg_b, shooter.rhs_b, (t_switch, 0.0), n)
    )
    log_det_b = float(np.linalg.slogdet(np.linalg.inv(saddle.sigma))[1])
    non_gibbs = v_limit - 0.5 * log_det_b
    detail = (
        f"Maier–Stein regime with the switch noise: the instanton shot backwards from the "
        f"saddle's stable manifold (log₁₀ η = {log_eta:.6f}; closest approach to the minimum "
        f"{closest:.2g}; switch crossed at θ = {np.round(crossing, 6).tolist()}, jump term "
        f"{term:.6g}); V carried along it from {r0:.2g} of the minimum to stops "
        f"{100 * _MARKS[0]:.3g}%…{100 * _MARKS[len(values) - 1]:.3g}% of the way from the "
        f"switch to the saddle with the arrival tail (values {', '.join(f'{v:.6f}' for v in values)});"
        f" barrier along the shot instanton {barrier:.6f}"
    )
    if not math.isfinite(non_gibbs):
        raise ConvergenceError("landscape_escape_time: the shot instanton gave a non-finite I")
    return non_gibbs, error, q_end, detail
