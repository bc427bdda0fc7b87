"""Prefactors of the escape time on a landscape: Eyring–Kramers (reversible) and
Bouchet–Reygner (any D), with the non-Gibbs integral along the instanton.

See `landscape_escape_time` for the formula. The non-Gibbs integral I = ∫ F dt,
F = tr(D Q) − tr H + (2 − α)∇Φ·(∇·D), is integrated with Q = ∇²Φ carried along the instanton by
the Riccati equation of the Hamiltonian H(x, p) = ⟨b, p⟩ + ⟨p, D p⟩; its components along the
path are held on Q ẋ = ṗ (they are unstable near the saddle). The flow is stopped at 16%,
8%, 4% and 2% of the path length from the saddle (and closer where the string has five
segments there); the rest is integrated exactly in the saddle's linear model (`_linear_tail`:
½ log det(Σ_b Q), however slowly Q tends to Q_b, as it does at a near-resonant saddle where
λ_s ≈ |λ_b|), and the values are extrapolated to the saddle by Richardson's table, whose
spread is the reported error.

Where the saddle's unstable curvature is above its stable one (μ = λ_s/|λ_b| < 1, the
Maier–Stein regime) the instanton arrives along the stable direction, Q tends to 0 rather than
to Q_b and the values at the stops differ from their limit by a series in r^(1 + k(1/μ − 1) + m)
that no Richardson table resolves; there the tail is V = I + ½ log|det Q| integrated exactly
in the saddle's linear model along that arrival (`_arrival_tail`, error O(r²)), and the value
at the nearest resolved stop is used (`_plateau`).
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any, NamedTuple

import mpmath
import numpy as np

if TYPE_CHECKING:
    from scipy.interpolate import CubicSpline

from flatminima.errors import ConvergenceError

from ._action import MinimumActionPath, Problem
from ._escape_time import escape_time
from ._loss_model import LossModel
from ._noise_models import NoiseModel

Array = np.ndarray
#: Relaxation rate (in units of the largest curvature at a, b) that holds Q u = w on the path.
_GAIN = 10.0
#: From this dimension on, the Riccati flow is integrated by an explicit method (`_integrate_flow`).
_EXPLICIT_FROM = 13
#: The same for a state-dependent D, whose right-hand side costs more (D, ∂D and the second
#: derivatives of pᵀDp at every call), so that LSODA's n² + 2 calls per Jacobian dominate
#: sooner: measured (callable D, rotated valley) n = 4: LSODA 9 s, DOP853 16 s; n = 8: LSODA
#: 153 s, DOP853 68 s of CPU, the same log τ to 10⁻⁸.
_EXPLICIT_FROM_STATE_DEPENDENT = 8


def _mp_refine(model: LossModel, point: Array) -> list[mpmath.mpf]:
    """Newton's method in mpmath at the working precision (SymPy losses)."""
    assert model.mp_gradient is not None and model.mp_hessian is not None
    x = mpmath.matrix([mpmath.mpf(float(v)) for v in point])
    for _ in range(60):
        g = mpmath.matrix(model.mp_gradient(list(x)))
        step = mpmath.lu_solve(model.mp_hessian(list(x)), g)
        x = x - step
        if mpmath.norm(step) <= mpmath.mpf(10) ** (-mpmath.mp.dps + 3) * (1 + mpmath.norm(x)):
            break
    return list(x)


def _momentum(model: LossModel, nm: NoiseModel, x: Array, tangent: Array) -> Array:
    """p = ∇Φ on the instanton: ẋ = b + 2Dp with ẋ = λφ', λ = |b|_M/|φ'|_M (batched)."""
    d = nm.field(x)
    m = np.linalg.inv(d)
    drift = -model.gradient(x)
    bb = np.einsum("mi,mij,mj->m", drift, m, drift)
    tt = np.einsum("mi,mij,mj->m", tangent, m, tangent)
    speed = np.sqrt(np.maximum(bb, 0.0) / np.maximum(tt, 1e-300))
    return 0.5 * np.einsum("mij,mj->mi", m, speed[:, None] * tangent - drift)


