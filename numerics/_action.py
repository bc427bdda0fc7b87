"""The minimum-action (instanton) path and the Freidlin–Wentzell quasi-potential barrier.

For ``dθ = b(θ) dt + √(2 D(θ)) dW`` with b = −∇L, the probability of a path is ≈ e^{−S} with
the Freidlin–Wentzell action S = ¼ ∫ (θ̇ − b)ᵀ D⁻¹ (θ̇ − b) dt, and the quasi-potential barrier
ΔΦ is the least action of a path from the minimum a to the saddle b (in any time). Minimized over
time, the action becomes the geometric action of Heymann and Vanden-Eijnden (gMAM, 2008),

    Ŝ[φ] = ½ ∫ ( |φ'|_M |b(φ)|_M − ⟨φ', b(φ)⟩_M ) ds,   M = D(φ)⁻¹, |v|_M² = vᵀMv,

which does not depend on how the curve φ is parametrized. Here the curve is a string of N + 1
points with fixed ends a and b; Ŝ is discretized by the midpoint rule on each segment and
minimized over the interior points by L-BFGS with its exact gradient (the loss's Hessian at the
midpoints; D's derivative for a state-dependent D), and the string is reparametrized to equal
arc length between rounds (as in the string method), until the action stops changing. The
barrier is computed on N, 2N and 4N points, which measures the convergence order in N and gives
a Richardson-extrapolated ΔΦ with an error estimate.

For white noise D = d·I the minimizer climbs along −b and ΔΦ = ΔL/d exactly; for anisotropic or
state-dependent D the dynamics is not reversible and ΔΦ is neither ΔL/d nor ΔL/(eᵀDe).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from flatminima.errors import (
    BudgetError,
    ConvergenceError,
    HessianError,
    ParameterError,
    ShapeError,
)

from ._action_hessian import constant_metric
from ._blas_threads import one_blas_thread
from ._loss_model import LossModel, critical_point, loss_model
from ._noise_models import NoiseModel, check_continuous, noise_model

__all__ = ["MinimumActionPath", "minimum_action_path"]

Array = np.ndarray
_TINY = 1e-300


@dataclass(frozen=True)
class MinimumActionPath:
    """The minimum-action path from a minimum to a saddle and its action.

    Attributes
    ----------
    path
        (N + 1, n) points from the minimum to the saddle, equally spaced in arc length (finest
        string).
    action
        The geometric action of the finest string.
    barrier
        ΔΦ, Richardson-extrapolated from the three strings (the finest action if the measured
        order is not in (0.5, 6)).
    error
        A conservative bound on ``barrier``'s error: the estimated error of the finest string,
        |S_2N − S_4N| / (2^p − 1) (the extrapolated value is usually far better).
    order
        Measured convergence order of the action in the number of points (about 2).
    actions, points
        Action on each string and its number of segments, coarse to fine.
    iterations
        L-BFGS iterations, all rounds and strings together.
    converged
        Whether every string's last round changed the action by less than ``tol`` (relative)
        and the measured order is sensible.
    residual
        The last round's relative change of the action on the finest string.
    minimum, saddle
        The critical points after Newton refinement.
    noise
        The noise model's description.
    """

    path: Array
    action: float
    barrier: float
    error: float
    order: float | None
    actions: tuple[float, ...]
    points: tuple[int, ...]
    iterations: int
    converged: bool
    residual: float
    minimum: Array
    saddle: Array
    noise: str
    method: str = field(default="")

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path.tolist(),
            "action": self.action,
            "barrier": self.barrier,
            "error": self.error,
            "order": self.order,
            "actions": list(self.actions),
            "points": list(self.points),
            "iterations": self.iterations,
            "converged": self.converged,
            "residual": self.residual,
            "minimum": self.minimum.tolist(),
            "saddle": self.saddle.tolist(),
            "noise": self.noise,
            "method": self.method,
        }

    def __repr__(self) -> str:
        return (
            f"MinimumActionPath(barrier={self.barrier:.10g} ± {self.error:.2g}, "
            f"order={self.order if self.order is None else round(self.order, 2)}, "
            f"points={self.points[-1] + 1}, dim={self.path.shape[1]}, "
            f"converged={self.converged})"
        )


def segment_derivatives(
    u: Array, v: Array, m_delta: Array, m_drift: Array, hess: Array
) -> tuple[Array, Array]:
    """Derivatives of ½(u v − w) per segment (u = |δ|_M, v = |b|_M, w = ⟨δ, b⟩_M, M held
    fixed) in δ and in the midpoint, through b(x) = −∇L(x) (Jacobian −H, symmetric)."""
    us, vs = np.maximum(u, _TINY), np.maximum(v, _TINY)
    d_delta = 0.5 * ((v / us)[:, None] * m_delta - m_drift)
    d_mid = 0.5 * (
        -(u / vs)[:, None] * np.einsum("mij,mj->mi", hess, m_drift)
        + np.einsum("mij,mj->mi", hess, m_delta)
    )
    return d_delta, d_mid


def geometric_action(
    phi: Array, loss: LossModel, noise: NoiseModel, gradient: bool = True
) -> tuple[float, Array]:
    """Midpoint-rule geometric action of the string ``phi`` (N + 1, n) and its gradient with
    respect to every point (zero rows for the fixed ends)."""
    if noise.switch is not None:  # D jumps on a surface: segments split there
        from ._switch import switch_action

        return switch_action(phi, loss, noise.switch, gradient)
    delta = np.diff(phi, axis=0)
    mid = 0.5 * (phi[1:] + phi[:-1])
    drift = -loss.gradient(mid)
    if noise.constant is not None:
        metric = constant_metric(noise.constant)
        m_delta, m_drift = delta @ metric, drift @ metric
    else:
        metric = np.linalg.inv(noise.field(mid))
        m_delta = np.einsum("mij,mj->mi", metric, delta)
        m_drift = np.einsum("mij,mj->mi", metric, drift)
    u = np.sqrt(np.maximum(np.einsum("mi,mi->m", delta, m_delta), 0.0))
    v = np.sqrt(np.maximum(np.einsum("mi,mi->m", drift, m_drift), 0.0))
    w = np.einsum("mi,mi->m", delta, m_drift)
    action = 0.5 * float(np.sum(u * v - w))
    if not gradient:
        return action, np.zeros_like(phi)
    d_delta, d_mid = segment_derivatives(u, v, m_delta, m_drift, loss.hessian(mid))
    if noise.constant is None:  # ∂_k M = −M ∂_k D M
        us, vs = np.maximum(u, _TINY), np.maximum(v, _TINY)
        dd = noise.derivative(mid)  # [m, i, j, k]
        quad_dd = np.einsum("mi,mijk,mj->mk", m_delta, dd, m_delta)
        quad_bb = np.einsum("mi,mijk,mj->mk", m_drift, dd, m_drift)
        quad_db = np.einsum("mi,mijk,mj->mk", m_delta, dd, m_drift)
        d_mid += 0.5 * (
            -(v / (2 * us))[:, None] * quad_dd - (u / (2 * vs))[:, None] * quad_bb + quad_db
        )
    grad = np.zeros_like(phi)
    grad[1:-1] = d_delta[:-1] - d_delta[1:] + 0.5 * (d_mid[:-1] + d_mid[1:])
    return action, grad


def reparametrize(phi: Array, points: int) -> Array:
    """The string resampled at ``points + 1`` points equally spaced in arc length."""
    lengths = np.linalg.norm(np.diff(phi, axis=0), axis=1)
    keep = np.concatenate([[True], lengths > 1e-14 * max(float(lengths.sum()), 1e-300)])
    phi = phi[keep]
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(phi, axis=0), axis=1))])
    target = np.linspace(0.0, s[-1], points + 1)
    if phi.shape[0] < 4:
        return np.stack([np.interp(target, s, phi[:, k]) for k in range(phi.shape[1])], axis=1)
    from scipy.interpolate import CubicSpline  # lazy: scipy.special stays off the import path

    out = np.asarray(CubicSpline(s, phi, axis=0)(target))
    out[0], out[-1] = phi[0], phi[-1]
    return out


def _spacing_penalty(phi: Array, weight: float, skip: int | None = None) -> tuple[float, Array]:
    """weight · Σ (|Δ_{i+1}| − |Δ_i|)²: zero for a string equally spaced in arc length. It
    removes the tangential freedom of the geometric action (which does not depend on the
    parametrization) so that the minimizer is well posed. ``skip = j`` leaves out the pair of
    segments beside point j (equal spacing on each side of it, each side its own)."""
    delta = np.diff(phi, axis=0)
    d = np.maximum(np.linalg.norm(delta, axis=1), _TINY)
    jump = np.diff(d)
    if skip is not None:
        jump[skip - 1] = 0.0
    value = weight * float(np.sum(jump**2))
    d_d = np.zeros_like(d)
    d_d[1:] += 2 * weight * jump
    d_d[:-1] -= 2 * weight * jump
    unit = delta / d[:, None]
    grad = np.zeros_like(phi)
    grad[1:] += d_d[:, None] * unit
    grad[:-1] -= d_d[:, None] * unit
    return value, grad


def lbfgs(fun: Any, start: Array, tol: float, scale: float, max_iterations: int) -> Any:
    """L-BFGS-B on ``fun`` (value and gradient) with the string's stopping rules."""
    from scipy.optimize import minimize  # lazy: scipy.special stays off the import path

    options = {
        "maxiter": max_iterations,
        "maxfun": 2 * max_iterations,
        "ftol": tol,
        "gtol": 1e-12 * scale,
        "maxcor": 50,
    }
    return minimize(fun, start, jac=True, method="L-BFGS-B", options=options)


