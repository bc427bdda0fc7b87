"""The harmonic-switch SGD noise on a landscape: a D(θ) that jumps across a surface.

The paper's SGD noise D = κ[H(θ)]⁺ (κ = η/2B) is singular where an eigenvalue of H changes sign,
so the toolkit uses its harmonic switch: D = κH_a on the minimum's side of a switch surface
S = {g(θ) = 0} and D = κ|H_b| (eigenvalues of the saddle's Hessian made positive) on the other.
The default surface is where the smallest eigenvalue of H(θ) vanishes (the inflection point in
1-D, the paper's model); a callable g(θ) chooses another. D is constant on each side and jumps
on S, which needs three things that a smooth D does not:

- the action. The geometric action of a string is evaluated segment by segment with D of the
  segment's side; a segment that crosses S is split at the crossing (found on the segment by
  regula falsi) and each piece gets its own D, so the discrete action is a continuous,
  piecewise-smooth function of the points, and its exact gradient includes the motion of the
  crossing point (implicit differentiation of g(x₀ + t(x₁ − x₀)) = 0). The path refracts on S.
- the quasi-potential's Hessian across S. Φ is continuous on S, so its tangential derivatives
  are; the normal component of p = ∇Φ on the far side is the root of the Hamilton–Jacobi
  equation ⟨b, p⟩ + ⟨p, D⁺p⟩ = 0 whose characteristic ẋ = b + 2D⁺p crosses S the same way.
  The Hessian Q⁺ keeps the tangential block of Q⁻ (plus c∇²g for a curved S, c the jump of
  the normal derivative over |∇g|) and its column along the normal n is fixed by Q⁺ẋ⁺ = ṗ⁺.
- the prefactor's jump term. The current J = −P∇L − D∇P − (1 − α)(∇·D)P stays bounded across S
  only if D_nn^(1−α) P is continuous there (D_nn = nᵀDn); with P ≈ K e^{−Φ}, the amplitude K
  jumps by (D⁻_nn/D⁺_nn)^(1−α), which adds (1 − α) log(D⁺_nn/D⁻_nn) to the non-Gibbs integral
  I (⁻ the minimum's side, ⁺ the saddle's). In 1-D this is the exact result: the MFPT
  quadrature of a piecewise D gives τ = 2π/√(H_a|H_b|) (D_a/D_b)^(α−½) e^ΔΦ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from flatminima.errors import ConvergenceError, NoiseModelError, ParameterError, ShapeError

from ._loss_model import LossModel

Array = np.ndarray
_TINY = 1e-300


@dataclass(frozen=True)
class Switch:
    """D = ``d_a`` where sign g(θ) = ``sign_a`` (the minimum's side), ``d_b`` elsewhere."""

    surface: Callable[[Array], Array]  # (m, n) -> (m,)
    sign_a: float
    d_a: Array
    d_b: Array
    description: str

    def side_a(self, x: Array) -> Array:
        return np.sign(self.surface(x)) == self.sign_a

    def field(self, x: Array) -> Array:
        return np.where(self.side_a(x)[:, None, None], self.d_a, self.d_b)

    def normal(self, x: Array) -> tuple[Array, Array, Array]:
        """(unit normal, |∇g|, ∇²g) of the surface at one point x (n,), by central differences
        of g (a user's g has no automatic derivative)."""
        n = x.size
        h = 1e-5 * max(1.0, float(np.max(np.abs(x))))
        eye = np.eye(n)
        plus = self.surface(x + h * eye)
        minus = self.surface(x - h * eye)
        grad = (plus - minus) / (2 * h)
        centre = float(self.surface(x[None])[0])
        hess = np.zeros((n, n))
        for i in range(n):
            for j in range(i, n):
                if i == j:
                    hess[i, i] = (plus[i] - 2 * centre + minus[i]) / h**2
                else:
                    pts = np.stack(
                        [
                            x + h * (eye[i] + eye[j]),
                            x + h * (eye[i] - eye[j]),
                            x - h * (eye[i] - eye[j]),
                            x - h * (eye[i] + eye[j]),
                        ]
                    )
                    v = self.surface(pts)
                    hess[i, j] = hess[j, i] = (v[0] - v[1] - v[2] + v[3]) / (4 * h * h)
        size = float(np.linalg.norm(grad))
        if not size > 0:
            raise NoiseModelError(
                "switch",
                "a switch surface g(θ) = 0 with a non-zero gradient where the path crosses it",
                f"∇g = 0 at θ = {np.round(x, 6).tolist()}",
            )
        return grad / size, np.asarray(size), hess


def _abs_matrix(h: Array) -> Array:
    w, v = np.linalg.eigh(h)
    return np.asarray((v * np.abs(w)) @ v.T)


def _smallest_curvature(model: LossModel) -> Callable[[Array], Array]:
    def g(x: Array) -> Array:
        return np.asarray(np.linalg.eigvalsh(model.hessian(np.atleast_2d(x)))[:, 0])

    return g


def _user_surface(fn: Callable[..., Any], n: int) -> Callable[[Array], Array]:
    def g(x: Array) -> Array:
        x = np.atleast_2d(x)
        try:
            out = np.asarray(fn(x), dtype=float).reshape(-1)
        except Exception:
            out = None
        if out is None or out.shape != (x.shape[0],):
            out = np.array([float(np.asarray(fn(row), dtype=float)) for row in x])
        return out

    return g


def switch_model(
    model: LossModel, minimum: Array, saddle: Array, kappa: float, switch: Any
) -> Switch:
    """The harmonic switch D = κH_a | κ|H_b| across the surface named by ``switch``:
    ``"harmonic"`` (where the smallest eigenvalue of H(θ) vanishes) or a callable g(θ)."""
    n = model.dim
    if isinstance(switch, str) and switch.lower() == "literal":
        raise NoiseModelError(
            "switch",
            "'harmonic' or a callable g(θ) whose zero set is the switch surface",
            switch,
            "the literal SGD model D = κ[H(θ)]⁺ (the Hessian's negative part dropped) is singular "
            "where the smallest eigenvalue of H changes sign, which every path from the minimum "
            "(H positive definite) to the saddle (one negative eigenvalue) crosses: D⁻¹ and the "
            "action diverge there, the quasi-potential barrier is infinite, and the continuous "
            "process never escapes (a simulation escapes only by jumping over the singular "
            "surface, a time-step artifact); use the harmonic switch or pass D(θ) as a callable",
        )
    if isinstance(switch, str) and switch.lower() == "harmonic":
        surface = _smallest_curvature(model)
        where = "where the smallest eigenvalue of H(θ) vanishes"
    elif callable(switch):
        surface = _user_surface(switch, n)
        where = "on the surface g(θ) = 0 of the callable switch"
    else:
        raise ParameterError(
            "switch", "'harmonic', 'literal' (refused, with the reason) or a callable g(θ)", switch
        )
    try:
        values = surface(np.stack([minimum, saddle]))
    except Exception as error:  # a user's callable: its failure is bad input
        raise ParameterError(
            "switch",
            "a callable θ -> g(θ) that evaluates at the minimum and the saddle",
            switch,
            f"it raised {type(error).__name__}: {error}",
        ) from None
    if values.shape != (2,) or not np.all(np.isfinite(values)):
        raise ShapeError("switch", "a callable θ -> one finite number g(θ)", values)
    if values[0] == 0 or np.sign(values[0]) == np.sign(values[1]):
        raise ParameterError(
            "switch",
            "a surface g(θ) = 0 with the minimum and the saddle strictly on opposite sides",
            f"g(minimum) = {values[0]:.3g}, g(saddle) = {values[1]:.3g}",
        )
    h_a = model.hessian(minimum[None])[0]
    h_b = model.hessian(saddle[None])[0]
    return Switch(
        surface=surface,
        sign_a=float(np.sign(values[0])),
        d_a=kappa * h_a,
        d_b=kappa * _abs_matrix(h_b),
        description=f"SGD noise, harmonic switch: D = κH_a on the minimum's side, κ|H_b| on the "
        f"saddle's side, {where} (κ = η/2B = {kappa:.6g})",
    )


# --------------------------------------------------------------------------------------------
# the action of a string across the switch
# --------------------------------------------------------------------------------------------


def crossing(sw: Switch, x0: Array, x1: Array, iterations: int = 100) -> Array:
    """t ∈ (0, 1) with g(x₀ + t(x₁ − x₀)) = 0 on each row (the ends on opposite sides), by
    regula falsi with the Illinois modification (exact in one step for a plane)."""
    lo, hi = np.zeros(len(x0)), np.ones(len(x0))
    g_lo, g_hi = sw.surface(x0), sw.surface(x1)
    last = np.zeros(len(x0))
    t = lo
    for _ in range(iterations):
        t = np.clip((lo * g_hi - hi * g_lo) / (g_hi - g_lo), lo, hi)
        g_t = sw.surface(x0 + t[:, None] * (x1 - x0))
        if np.all(np.abs(g_t) <= 1e-14 * (np.abs(g_lo) + np.abs(g_hi))) or np.all(hi - lo < 1e-15):
            break
        move_lo = np.sign(g_t) == np.sign(g_lo)
        g_hi = np.where(move_lo & (last == 1), g_hi / 2, g_hi)  # Illinois: halve the stale end
        g_lo = np.where(~move_lo & (last == -1), g_lo / 2, g_lo)
        lo, g_lo = np.where(move_lo, t, lo), np.where(move_lo, g_t, g_lo)
        hi, g_hi = np.where(move_lo, hi, t), np.where(move_lo, g_hi, g_t)
        last = np.where(move_lo, 1.0, -1.0)
    return np.asarray(t)


def _piece(delta: Array, mid: Array, metric: Array, loss: LossModel) -> tuple[Array, Array, Array]:
    """½(|δ|_M|b|_M − ⟨δ, b⟩_M) per row, b = −∇L(mid), with its derivatives in δ and mid."""
    drift = -loss.gradient(mid)
    m_delta = np.einsum("mij,mj->mi", metric, delta)
    m_drift = np.einsum("mij,mj->mi", metric, drift)
    u = np.sqrt(np.maximum(np.einsum("mi,mi->m", delta, m_delta), 0.0))
    v = np.sqrt(np.maximum(np.einsum("mi,mi->m", drift, m_drift), 0.0))
    w = np.einsum("mi,mi->m", delta, m_drift)
    from ._action import segment_derivatives

    d_delta, d_mid = segment_derivatives(u, v, m_delta, m_drift, loss.hessian(mid))
    return 0.5 * (u * v - w), d_delta, d_mid


def switch_action(
    phi: Array, loss: LossModel, sw: Switch, gradient: bool = True, interface: int | None = None
) -> tuple[float, Array]:
    """Midpoint-rule geometric action of the string ``phi`` with the switch noise: each
    segment with the D of its side, a segment that crosses S split at the crossing; and its
    exact gradient (zero rows for the fixed ends). With ``interface = j`` the point j lies on S:
    segment j − 1 takes the D of point j − 1's side and segment j that of point j + 1's, unsplit
    (no kink where point j crosses S)."""
    m_a, m_b = np.linalg.inv(sw.d_a), np.linalg.inv(sw.d_b)
    side = sw.side_a(phi)
    x0, x1 = phi[:-1], phi[1:]
    delta = x1 - x0
    start, end = side[:-1].copy(), side[1:].copy()
    if interface is not None:
        end[interface - 1] = start[interface - 1]
        start[interface] = end[interface]
    cross = start != end
    t = np.ones(len(delta))
    if np.any(cross):
        t[cross] = crossing(sw, x0[cross], x1[cross])
    # piece 1: from x0 over t·δ with x0's D; piece 2: the rest with x1's D (empty if no crossing)
    metric0 = np.where(start[:, None, None], m_a, m_b)
    metric1 = np.where(end[:, None, None], m_a, m_b)
    a1, gd1, gm1 = _piece(t[:, None] * delta, x0 + 0.5 * t[:, None] * delta, metric0, loss)
    a2, gd2, gm2 = _piece(
        (1 - t)[:, None] * delta, x0 + 0.5 * (1 + t)[:, None] * delta, metric1, loss
    )
    action = float(np.sum(a1) + np.sum(np.where(cross, a2, 0.0)))
    if not gradient:
        return action, np.zeros_like(phi)
    c = cross[:, None].astype(float)
    tt = t[:, None]
    g_x0 = -tt * gd1 + (1 - tt / 2) * gm1 + c * (-(1 - tt) * gd2 + 0.5 * (1 - tt) * gm2)
    g_x1 = tt * gd1 + 0.5 * tt * gm1 + c * ((1 - tt) * gd2 + 0.5 * (1 + tt) * gm2)
    idx = np.nonzero(cross)[0]
    for k in idx:  # the crossing point moves with the segment's ends
        point = x0[k] + t[k] * delta[k]
        normal, size, _ = sw.normal(point)
        grad_g = normal * size
        along = float(grad_g @ delta[k])
        if abs(along) < _TINY:
            continue
        d_t = float(
            (gd1[k] - gd2[k]) @ delta[k] + 0.5 * (gm1[k] + gm2[k]) @ delta[k]
        )  # ∂(a1 + a2)/∂t
        g_x0[k] += d_t * (-(1 - t[k]) * grad_g / along)
        g_x1[k] += d_t * (-t[k] * grad_g / along)
    grad = np.zeros_like(phi)
    grad[:-1] += g_x0
    grad[1:] += g_x1
    grad[0] = grad[-1] = 0.0
    return action, grad


def _project(sw: Switch, z: Array, steps: int = 8) -> Array:
    """z moved onto S along ∇g (Newton's method on g; one step for a plane)."""
    x = z.copy()
    for _ in range(steps):
        value = float(sw.surface(x[None])[0])
        if value == 0:
            break
        normal, size, _ = sw.normal(x)
        x = x - value / float(size) * normal
    return x


def _snap(sw: Switch, phi: Array) -> tuple[Array, int]:
    """The string with its point nearest the (first) crossing of S moved onto S, and its index."""
    side = sw.side_a(phi)
    change = np.nonzero(side[:-1] != side[1:])[0]
    if change.size == 0:
        raise ConvergenceError("minimum_action_path: the string does not cross the switch surface")
    k = int(change[0])
    t = float(crossing(sw, phi[k : k + 1], phi[k + 1 : k + 2])[0])
    j = k if t < 0.5 else k + 1
    j = min(max(j, 1), len(phi) - 2)
    out = phi.copy()
    out[j] = _project(sw, phi[k] + t * (phi[k + 1] - phi[k]))
    return out, j


def relax_switch(
    phi: Array, loss: LossModel, noise: Any, tol: float, max_iterations: int
) -> tuple[Array, float, int, float, bool]:
    """`_relax` for the switch noise: the point nearest the crossing is held on S (moved along
    it through its projection, its gradient the tangential part), the segments beside it each
    on one side, so the discrete action is smooth in every free variable (a point crossing S
    at a refraction corner would make the gradient jump and L-BFGS stall there); spacing equal
    on each side. Returns what `_relax` does."""
    from ._action import _spacing_penalty, lbfgs

    sw: Switch = noise.switch
    phi, j = _snap(sw, phi)
    n_seg, n = phi.shape[0] - 1, phi.shape[1]
    ends = phi[[0, -1]]
    scale = max(abs(switch_action(phi, loss, sw, False, j)[0]), 1e-12)
    chord = float(np.sum(np.linalg.norm(np.diff(phi, axis=0), axis=1)))
    weight = scale * n_seg / chord**2

    def full(z: Array) -> tuple[Array, Array]:
        inner = z.reshape(n_seg - 1, n).copy()
        inner[j - 1] = _project(sw, inner[j - 1])
        normal = sw.normal(inner[j - 1])[0]
        return np.vstack([ends[0], inner, ends[1]]), normal

    def fun(z: Array) -> tuple[float, Array]:
        points, normal = full(z)
        value, grad = switch_action(points, loss, sw, True, j)
        pv, pg = _spacing_penalty(points, weight, j)
        total = grad + pg
        total[j] -= (total[j] @ normal) * normal  # the point moves along S
        return value + pv, total[1:-1].ravel()

    result = lbfgs(fun, phi[1:-1].ravel(), tol, scale, max_iterations)
    relaxed, _ = full(result.x)
    action = switch_action(relaxed, loss, sw, False, j)[0]
    grad = float(np.linalg.norm(fun(result.x)[1])) / scale
    ok = bool(result.success) or grad < 1e-8
    if not ok:
        sliding = _sliding(sw, loss, relaxed, j)
        if sliding is not None:
            raise ConvergenceError(
                f"minimum_action_path: the minimum-action path slides along the switch surface "
                f"({sliding}; relaxation stopped at relative gradient {grad:.2g} on "
                f"{n_seg} segments). A path that runs along the surface where D jumps is a "
                "sliding mode (the cheapest motion there alternates between the two sides' D, "
                "Dupuis & Ellis 1992), which neither the string (one point held on the surface) "
                "nor the prefactor (one transversal refraction) represents; more points do not "
                "help. Put the switch surface elsewhere (switch=g) or pass a smooth D(θ)"
            )
    return relaxed, action, int(result.nit), grad, ok


def _sliding(sw: Switch, loss: LossModel, phi: Array, j: int) -> str | None:
    """Why the relaxed string ``phi`` (point j held on S) slides along S, or None: another point
    of the string on S (within 5% of a segment), or an instanton that reaches S where the
    Hamilton–Jacobi equation on the far side has no root (total reflection)."""
    spacing = float(np.mean(np.linalg.norm(np.diff(phi, axis=0), axis=1)))
    on_surface = []
    for i in range(max(j - 4, 1), min(j + 5, len(phi) - 1)):
        value = float(sw.surface(phi[i][None])[0])
        if abs(value) / float(sw.normal(phi[i])[1]) < 0.05 * spacing:
            on_surface.append(i)
    normal = sw.normal(phi[j])[0]
    into, out = phi[j] - phi[j - 1], phi[j + 1] - phi[j]
    angles = [
        float(np.degrees(np.arcsin(min(abs(normal @ v) / np.linalg.norm(v), 1.0))))
        for v in (into, out)
    ]
    m_a = np.linalg.inv(sw.d_a)
    drift = -loss.gradient(phi[j][None])[0]
    speed = np.sqrt(max(drift @ m_a @ drift, 0.0) / max(into @ m_a @ into, _TINY))
    p_minus = 0.5 * m_a @ (speed * into - drift)
    dn = sw.d_b @ normal
    qb = float(drift @ normal + 2 * p_minus @ dn)
    disc = qb * qb - 4 * float(normal @ dn) * float(drift @ p_minus + p_minus @ sw.d_b @ p_minus)
    where = f"at θ = {np.round(phi[j], 4).tolist()}"
    figures = f"the string meets it at {angles[0]:.2g}° and leaves it at {angles[1]:.2g}°"
    if disc < 0:
        return (
            f"{where} the instanton arriving at {angles[0]:.2g}° has no refracted continuation: "
            f"the Hamilton–Jacobi equation on the saddle's side has no real root (discriminant "
            f"{disc / max(qb * qb, _TINY):.2g} of b², total reflection); {figures}"
        )
    if len(on_surface) > 1:
        return (
            f"{where} {len(on_surface)} consecutive points of the string lie on it (points "
            f"{on_surface}, within 5% of a segment); {figures}"
        )
    return None


# --------------------------------------------------------------------------------------------
# the prefactor across the switch
# --------------------------------------------------------------------------------------------


def split_at_crossing(sw: Switch, path: Array) -> tuple[Array, Array, Array]:
    """(minimum's piece ending on S, saddle's piece starting on S, the crossing point): the
    path cut at its first crossing of S."""
    side = sw.side_a(path)
    change = np.nonzero(side[:-1] != side[1:])[0]
    if change.size == 0:
        raise ConvergenceError(
            "landscape_escape_time: the minimum-action path does not cross the switch surface"
        )
    if change.size > 1:
        raise ConvergenceError(
            f"landscape_escape_time: the minimum-action path crosses the switch surface "
            f"{change.size} times; the prefactor handles one crossing (give an initial path)"
        )
    k = int(change[0])
    t = float(crossing(sw, path[k : k + 1], path[k + 1 : k + 2])[0])
    point = path[k] + t * (path[k + 1] - path[k])
    scale = float(np.linalg.norm(path[k + 1] - path[k]))
    head = [p for p in path[: k + 1] if np.linalg.norm(p - point) > 1e-6 * scale]
    tail = [p for p in path[k + 1 :] if np.linalg.norm(p - point) > 1e-6 * scale]
    return np.vstack([*head, point]), np.vstack([point, *tail]), point


def refract(p_minus: Array, normal: Array, drift: Array, d_plus: Array, x_minus: Array) -> Array:
    """p⁺ = p⁻ + c n with ⟨b, p⁺⟩ + ⟨p⁺, D⁺p⁺⟩ = 0, the root whose ẋ⁺ = b + 2D⁺p⁺ crosses S in
    the direction of ẋ⁻ (Φ continuous on S: tangential derivatives continuous)."""
    dn = d_plus @ normal
    qa = float(normal @ dn)
    qb = float(drift @ normal + 2 * p_minus @ dn)
    qc = float(drift @ p_minus + p_minus @ d_plus @ p_minus)
    disc = qb * qb - 4 * qa * qc
    if disc < 0:
        raise ConvergenceError(
            "landscape_escape_time: no refracted instanton across the switch surface (the "
            "Hamilton–Jacobi equation has no real root there: total reflection)"
        )
    direction = np.sign(float(normal @ x_minus))
    for c in ((-qb + np.sqrt(disc)) / (2 * qa), (-qb - np.sqrt(disc)) / (2 * qa)):
        p = p_minus + c * normal
        if np.sign(float(normal @ (drift + 2 * d_plus @ p))) == direction:
            return np.asarray(p)
    raise ConvergenceError(
        "landscape_escape_time: the refracted instanton does not cross the switch surface"
    )


def map_hessian(
    q_minus: Array,
    normal: Array,
    curvature: Array,
    jump: float,
    x_dot: Array,
    p_dot: Array,
) -> Array:
    """Q⁺ from Q⁻ across S: the tangential block Q⁻ + c∇²g (c = ``jump``, the jump of ∂_nΦ over
    |∇g|), the column along n from Q⁺ẋ⁺ = ṗ⁺ (ẋ⁺ must cross S)."""
    n = normal.size
    proj = np.eye(n) - np.outer(normal, normal)
    block = proj @ (q_minus + jump * curvature) @ proj
    x_t = proj @ x_dot
    x_n = float(normal @ x_dot)
    z_t = (proj @ p_dot - block @ x_t) / x_n
    z_n = (float(normal @ p_dot) - float(z_t @ x_t)) / x_n
    z = z_t + z_n * normal
    q = block + np.outer(normal, z) + np.outer(z, normal) - z_n * np.outer(normal, normal)
    return np.asarray(0.5 * (q + q.T))


def jump_term(sw: Switch, normal: Array, alpha: float) -> float:
    """(1 − α) log(D⁺_nn / D⁻_nn): D_nn^(1−α) P continuous across S."""
    return float((1 - alpha) * np.log((normal @ sw.d_b @ normal) / (normal @ sw.d_a @ normal)))


def _piece_integral(
    model: LossModel, nm: Any, piece: Array, q_start: Array, alpha: float, start: float
) -> tuple[float, Array]:
    """∫ F dt along ``piece`` (the minimum's side, D constant) from arc length ``start`` to its
    end on S, with Q from ``q_start``; returns I and Q at the end."""
    from scipy.interpolate import CubicSpline

    from ._prefactor import _GAIN, _hamiltonian_rhs, _integrate_flow, _momentum

    n = model.dim
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(piece, axis=0), axis=1))])
    spline = CubicSpline(s, piece, axis=0)
    momentum = CubicSpline(s, _momentum(model, nm, piece, spline(s, 1)), axis=0)
    scale = max(float(np.max(np.abs(np.linalg.eigvalsh(model.hessian(piece[[0, -1]]))))), 1e-300)
    rhs = _hamiltonian_rhs(model, nm, spline, momentum, alpha, _GAIN * scale)

    def event(_t: float, y: Array) -> float:
        return float(y[0] - s[-1])

    event.terminal = True  # type: ignore[attr-defined]
    state = np.concatenate([[start * s[-1]], q_start.ravel(), [0.0]])
    sol = _integrate_flow(rhs, 0.0, state, event, n)
    if sol.status != 1:
        raise ConvergenceError(
            "landscape_escape_time: the Riccati equation along the instanton did not reach the "
            f"switch surface ({sol.message}); the path may not be converged"
        )
    end = sol.y_events[0][0]
    return float(end[-1]), end[1 : 1 + n * n].reshape(n, n)