def _hamiltonian_rhs(
    model: LossModel,
    nm: NoiseModel,
    spline: CubicSpline,
    momentum: CubicSpline,
    alpha: float,
    gain: float,
) -> Any:
    """Right-hand side in time t of (s, Q, I) along the instanton.

    Q ẋ = ṗ holds exactly on the instanton, and it fixes the components of Q along the path;
    those are the unstable ones of the Riccati flow near the saddle (they grow like e^{2|λ_b|t}
    from any error), so they are held on Q u = w (u the unit tangent, w = dp/ds/|φ'|) by a
    relaxation term of rate ``gain``. The transverse block evolves by the Riccati equation.

    Cost per call: three n×n matrix products (Q symmetric: H_pxᵀQ + QH_px = M + Mᵀ with
    M = QH_px), and for a constant D no inverse (D⁻¹ is computed once).
    """
    n = model.dim
    constant = nm.constant is not None
    if constant:
        d_const = np.asarray(nm.field(spline(0.0)[None])[0], dtype=float)
        m_const = np.linalg.inv(d_const)

    def rhs(_t: float, y: Array) -> Array:
        s = y[0]
        q = y[1 : 1 + n * n].reshape(n, n)
        x = spline(s)[None]
        tangent = spline(s, 1)
        if constant:
            d, m = d_const, m_const
        else:
            d = nm.field(x)[0]
            m = np.linalg.inv(d)
        drift = -model.gradient(x)[0]
        norm_t = float(np.linalg.norm(tangent))
        speed = math.sqrt(max(drift @ m @ drift, 0.0) / max(tangent @ m @ tangent, 1e-300))
        p = 0.5 * m @ (speed * tangent - drift)
        hess = model.hessian(x)[0]
        third = model.third(x, p[None])[0]
        if constant:
            h_px = -hess
            h_xx = -third
            divergence_term = 0.0
        else:
            dd = nm.derivative(x)[0]  # [i, j, k] = ∂_k D_ij
            h_px = -hess + 2 * np.einsum("klj,l->kj", dd, p)
            h_xx = -third + nm.second_derivative_form(x, p[None])[0]
            div = np.einsum("iji->j", dd)
            divergence_term = (2 - alpha) * float(div @ p)
        q_h = q @ h_px
        qdot = -(h_xx + q_h.T + q_h + 2 * (q @ d) @ q)
        u = tangent / norm_t
        w = momentum(s, 1) / norm_t
        r = q @ u - w
        a = r - 0.5 * (r @ u) * u  # r uᵀ + u rᵀ − (r·u) u uᵀ = a uᵀ + u aᵀ
        qdot -= gain * (np.outer(a, u) + np.outer(u, a))
        qdot = 0.5 * (qdot + qdot.T)
        f = float(np.vdot(d, q) - np.trace(hess)) + divergence_term
        return np.concatenate([[speed], qdot.ravel(), [f]])

    return rhs


def _integrate_flow(
    rhs: Any, t0: float, state: Array, event: Any, dim: int, constant: bool = True
) -> Any:
    """`solve_ivp` of the flow ``rhs`` from ``t0`` until the terminal ``event`` (t ≤ t0 + 10⁵),
    rtol 10⁻¹⁰, atol 10⁻¹²; the method depends on the dimension n = ``dim``.

    The flow is mildly stiff along the instanton (its fastest rates are the relaxation ``gain``
    of `_hamiltonian_rhs` and 2λ_max of the Riccati contraction). For small n, LSODA: it
    switches to BDF there, and its Jacobian (n² + 2 calls of ``rhs``, dense, factored in
    O(n⁶)) is cheap. From n = `_EXPLICIT_FROM` on, that Jacobian dominates (LSODA took 18 s at
    n = 30 and did not finish in 8 minutes at n = 100), so an explicit 8th-order Runge–Kutta
    method (DOP853) is used: a stability-bounded step, a few hundred steps whatever n, and
    O(n³) per call (2 s at n = 30, 7 s at n = 100). Both agree to 10⁻⁹ in I. For a
    state-dependent D (``constant=False``) the explicit method is used from n =
    `_EXPLICIT_FROM_STATE_DEPENDENT` on.
    """
    from scipy.integrate import solve_ivp

    start = _EXPLICIT_FROM if constant else _EXPLICIT_FROM_STATE_DEPENDENT
    method = "LSODA" if dim < start else "DOP853"
    return solve_ivp(
        rhs, (t0, t0 + 1e5), state, method=method, rtol=1e-10, atol=1e-12, events=event
    )


class SaddleModel(NamedTuple):
    """The saddle's linearization: D_b, H_b, Σ_b = Q_b⁻¹ (Lyapunov) and |λ_b|."""

    diffusion: Array
    hessian: Array
    sigma: Array
    rate: float