def _relax(
    phi: Array,
    loss: LossModel,
    noise: NoiseModel,
    tol: float,
    max_iterations: int,
    precondition: bool = True,
) -> tuple[Array, float, int, float, bool]:
    """Minimize action + spacing penalty over the interior points with L-BFGS, in the variables
    of a banded Cholesky factor of the Hessian (`_action_hessian`), rebuilt each round until a
    round ends on the tolerance within ``_ROUND`` iterations; ``precondition=False`` is plain
    L-BFGS on the coordinates (the method before 2026-12-02, kept for the benchmark)."""
    n_seg = phi.shape[0] - 1
    ends = phi[[0, -1]]
    scale = max(abs(geometric_action(phi, loss, noise, gradient=False)[0]), 1e-12)
    if not scale < 1e300:  # ΔL/D beyond float64 already on the straight path (D = 1e-308)
        raise ParameterError(
            "diffusion",
            "a diffusion for which the action (≈ ΔL/D) fits in float64",
            getattr(noise, "description", "D"),
            f"the action on the straight path is {scale:.3g}; the path is computed in float64",
        )
    chord = float(np.sum(np.linalg.norm(np.diff(phi, axis=0), axis=1)))
    weight = scale * n_seg / chord**2

    def full(z: Array) -> Array:
        return np.vstack([ends[0], z.reshape(n_seg - 1, -1), ends[1]])

    def fun(z: Array) -> tuple[float, Array]:
        s, g = geometric_action(full(z), loss, noise)
        pv, pg = _spacing_penalty(full(z), weight)
        return s + pv, (g + pg)[1:-1].ravel()

    z, iterations, ok = phi[1:-1].ravel(), 0, False
    while iterations < max_iterations and not ok:
        cap = min(_ROUND if precondition else max_iterations, max_iterations - iterations)
        z, its, ok = _lbfgs_round(fun, z, full, loss, noise, weight, tol, scale, cap, precondition)
        iterations += its
        ok = ok and its < cap
    relaxed = full(z)
    action = geometric_action(relaxed, loss, noise, gradient=False)[0]
    if not math.isfinite(action):
        raise ConvergenceError(
            "minimum_action_path: the action became non-finite (the path left the region "
            "where the loss and D are defined); give an initial path"
        )
    grad = float(np.linalg.norm(fun(z)[1])) / scale
    return relaxed, action, iterations, grad, ok or grad < 1e-8