def switch_non_gibbs(
    model: LossModel,
    nm: Any,
    path: Array,
    q_a: Array,
    alpha: float,
    saddle: Any,
) -> tuple[float, float, Array, str]:
    """I = I⁻ + (1 − α) log(D⁺_nn/D⁻_nn) + I⁺ along a path that crosses the switch once: the
    Riccati flow on the minimum's side, Q mapped across S (`map_hessian`), the flow on the
    saddle's side to the saddle (with its tail, as for a smooth D). Returns I, its error, Q at
    the end and a description with the crossing's figures. ``saddle`` is the saddle's linear
    model (`flatminima.numerics._prefactor.SaddleModel`: D there is the saddle side's)."""
    from ._noise_models import _constant
    from ._prefactor import _momentum, _non_gibbs_integral

    sw: Switch = nm.switch
    head, tail, point = split_at_crossing(sw, path)
    nm_a = _constant("sgd", sw.d_a, "switch noise, minimum's side", None)
    nm_b = _constant("sgd", sw.d_b, "switch noise, saddle's side", None)
    i_minus, q_minus = _piece_integral(model, nm_a, head, q_a, alpha, 1e-4)
    normal, size, curvature = sw.normal(point)
    drift = -model.gradient(point[None])[0]
    tangent = head[-1] - head[-2]
    p_minus = _momentum(model, nm_a, point[None], tangent[None])[0]
    x_minus = drift + 2 * sw.d_a @ p_minus
    p_plus = refract(p_minus, normal, drift, sw.d_b, x_minus)
    x_plus = drift + 2 * sw.d_b @ p_plus
    hess = model.hessian(point[None])[0]
    jump = float((p_plus - p_minus) @ normal) / float(size)
    q_plus = map_hessian(q_minus, normal, curvature, jump, x_plus, hess @ p_plus)
    term = jump_term(sw, normal, alpha)
    i_plus, error, q_end = _non_gibbs_integral(model, nm_b, tail, q_plus, alpha, saddle)
    # the refraction law against the relaxed string: the direction of ẋ⁺ vs the path's
    out = tail[1] - tail[0]
    bend = float(
        np.arccos(np.clip(out @ x_plus / (np.linalg.norm(out) * np.linalg.norm(x_plus)), -1, 1))
    )
    detail = (
        f"switch crossed at θ = {np.round(point, 6).tolist()}: I = {i_minus:.6g} (minimum's "
        f"side) + {term:.6g} (jump, D_nn^(1−α)P continuous) + {i_plus:.6g} (saddle's side); "
        f"refracted instanton vs the string's direction after the crossing: {bend:.2g} rad"
    )
    return i_minus + term + i_plus, error, q_end, detail