def _linear_tail(q: Array, f: float, saddle: SaddleModel) -> float:
    """∫ F dt from a point near the saddle (where Q = ``q``, F = ``f``) to the saddle (t = ∞).

    In the saddle's linear region (drift −H_b x, D = D_b) the Riccati flow is solved by
    Q = Y X⁻¹ with (X, Y) carried by the linear Hamiltonian flow Ẋ = −H_b X + 2D_b Y,
    Ẏ = H_b Y from (I, q); then tr(D_b Q) − tr H_b = ½ d/dt log det X − ½ tr H_b and, expanding
    (X, Y) on the eigenvectors of the flow (rates ±λ_i of H_b; Cauchy–Binet), the integral to
    t = ∞ is exactly ½ log det(Σ_b q) once the combination that grows like e^{2|λ_b|t} (the
    unstable mode of the Riccati flow, zero on the instanton) is dropped. This holds however
    slowly Q tends to Q_b: the mode e^{−(λ_s − |λ_b|)t} of a near-resonant saddle is integrated
    exactly, not guessed from a decay rate. What F has beyond the linear model (H(x) − H_b,
    D(x) − D_b, the α-term) vanishes at the saddle and decays like the distance, e^{−|λ_b| t};
    it is taken as (F − F_lin)/|λ_b|. The error left is O(distance), which the caller removes by
    Richardson extrapolation over several stops."""
    f_linear = float(np.trace(saddle.diffusion @ q) - np.trace(saddle.hessian))
    return 0.5 * _log_det_sigma_q(q, saddle) + (f - f_linear) / saddle.rate


def _log_det_sigma_q(q: Array, saddle: SaddleModel) -> float:
    """log det(Σ_b Q), refused where it is not positive (Q of the wrong signature)."""
    sign, logdet = np.linalg.slogdet(saddle.sigma @ q)
    if sign <= 0:
        raise ConvergenceError(
            "landscape_escape_time: the Riccati flow along the instanton reached the saddle's "
            "neighbourhood with a Hessian of the quasi-potential of the wrong signature "
            "(det Σ_b Q ≤ 0); the path may not be converged: raise points"
        )
    return float(logdet)


class ArrivalModel(NamedTuple):
    """The saddle's linear Hamiltonian flow in H_b's eigenbasis, for a saddle with
    λ_s < |λ_b| (μ < 1), and the nonlinear terms of g at the saddle (`_arrival_tail`).

    ``modes`` (2n × 2n) holds the eigenvectors w_k = (d_k, e_k) of the linear flow
    ż = M z, M = [[−H_b, 2D_b], [0, H_b]] (coordinates (x, p) in H_b's eigenbasis), with
    ``rates`` ν_k: for each eigenvalue h_i of H_b an x-mode (e_i, 0), ν = −h_i, and a p-mode
    ((H_b + h_i)⁻¹ 2D_b e_i, e_i), ν = h_i. ``stable`` marks ν < 0."""

    basis: Array  # H_b's eigenvectors (columns), the unstable one first
    modes: Array
    inverse: Array
    rates: Array
    stable: Array
    third_u: Array  # ∇³L(b)[e_u] in the eigenbasis
    second_u: Array  # ∇²(e_uᵀ D e_u)(b) in the eigenbasis
    divergence_u: float  # (∇·D)(b)·e_u
    alpha: float


def _linear_modes(hessian: Array, diffusion: Array) -> tuple[Array, Array, Array]:
    """(H_b's eigenvectors, the modes, their rates) of `ArrivalModel`."""
    n = hessian.shape[0]
    h, v = np.linalg.eigh(hessian)
    d = v.T @ diffusion @ v
    modes = np.zeros((2 * n, 2 * n))
    rates = np.zeros(2 * n)
    for i in range(n):
        modes[i, i] = 1.0
        rates[i] = -h[i]
        denominator = h + h[i]
        if np.min(np.abs(denominator)) < 1e-9 * max(1.0, float(np.max(np.abs(h)))):
            raise ConvergenceError(
                "landscape_escape_time: the saddle's Hessian has two eigenvalues of opposite "
                "sign and equal size; the linear model of its neighbourhood is degenerate"
            )
        modes[:n, n + i] = 2 * d[:, i] / denominator
        modes[n + i, n + i] = 1.0
        rates[n + i] = h[i]
    return v, modes, rates