#: L-BFGS iterations between rebuilds of the preconditioner.
_ROUND = 60


def _lbfgs_round(
    fun: Any,
    z: Array,
    full: Any,
    loss: LossModel,
    noise: NoiseModel,
    weight: float,
    tol: float,
    scale: float,
    cap: int,
    precondition: bool,
) -> tuple[Array, int, bool]:
    """One L-BFGS run of at most ``cap`` iterations from ``z``, preconditioned at ``z``."""
    from scipy.optimize import minimize  # lazy: scipy.special stays off the import path

    options = {"maxiter": cap, "maxfun": 2 * cap + 20, "ftol": tol, "maxcor": 50}
    if not precondition:
        result = lbfgs(fun, z, tol, scale, cap)
        return np.asarray(result.x), int(result.nit), bool(result.success)
    from ._action_hessian import BandedPreconditioner, action_blocks, spacing_blocks

    phi = full(z)
    a_diag, a_one = action_blocks(phi, loss, noise)
    s_diag, s_one, s_two = spacing_blocks(phi, weight)
    pre = BandedPreconditioner([(a_diag + s_diag)[1:-1], (a_one + s_one)[1:-1], s_two[1:-1]])

    def fun_y(y: Array) -> tuple[float, Array]:
        value, g = fun(z + pre.to_x(y))
        return value, pre.to_y(g)

    result = minimize(
        fun_y,
        np.zeros_like(z),
        jac=True,
        method="L-BFGS-B",
        options={**options, "gtol": 1e-14 * scale},
    )
    return z + pre.to_x(np.asarray(result.x)), int(result.nit), bool(result.success)