def _arrival_model(
    model: LossModel, nm: NoiseModel, b: Array, saddle: SaddleModel, alpha: float
) -> ArrivalModel:
    """`ArrivalModel` of the saddle b (a ConvergenceError where H_b has eigenvalues h_i = −h_j,
    for which the linear flow has a Jordan block: not generic, not handled)."""
    n = model.dim
    v, modes, rates = _linear_modes(saddle.hessian, saddle.diffusion)
    e_u = v[:, 0]
    third_u = v.T @ model.third(b[None], e_u[None])[0] @ v
    if nm.constant is not None:
        second_u = np.zeros((n, n))
        divergence_u = 0.0
    else:
        second_u = v.T @ nm.second_derivative_form(b[None], e_u[None])[0] @ v
        divergence_u = float(np.einsum("iji->j", nm.derivative(b[None])[0]) @ e_u)
    return ArrivalModel(
        v, modes, np.linalg.inv(modes), rates, rates < 0, third_u, second_u, divergence_u, alpha
    )


def _arrival_tail(x: Array, p: Array, q: Array, arrival: ArrivalModel) -> float:
    """∫ g dt from a point of the instanton near a saddle with μ = λ_s/|λ_b| < 1 to the saddle
    (t = ∞), in the saddle's linear model; ``x`` is the point's offset from the saddle, ``p``
    the momentum and ``q`` = Q there.

    Along the instanton V = I + ½ log |det Q| obeys exactly (Riccati equation, Jacobi's formula)
    dV/dt = g = −½ tr(Q⁻¹ H_xx) − α (∇·D)·p, H_xx = ∇²_x of the Hamiltonian
    = −∇³L[p] + ∇²(pᵀDp): the curvature and noise terms of F cancel against d½log|det Q|/dt.
    In the saddle's linear model g = 0, so V has a limit at the saddle; the tail is driven by
    the nonlinear terms, ∝ p. Where μ < 1 the instanton arrives along the slow stable direction
    (x ~ e^{−λ_s t}, r the distance) while p ~ e^{−|λ_b| t} = O(r^{1/μ}) and Q → 0 like
    ε = e^{−(|λ_b| − λ_s)t} = r^{1/μ − 1} (its plane tends to the one spanned by the
    instanton's tangent and the unstable x-mode), so g = O(p/ε) = O(r) and V's error at r is a
    series Σ c_{km} r^{1 + k(1/μ − 1) + m}, whose exponents crowd (1, 1.29, 1.59, … for
    μ = 0.77; ε is 0.3–0.6 at the stops) so that no Richardson table in r resolves it. Here the
    whole ε-series of the r¹ order is integrated: the instanton's (x, p) projected on the
    stable modes of the linear flow, Q's plane as the instanton's tangent and the vectors
    (v, Qv), v ⟂ ẋ, carried by the linear flow, and g with ∇³L and ∇²D at the saddle; the
    error left is O(r²) (times a series in ε)."""
    from scipy.integrate import quad

    n = x.size
    basis = arrival.basis
    z = np.concatenate([basis.T @ x, basis.T @ p])
    coefficients = arrival.inverse @ z
    coefficients[~arrival.stable] = 0.0  # the instanton lies on the saddle's stable manifold
    tangent = arrival.modes @ (arrival.rates * coefficients)
    qe = basis.T @ q @ basis
    xi = tangent[:n]
    # the directions of Q's plane across the tangent: (v, Qv), v ⟂ ẋ
    frame = np.linalg.svd(xi[None, :])[2][1:].T  # n × (n − 1)
    others = np.concatenate([frame, qe @ frame])
    plane = np.concatenate([(tangent / np.linalg.norm(tangent))[:, None], others], axis=1)
    amplitudes = arrival.inverse @ plane  # per mode (rows) and vector (columns)
    amplitudes[~arrival.stable, 0] = 0.0  # the tangent's unstable part: the Riccati mode
    rates = arrival.rates
    # each vector scaled by its fastest growth (a column scaling leaves Q = Y X⁻¹ unchanged)
    present = np.abs(amplitudes) > 0
    top = np.array([float(np.max(rates[present[:, j]])) for j in range(n)])
    p_u0 = float(coefficients[n])  # the p-mode of the unstable direction
    lam = -float(rates[n])

    def g(tau: float) -> float:
        grow = np.exp((rates[:, None] - top[None, :]) * tau)
        zt = arrival.modes @ (grow * amplitudes)
        big_x, big_y = zt[:n], zt[n:]
        p_u = p_u0 * math.exp(-lam * tau)
        # tr(Q⁻¹A) = tr(X Y⁻¹ A) = tr(Y⁻¹ A X)
        first = float(np.trace(np.linalg.solve(big_y, arrival.third_u @ big_x)))
        second = float(np.trace(np.linalg.solve(big_y, arrival.second_u @ big_x)))
        return (
            0.5 * p_u * first
            - 0.5 * p_u * p_u * second
            - arrival.alpha * p_u * (arrival.divergence_u)
        )

    # g decays like e^{−λ_s τ} (λ_s the slowest stable rate): 40/λ_s leaves e^{−40}
    slowest = float(np.min(np.abs(rates)))
    value, _ = quad(g, 0.0, 40.0 / slowest, limit=200, epsabs=1e-13, epsrel=1e-11)
    return float(value)


def departure_form(
    model: LossModel, nm: NoiseModel, a: Array, h_a: Array, q_a: Array, alpha: float
) -> Array:
    """The vector w with I(x₀) = w·(x₀ − a) + O(|x₀ − a|²): the non-Gibbs integral from the
    minimum a to a point x₀ of the instanton near it, with the flow started there at Q = Q_a.

    Along the instanton V = I + ½ log det Q obeys dV/dt = g = −½ tr(Q⁻¹ H_xx) − α (∇·D)·p
    (`_arrival_tail`), H_xx = −∇³L[p] + ∇²(pᵀDp). Near a, p = Q_a x + O(x²) (x = x − a), so
    g = ½ tr(Σ_a ∇³L[Q_a x]) − α (∇·D)(a)·Q_a x + O(x²) = cᵀ Q_a x + O(x²), with
    c_k = ½ tr(Σ_a ∂_k∇²L(a)) − α (∇·D)_k(a). The instanton leaves a by the linear flow
    ẋ = b + 2D_a Q_a x = Σ_a H_a Q_a x (Lyapunov: 2D_a Q_a = H_a + Σ_a H_a Q_a), so
    ∫_{−∞}^0 cᵀQ_a e^{At} x₀ dt = cᵀQ_a A⁻¹ x₀ = cᵀ H_a⁻¹ Q_a x₀, whatever direction x₀
    has: in the linear model F = tr(D_a Q_a) − tr H_a = 0 (Lyapunov) and Q = Q_a. Started at x₀
    with Q = Q_a (an O(x₀) error, which the flow contracts at rate ≥ 2λ_min(H_a) while the
    instanton leaves at rate λ_min) and I = w·x₀, V's error at the end is O(|x₀|²)."""
    n = model.dim
    sigma_a = np.linalg.inv(q_a)
    third = model.third(np.repeat(a[None], n, axis=0), np.eye(n))  # [k] = ∇³L(a)[e_k]
    c = 0.5 * np.einsum("ij,kij->k", sigma_a, third)
    if nm.constant is None:
        c = c - alpha * np.einsum("iji->j", nm.derivative(a[None])[0])
    return np.asarray(q_a @ np.linalg.solve(h_a, c))


def _richardson_table(values: list[float]) -> float:
    table = list(values)
    for j in range(1, len(values)):
        factor = 2.0**j
        table = [(factor * table[k + 1] - table[k]) / (factor - 1) for k in range(len(table) - 1)]
    return table[0]


def _richardson(values: list[float]) -> tuple[float, float]:
    """The limit of values at stops r, r/2, r/4, … (error a series in r, r², …) by Richardson's
    table, and an error estimate: the change of the limit when the farthest stop is dropped
    (is it in the asymptotic regime?) or, with four stops or more, the nearest one (is it
    resolved by the string?), whichever is larger."""
    top = _richardson_table(values)
    if len(values) < 3:
        return top, abs(top - values[-1])
    error = abs(top - _richardson_table(values[1:]))
    if len(values) >= 4:
        error = max(error, abs(top - _richardson_table(values[:-1])))
    return top, error


def _plateau(values: list[float]) -> tuple[float, float]:
    """The value at the nearest stop and, as its error, the largest change over the last three
    stops: with `_arrival_tail` the values at the stops differ from their limit by O(r²)
    (measured on a saddle's local model), so they are level, and the change between stops
    measures both that remainder and what the string resolves."""
    last = values[-3:]
    return values[-1], max(abs(u - v) for u, v in itertools.pairwise(last))


#: Stops of the flow, as fractions of the path length from the saddle (halving): always the
#: first four, and the closer ones that are at least `_RESOLVED` segments of the string from
#: the saddle.
_MARKS = (0.16, 0.08, 0.04, 0.02, 0.01, 0.005)
_RESOLVED = 5
#: The flow starts this many segments of the string from the minimum (`departure_form`).
_DEPARTURE_SEGMENTS = 2


def _stops(segments: int) -> tuple[float, ...]:
    """16%, 8%, 4%, 2% and the closer stops at least `_RESOLVED` segments from the saddle."""
    return _MARKS[:4] + tuple(m for m in _MARKS[4:] if m * segments >= _RESOLVED)