class Problem(NamedTuple):
    """A loss, a noise model and the refined critical points with their Hessians."""

    model: LossModel
    noise: NoiseModel
    minimum: Array
    saddle: Array
    hess_min: Array
    hess_saddle: Array


def _as_point(name: str, value: Any) -> Array:
    try:
        point = np.asarray(
            value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=float
        ).reshape(-1)
    except OverflowError:  # an int past float64's range
        raise ParameterError(name, "a point with finite float64 coordinates", value) from None
    except (TypeError, ValueError):
        raise ShapeError(name, "a point: a sequence of n numbers", value) from None
    if point.size == 0 or not np.all(np.isfinite(point)):
        raise ParameterError(name, "a point with finite coordinates", value)
    return point


def _critical_pair(
    loss: Any,
    minimum: Any,
    other: Any,
    name: str,
    negative: int,
    gradient: Any,
    hessian: Any,
) -> tuple[LossModel, tuple[Array, Array], tuple[Array, Array], Array]:
    """The loss model, the refined minimum and the refined second critical point ``name``
    (``negative`` negative curvatures), each with its Hessian, and the guess for the second."""
    a0 = _as_point("minimum", minimum)
    b0 = _as_point(name, other)
    if a0.shape != b0.shape:
        raise ShapeError(name, f"a point with {a0.size} coordinates like minimum", b0.tolist())
    model = loss_model(loss, a0, gradient, hessian)
    first = critical_point(model, a0, "minimum", 0)
    second = critical_point(model, b0, name, negative)
    if np.linalg.norm(first[0] - second[0]) < 1e-8 * (1 + np.linalg.norm(first[0])):
        raise ParameterError(name, "a critical point distinct from the minimum", b0.tolist())
    return model, first, second, b0


def _prepare(
    loss: Any,
    noise: Any,
    minimum: Any,
    saddle: Any,
    diffusion: Any,
    lr: Any,
    batch_size: Any,
    gradient: Any,
    hessian: Any,
    switch: Any = None,
) -> Problem:
    model, (a, h_a), (b, h_b), b0 = _critical_pair(
        loss, minimum, saddle, "saddle", 1, gradient, hessian
    )
    if float(model.value(b[None])[0]) <= float(model.value(a[None])[0]):
        raise ParameterError(
            "saddle", "a saddle above the minimum (L(saddle) > L(minimum))", b0.tolist()
        )
    lr_f = None if lr is None else float(lr)
    bs_f = None if batch_size is None else float(batch_size)
    nm = noise_model(
        noise, model, a, diffusion=diffusion, lr=lr_f, batch_size=bs_f, saddle=b, switch=switch
    )
    return Problem(model, nm, a, b, h_a, h_b)