def _non_gibbs_integral(
    model: LossModel,
    nm: NoiseModel,
    path: Array,
    q_a: Array,
    alpha: float,
    saddle: SaddleModel,
    marks: tuple[float, ...] | None = None,
    trace: list[Any] | None = None,
    arrival: ArrivalModel | None = None,
    departure: Array | None = None,
) -> tuple[float, float, Array]:
    """I along the instanton, an error estimate, and Q at the last stop.

    The Riccati flow is integrated from the minimum to each stop in ``marks`` (default
    `_stops`: 16%, 8%, 4%, 2% of the path length from the saddle and closer ones down to five
    segments of the string); there the rest is the saddle's linear-model integral
    (`_linear_tail`), exact up to O(distance). The values at the stops are extrapolated to
    distance 0 by `_richardson`, whose estimate is the error reported. With ``arrival`` (a
    saddle with μ < 1) the rest is `_arrival_tail` instead, exact up to O(distance²), the
    value is the nearest stop's (`_plateau`), and the error also holds the string's start-up:
    the change of V = I + ½ log|det Q| at the first stop when the flow starts one segment
    from the minimum instead of at 10⁻⁴ of the path. With ``departure`` (`departure_form`'s w)
    the flow starts `_DEPARTURE_SEGMENTS` segments from the minimum instead, where the string
    resolves the instanton, from `_departure_state`, and the start-up error is the change when
    it starts one segment out (measured on case f: log τ − ΔΦ = 0.646, 0.636, 0.635, 0.636
    with 32, 64, 128, 256 points, against 0.557, 0.582, 0.629, 0.635 from 10⁻⁴)."""
    n = model.dim
    lengths = np.linalg.norm(np.diff(path, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(lengths)])
    total = s[-1]
    from scipy.interpolate import CubicSpline  # lazy: keeps scipy.special off the import path

    spline = CubicSpline(s, path, axis=0)
    momentum = CubicSpline(s, _momentum(model, nm, path, spline(s, 1)), axis=0)
    scale = max(float(np.max(np.abs(np.linalg.eigvalsh(model.hessian(path[[0, -1]]))))), 1e-300)
    rhs = _hamiltonian_rhs(model, nm, spline, momentum, alpha, _GAIN * scale)
    if departure is None:
        state = np.concatenate([[1e-4 * total], q_a.ravel(), [0.0]])
    else:
        start = float(s[_DEPARTURE_SEGMENTS])
        state = _departure_state(spline, momentum, q_a, departure, start, path[0])
    values: list[float] = []
    t0 = 0.0
    stops = _stops(path.shape[0] - 1) if marks is None else marks
    constant = nm.constant is not None
    first: Array | None = None
    for mark in stops:
        t0, state = _leg(rhs, t0, state, (1 - mark) * total, n, constant)
        first = state if first is None else first
        q = state[1 : 1 + n * n].reshape(n, n)
        f_here = float(rhs(t0, state)[-1])
        if arrival is None:
            values.append(float(state[-1]) + _linear_tail(q, f_here, saddle))
        else:
            s_here = float(state[0])
            offset = spline(s_here) - path[-1]
            values.append(
                float(state[-1])
                + 0.5 * _log_det_sigma_q(q, saddle)
                + _arrival_tail(offset, momentum(s_here), q, arrival)
            )
        if trace is not None:
            trace.append((mark, values[-1], float(state[-1]), f_here, q.copy()))
    value, error = _richardson(values) if arrival is None else _plateau(values)
    if arrival is not None and first is not None:
        # the string's start-up: the same first leg started one segment from the minimum
        # (with the departure integral there; without it, from 10⁻⁴ of the path)
        if departure is None:
            later = np.concatenate([[total / (path.shape[0] - 1)], q_a.ravel(), [0.0]])
        else:
            later = _departure_state(spline, momentum, q_a, departure, float(s[1]), path[0])
        _, other = _leg(rhs, 0.0, later, (1 - stops[0]) * total, n, constant)
        error += abs(_v_of(other, n) - _v_of(first, n))
    return value, error + 1e-9, state[1 : 1 + n * n].reshape(n, n)