def _extrapolate(actions: list[float]) -> tuple[float, float, float | None]:
    """(ΔΦ, error, order) from the actions on N, 2N and 4N segments (Richardson at the
    measured order when it is in (0.5, 6))."""
    order = None
    d1, d2 = actions[0] - actions[1], actions[1] - actions[2]
    if d1 != 0 and d2 != 0 and d1 / d2 > 0:
        order = math.log2(d1 / d2)
    if order is not None and 0.5 < order < 6:
        factor = 2**order - 1
        barrier = actions[2] + (actions[2] - actions[1]) / factor
        # conservative: the finest string's own error (the extrapolated value is better)
        return barrier, abs(actions[2] - actions[1]) / factor, order
    return actions[2], max(abs(d1), abs(d2)), order


def action_path(
    problem: Problem,
    points: int,
    tol: float,
    initial: Array | None,
    max_iterations: int = 20000,
    precondition: bool = True,
) -> MinimumActionPath:
    """gMAM on N, 2N and 4N segments (see the module docstring); ``precondition=False`` relaxes
    by plain L-BFGS (the benchmark's peer)."""
    model, nm, a, b = problem.model, problem.noise, problem.minimum, problem.saddle
    if initial is None:
        t = np.linspace(0.0, 1.0, points + 1)[:, None]
        phi = a + t * (b - a)
    else:
        phi = reparametrize(np.vstack([a, initial[1:-1], b]), points)
    check_continuous(nm, reparametrize(phi, 4 * points))
    actions, counts = [], []
    iterations = 0
    converged = True
    change = math.inf
    for level in range(3):
        n_seg = points * 2**level
        if level:
            phi = reparametrize(phi, n_seg)
        with one_blas_thread(a.size):  # n × n blocks: see _blas_threads
            if nm.switch is None:
                phi, action, its, change, ok = _relax(
                    phi, model, nm, tol, max_iterations, precondition
                )
            else:  # D jumps on a surface: a point of the string held on it
                from ._switch import relax_switch

                phi, action, its, change, ok = relax_switch(phi, model, nm, tol, max_iterations)
        iterations += its
        converged &= ok
        actions.append(action)
        counts.append(n_seg)
    check_continuous(nm, phi)  # the relaxed string may have moved onto a jump
    barrier, error, order = _extrapolate(actions)
    if not (barrier > 0 and math.isfinite(barrier)):
        raise ConvergenceError(
            f"minimum_action_path: the action did not converge to a positive barrier "
            f"(actions {actions}); give an initial path or more points"
        )
    return MinimumActionPath(
        path=phi,
        action=actions[2],
        barrier=barrier,
        error=error,
        order=order,
        actions=tuple(actions),
        points=tuple(counts),
        iterations=iterations,
        converged=bool(converged),
        residual=change,
        minimum=a,
        saddle=b,
        noise=nm.description,
        method=(
            "geometric minimum action method (Heymann & Vanden-Eijnden 2008): midpoint-rule "
            "geometric action minimized by L-BFGS with its exact gradient, string reparametrized "
            f"to equal arc length between rounds; {counts} segments, Richardson extrapolation"
        ),
    )


#: Which saddles ``locate_saddle`` keeps: every distinct one found, or the lowest.
KEEP_SADDLES = ("all", "lowest")


def _initial_strings(a: Array, c: Array, h_a: Array) -> list[Array]:
    """The straight line from a to c and, for the two softest directions of H_a across the
    chord, the line bent by ± half the chord's length there (a sine bump): starts in the
    channels on either side of the straight one."""
    chord = c - a
    length = float(np.linalg.norm(chord))
    t = np.linspace(0.0, 1.0, 33)[:, None]
    straight = a + t * chord
    if a.size == 1:
        return [straight]
    e = chord / length
    across = np.eye(a.size) - np.outer(e, e)
    values, vectors = np.linalg.eigh(across @ h_a @ across)
    order = [k for k in np.argsort(values) if abs(float(vectors[:, k] @ e)) < 0.5]
    bump = 0.5 * length * np.sin(np.pi * t)
    strings = [straight]
    for k in order[: min(a.size - 1, 2)]:
        strings += [straight + bump * vectors[:, k], straight - bump * vectors[:, k]]
    return strings


def _first_maximum(values: Array) -> int:
    """The first local maximum of the loss along a string from the minimum (the saddle on the
    boundary of the minimum's basin, also where the string crosses further saddles)."""
    for i in range(1, values.size - 1):
        if values[i] >= values[i - 1] and values[i] >= values[i + 1]:
            return i
    return int(np.argmax(values))