def _departure_state(
    spline: CubicSpline, momentum: CubicSpline, q_a: Array, departure: Array, start: float, a: Array
) -> Array:
    """The flow's state (s, Q, I) at arc length ``start`` from the minimum ``a``, with
    V = I + ½ log det Q = ½ log det Q_a + w·(x₀ − a) (`departure_form`, w = ``departure``).

    Q is Q_a with its components along the path set to Q u = w (u the unit tangent, w the
    momentum's derivative, as `_hamiltonian_rhs` holds them): the relaxation there is not a
    Riccati flow, and it would change ½ log det Q by O(|x₀ − a|) with I left as it is (measured
    on a reversible case, where I = 0, started two segments out: −0.013, −0.0061, −0.0029,
    −0.0014 with `points` = 8, 16, 32, 64 from Q = Q_a; 6·10⁻⁴, 2·10⁻⁴, 10⁻⁴, 7·10⁻⁵ from this
    Q). The components across the path keep Q_a's O(|x₀ − a|) error, which the Riccati
    flow contracts (an O(|x₀ − a|²) error of V)."""
    tangent = spline(start, 1)
    norm_t = float(np.linalg.norm(tangent))
    u = tangent / norm_t
    r = q_a @ u - momentum(start, 1) / norm_t
    c = r - 0.5 * (r @ u) * u
    q = q_a - (np.outer(c, u) + np.outer(u, c))
    v = float(departure @ (spline(start) - a))
    i = v + 0.5 * (float(np.linalg.slogdet(q_a)[1]) - float(np.linalg.slogdet(q)[1]))
    return np.concatenate([[start], q.ravel(), [i]])


def _v_of(state: Array, n: int) -> float:
    """V = I + ½ log|det Q| of a flow state (s, Q, I)."""
    return float(state[-1]) + 0.5 * float(np.linalg.slogdet(state[1 : 1 + n * n].reshape(n, n))[1])


def _leg(
    rhs: Any, t0: float, state: Array, end: float, n: int, constant: bool
) -> tuple[float, Array]:
    """The flow ``rhs`` from (``t0``, ``state``) until the arc length reaches ``end``: (t, state)
    there, a ConvergenceError if it does not."""

    def event(_t: float, y: Array) -> float:
        return float(y[0] - end)

    event.terminal = True  # type: ignore[attr-defined]
    sol = _integrate_flow(rhs, t0, state, event, n, constant)
    if sol.status != 1:
        raise ConvergenceError(
            "landscape_escape_time: the Riccati equation along the instanton did not reach "
            f"the saddle ({sol.message}); the path may not be converged"
        )
    return float(sol.t_events[0][0]), sol.y_events[0][0]


def _maier_stein_refusal(unstable: float, stable: float) -> ConvergenceError:
    """The error for a saddle with |λ_b| ≥ λ_s (μ = λ_s/|λ_b| ≤ 1, the Maier–Stein regime)
    where the prefactor is not computed: a switch-model D in more than 2 dimensions, or μ = 1.

    The instanton of a non-reversible process generically reaches such a saddle along its
    stable direction (its stable component decays like e^{−λ_s t}, slower than the e^{−|λ_b| t}
    of the unstable one), ∇²Φ does not tend to the Lyapunov Q_b along it and Φ is not C² at the
    saddle (Maier & Stein, SIAM J. Appl. Math. 57, 752, 1997). For a continuous D the tail of
    the non-Gibbs integral is integrated in the saddle's linear model (`_arrival_tail`); the
    flow across a switch surface on the minimum's side is not implemented in this regime."""
    mu = stable / unstable
    reason = (
        "μ = 1 exactly (the saddle's linear flow is degenerate)"
        if mu == 1
        else "the prefactor is computed in this regime for a continuous D in any dimension "
        "and for the switch-model noise (D jumps on a surface) in 2-D only, where the "
        "instanton is shot from the saddle; in more dimensions that shooting needs n − 1 "
        "parameters and is not implemented"
    )
    return ConvergenceError(
        "landscape_escape_time: the saddle's unstable curvature |λ_b| = "
        f"{unstable:.4g} is not below its smallest stable curvature λ_s = {stable:.4g} "
        f"(μ = λ_s/|λ_b| = {mu:.3g} ≤ 1): the Maier–Stein regime, where the instanton reaches "
        "the saddle along its stable direction and the quasi-potential is not twice "
        f"differentiable there; {reason}. The barrier from minimum_action_path is right; for τ "
        "use an exact reference (mfpt_2d) or simulate_escape"
    )


def _eyring_kramers(
    problem: Problem, diffusion: Any, dps: int
) -> tuple[mpmath.mpf, mpmath.mpf, float, float]:
    """(log τ, ΔΦ, 0, accuracy) by `escape_time("white")` at ``dps`` digits."""
    model, nm, a, b, h_a, h_b = problem
    with mpmath.workdps(dps + 10):
        if model.kind == "sympy":
            assert model.mp_value is not None and model.mp_hessian is not None
            a_mp, b_mp = _mp_refine(model, a), _mp_refine(model, b)
            delta = model.mp_value(b_mp) - model.mp_value(a_mp)
            hess_a, hess_b = model.mp_hessian(a_mp), model.mp_hessian(b_mp)
        else:
            la, lb = model.value(a[None])[0], model.value(b[None])[0]
            delta = mpmath.mpf(float(lb)) - mpmath.mpf(float(la))
            hess_a, hess_b = h_a, h_b
        d = diffusion if isinstance(diffusion, str) else nm.scalar
        if hasattr(diffusion, "is_number") or isinstance(diffusion, int):
            d = diffusion
        r = escape_time(
            "white", hess_min=hess_a, hess_saddle=hess_b, barrier=delta, diffusion=d, dps=dps + 5
        )
        accuracy = 0.0 if model.kind == "sympy" else 1e-12 * max(1.0, float(r.quasi_potential))
        return r.log_tau, r.quasi_potential, 0.0, accuracy


def _bouchet_reygner(
    problem: Problem, path: MinimumActionPath, alpha: float
) -> tuple[float, float, float, float, str]:
    """(log τ, ΔΦ, I, accuracy, detail) by the Bouchet–Reygner formula."""
    model, nm, a, b, h_a, h_b = problem
    d_a = nm.field(a[None])[0]
    d_b = nm.field(b[None])[0]
    from scipy.linalg import solve_continuous_lyapunov

    sigma_a = solve_continuous_lyapunov(h_a, 2 * d_a)
    sigma_b = solve_continuous_lyapunov(h_b, 2 * d_b)
    q_a = np.linalg.inv(sigma_a)
    q_b = np.linalg.inv(sigma_b)
    spectrum = np.linalg.eigvalsh(h_b)
    lam = float(spectrum[0])
    stable_arrival = spectrum.size > 1 and abs(lam) >= float(spectrum[1])
    shooting = stable_arrival and nm.switch is not None and model.dim == 2
    if stable_arrival and not shooting and (nm.switch is not None or abs(lam) == spectrum[1]):
        raise _maier_stein_refusal(abs(lam), float(spectrum[1]))
    sign_a, logdet_a = np.linalg.slogdet(q_a)
    sign_b, logdet_b = np.linalg.slogdet(q_b)
    if sign_a <= 0 or sign_b >= 0:
        raise ConvergenceError(
            "landscape_escape_time: the quasi-potential Hessians from the Lyapunov equations "
            f"have the wrong signature (det Q_a sign {sign_a}, det Q_b sign {sign_b})"
        )
    saddle = SaddleModel(d_b, h_b, sigma_b, abs(lam))
    if nm.switch is None:
        arrival = _arrival_model(model, nm, b, saddle, alpha) if stable_arrival else None
        # the departure model in the Maier–Stein regime only, where it is measured to help
        # (case f); elsewhere the start at 10⁻⁴ of the path is kept (docs/numerics.md)
        departure = departure_form(model, nm, a, h_a, q_a, alpha) if stable_arrival else None
        non_gibbs, error, q_end = _non_gibbs_integral(
            model, nm, path.path, q_a, alpha, saddle, arrival=arrival, departure=departure
        )
        crossing = (
            f"Maier–Stein regime, μ = λ_s/|λ_b| = {float(spectrum[1]) / abs(lam):.3g}: the tail "
            "of I from the stops to the saddle integrated in its linear model along the "
            "instanton's stable arrival (no extrapolation over the stops)"
            if stable_arrival
            else ""
        )
    elif shooting:  # the switch noise in the Maier–Stein regime: the instanton by shooting
        from ._shooting import shooting_non_gibbs

        non_gibbs, error, q_end, crossing = shooting_non_gibbs(
            model, nm, path.path, q_a, alpha, saddle, h_a
        )
    else:  # D jumps on a surface: the flow on each side and the jump condition between
        from ._switch import switch_non_gibbs

        non_gibbs, error, q_end, crossing = switch_non_gibbs(
            model, nm, path.path, q_a, alpha, saddle
        )
    mismatch = float(np.linalg.norm(q_end - q_b) / np.linalg.norm(q_b))
    log_tau = (
        math.log(2 * math.pi / abs(lam)) + 0.5 * (logdet_b - logdet_a) + path.barrier + non_gibbs
    )
    accuracy = path.error + error
    detail = (
        f"I = {non_gibbs:.6g} ± {error:.2g}; Q at the end of the flow vs the Lyapunov Q_b: "
        f"relative difference {mismatch:.2g}"
    ) + (f"; {crossing}" if crossing else "")
    return log_tau, path.barrier, non_gibbs, accuracy, detail