def locate_saddle(
    loss: Any,
    minimum: Any,
    other_minimum: Any,
    gradient: Any = None,
    hessian: Any = None,
    *,
    keep: str = "all",
) -> Array:
    """The index-1 saddles between two minima, shape (k, n), lowest first.

    Several minimum-energy strings run from ``minimum`` to ``other_minimum``: the straight
    line and lines bent by ± half the chord along the two softest directions of the
    minimum's Hessian across the chord (one in 2-D), each relaxed as the gMAM string for
    white noise (for white noise the least-action path climbs against the gradient flow to a
    saddle and follows it down, at zero action; its shape does not depend on d). The first
    loss maximum along each string is refined by Newton's method and kept if it is an
    index-1 saddle (the string is relaxed on 16 segments, and on 64 if Newton's method does
    not converge from there); the distinct ones are returned (``keep="all"``, the default: each is an
    escape channel, the rates add) or only the lowest (``keep="lowest"``). A channel that no
    start reaches is not found: give such saddles explicitly."""
    if keep not in KEEP_SADDLES:
        raise ParameterError("keep_saddles", "'all' or 'lowest'", keep)
    model, (a, h_a), (c, _), _ = _critical_pair(
        loss, minimum, other_minimum, "other_minimum", 0, gradient, hessian
    )
    nm = noise_model("white", model, a, diffusion=1.0)
    found: list[Array] = []
    for phi in _initial_strings(a, c, h_a):
        for segments, tol in ((16, 1e-8), (64, 1e-10)):  # the finer one if Newton fails
            with one_blas_thread(a.size):
                phi = _relax(reparametrize(phi, segments), model, nm, tol, 2000)[0]
            try:
                point, _ = critical_point(model, phi[_first_maximum(model.value(phi))], "", 1)
            except HessianError:  # a critical point of another index: not a saddle's channel
                break
            except (ParameterError, ConvergenceError):  # Newton went astray: a finer string
                continue
            scale = 1e-7 * (1.0 + float(np.linalg.norm(point)))
            if all(np.linalg.norm(point - q) > scale for q in found):
                found.append(point)
            break
    if not found:
        raise ConvergenceError(
            "other_minimum: no index-1 saddle was found on the minimum-energy strings from "
            "minimum to other_minimum; give saddle= (a point near it) instead"
        )
    found.sort(key=lambda p: float(model.value(p[None])[0]))
    return np.array(found[:1] if keep == "lowest" else found)


def minimum_action_path(
    loss: Any,
    noise: Any = "white",
    *,
    minimum: Any,
    saddle: Any,
    diffusion: Any = None,
    lr: Any = None,
    batch_size: Any = None,
    points: int = 32,
    tol: float = 1e-11,
    initial: Any = None,
    gradient: Any = None,
    hessian: Any = None,
    switch: Any = None,
) -> MinimumActionPath:
    r"""Minimum-action path and quasi-potential barrier ΔΦ from a minimum to a saddle.

    Parameters
    ----------
    loss
        A SymPy expression of n symbols (ordered by name; no float literals), or a callable on
        torch tensors of shape (m, n) returning m values (derivatives by autograd), or any
        callable with ``gradient=`` and ``hessian=`` callables (same batch convention).
    noise
        ``"white"`` (``diffusion=d``), ``"anisotropic"`` (``diffusion=D``, a constant SPD
        matrix), ``"loss-dependent"`` (``lr``, ``batch_size``), ``"measured"`` (``diffusion=Σ``
        a callable θ → per-sample gradient covariance, ``lr``, ``batch_size``; D = ηΣ/(2B)),
        ``"sgd"`` (``lr``, ``batch_size``: the harmonic switch, see ``switch``) or a callable
        θ → D(θ). Default ``"white"``.
    minimum, saddle
        Points near a minimum and an index-1 saddle; both are refined by Newton's method and
        checked (positive definite Hessian; exactly one negative eigenvalue).
    points
        Segments N of the coarsest string (the action is computed on N, 2N and 4N); default 32.
    tol
        Relative change of the action between rounds that ends the relaxation; default 1e-11.
    initial
        An initial path (m, n) from near the minimum to near the saddle (default: straight).
    switch
        For ``noise="sgd"`` only: where the harmonic switch puts its surface. None (the
        default) or ``"harmonic"``: where the smallest eigenvalue of H(θ) vanishes (the
        inflection point in 1-D, the paper's model); a callable g(θ) (batched (m, n) → (m,)):
        the surface g = 0. D = κH_a on the minimum's side, κ|H_b| on the saddle's; the jump is
        handled explicitly (the string is split where it crosses, the prefactor carries the
        jump condition D_nn^(1−α) P continuous). ``"literal"`` (κ[H]⁺ itself) is refused with a
        `NoiseModelError` that says why: D is singular on every path, the barrier infinite.

    Returns
    -------
    MinimumActionPath
        ``path``, ``action``, ``barrier`` (ΔΦ), ``error``, ``order``, ``converged``.

    Notes
    -----
    Geometric action :math:`\hat S[\varphi] = \tfrac12\int(|\varphi'|_M|b|_M -
    \langle\varphi', b\rangle_M)\,ds` with b = −∇L and M = D⁻¹ (Freidlin & Wentzell; Heymann &
    Vanden-Eijnden, Comm. Pure Appl. Math. 61, 1052 (2008)). The dynamics is
    dθ = −∇L dt + √(2D) dW, so for white noise ΔΦ = ΔL/d.

    Examples
    --------
    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> L = (x**2 - 1)**2 + (y - x**2 / 2)**2
    >>> p = minimum_action_path(L, "white", minimum=[-1, 0.5], saddle=[0, 0], diffusion=0.25,
    ...                         points=8)
    >>> abs(p.barrier - 4) < 1e-3  # ΔL / D = 1 / 0.25
    True
    """
    problem = _prepare(
        loss, noise, minimum, saddle, diffusion, lr, batch_size, gradient, hessian, switch
    )
    return converged_path(problem, points, tol, initial, "minimum_action_path")


#: Largest number of path points accepted (a budget: 10⁹ points would allocate before failing).
MAX_POINTS = 10_000


def path_options(points: Any, tol: Any, initial: Any, dim: int) -> Array | None:
    """Check ``points``, ``tol`` and ``initial`` (shared by minimum_action_path and
    landscape_escape_time); return the initial path as an array, or None."""
    if isinstance(points, bool) or not isinstance(points, int) or points < 4:
        raise ParameterError("points", "an integer ≥ 4", points)
    if points > MAX_POINTS:
        raise BudgetError(
            "points",
            f"at most {MAX_POINTS} points on the path",
            points,
            "each relaxation step costs O(points·dim²) and the path is refined by doubling "
            "from there; the default 32 (refined to ~129) resolves smooth landscapes",
        )
    if isinstance(tol, bool) or not (isinstance(tol, float | int) and 0 < tol < 1e-3):
        raise ParameterError("tol", "a relative tolerance in (0, 1e-3)", tol)
    if initial is None:
        return None
    try:
        init = np.asarray(initial, dtype=float)
    except (TypeError, ValueError):
        raise ShapeError("initial", f"an array of shape (m ≥ 3, {dim})", initial) from None
    if init.ndim != 2 or init.shape[1] != dim or init.shape[0] < 3:
        raise ShapeError("initial", f"an array of shape (m ≥ 3, {dim})", init.shape)
    return init


def converged_path(
    problem: Problem, points: Any, tol: Any, initial: Any, caller: str
) -> MinimumActionPath:
    """The relaxed minimum-action path of ``problem`` (``points``, ``tol`` and ``initial``
    checked by `path_options`; shared by minimum_action_path and landscape_escape_time); a
    ConvergenceError naming ``caller`` when the string did not converge to ``tol``."""
    init = path_options(points, tol, initial, problem.minimum.size)
    path = action_path(problem, points, float(tol), init)
    if not path.converged:
        raise ConvergenceError(
            f"{caller}: the minimum-action path did not converge (last relative change "
            f"{path.residual:.2g} > tol = {tol:g}, measured order {path.order}); raise "
            "points, loosen tol, or give an initial path"
        )
    return path
