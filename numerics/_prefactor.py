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
"""

from __future__ import annotations

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
    sign, logdet = np.linalg.slogdet(saddle.sigma @ q)
    if sign <= 0:
        raise ConvergenceError(
            "landscape_escape_time: the Riccati flow along the instanton reached the saddle's "
            "neighbourhood with a Hessian of the quasi-potential of the wrong signature "
            "(det Σ_b Q ≤ 0); the path may not be converged: raise points"
        )
    f_linear = float(np.trace(saddle.diffusion @ q) - np.trace(saddle.hessian))
    return 0.5 * float(logdet) + (f - f_linear) / saddle.rate


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


#: Stops of the flow, as fractions of the path length from the saddle (halving): always the
#: first four, and the closer ones that are at least `_RESOLVED` segments of the string from
#: the saddle.
_MARKS = (0.16, 0.08, 0.04, 0.02, 0.01, 0.005)
_RESOLVED = 5


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
) -> tuple[float, float, Array]:
    """I along the instanton, an error estimate, and Q at the last stop.

    The Riccati flow is integrated from the minimum to each stop in ``marks`` (default
    `_stops`: 16%, 8%, 4%, 2% of the path length from the saddle and closer ones down to five
    segments of the string); there the rest is the saddle's linear-model integral
    (`_linear_tail`), exact up to O(distance). The values at the stops are extrapolated to
    distance 0 by `_richardson`, whose estimate is the error reported."""
    n = model.dim
    lengths = np.linalg.norm(np.diff(path, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(lengths)])
    total = s[-1]
    from scipy.interpolate import CubicSpline  # lazy: keeps scipy.special off the import path

    spline = CubicSpline(s, path, axis=0)
    momentum = CubicSpline(s, _momentum(model, nm, path, spline(s, 1)), axis=0)
    scale = max(float(np.max(np.abs(np.linalg.eigvalsh(model.hessian(path[[0, -1]]))))), 1e-300)
    rhs = _hamiltonian_rhs(model, nm, spline, momentum, alpha, _GAIN * scale)
    state = np.concatenate([[1e-4 * total], q_a.ravel(), [0.0]])
    values: list[float] = []
    t0 = 0.0
    for mark in _stops(path.shape[0] - 1) if marks is None else marks:

        def event(_t: float, y: Array, mark: float = mark) -> float:
            return y[0] - (1 - mark) * total

        event.terminal = True  # type: ignore[attr-defined]
        sol = _integrate_flow(rhs, t0, state, event, n, nm.constant is not None)
        if sol.status != 1:
            raise ConvergenceError(
                "landscape_escape_time: the Riccati equation along the instanton did not reach "
                f"the saddle ({sol.message}); the path may not be converged"
            )
        state = sol.y_events[0][0]
        t0 = float(sol.t_events[0][0])
        q = state[1 : 1 + n * n].reshape(n, n)
        f_here = float(rhs(t0, state)[-1])
        values.append(float(state[-1]) + _linear_tail(q, f_here, saddle))
        if trace is not None:
            trace.append((mark, values[-1], float(state[-1]), f_here, q.copy()))
    value, error = _richardson(values)
    return value, error + 1e-9, state[1 : 1 + n * n].reshape(n, n)


def _maier_stein_refusal(unstable: float, stable: float) -> ConvergenceError:
    """The error for a saddle with |λ_b| ≥ λ_s (μ = λ_s/|λ_b| ≤ 1): the Maier–Stein regime.

    The instanton of a non-reversible process generically reaches such a saddle along its
    stable direction (its stable component decays like e^{−λ_s t}, slower than the e^{−|λ_b| t}
    of the unstable one), ∇²Φ does not tend to the Lyapunov Q_b along it and Φ is not C² at the
    saddle; the exit point is Weibull-distributed on an ε^{μ/2} scale along the separatrix
    (Maier & Stein, SIAM J. Appl. Math. 57, 752, 1997). Measured against exact references on two
    such landscapes (docs/numerics.md, "The Maier–Stein regime"): the mean escape time keeps
    the Arrhenius form C·e^{ΔΦ}, no power of ΔΦ in the prefactor, but no formula for C is
    implemented, so the prefactor is refused."""
    mu = stable / unstable
    return ConvergenceError(
        "landscape_escape_time: the saddle's unstable curvature |λ_b| = "
        f"{unstable:.4g} is not below its smallest stable curvature λ_s = {stable:.4g} "
        f"(μ = λ_s/|λ_b| = {mu:.3g} ≤ 1): the Maier–Stein regime. The instanton of a "
        "non-reversible process reaches such a saddle along its stable direction (that "
        "component decays like e^{−λ_s t}, more slowly than the e^{−|λ_b| t} along the unstable "
        "one; unless a symmetry removes it), the quasi-potential is not twice differentiable "
        "there, the exit point is spread along the separatrix on a scale ε^(μ/2) "
        f"= ΔΦ^(−{mu / 2:.3g}) (Weibull, Maier & Stein 1997) and the Bouchet–Reygner prefactor "
        "does not apply. Measured against exact references on two such landscapes (μ = 0.19 and "
        "0.77): τ = C·e^{ΔΦ} with no power of ΔΦ in front (fitted exponent 0 within 0.05), but "
        "no formula for C is implemented. The barrier from minimum_action_path is right; for τ "
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
    if spectrum.size > 1 and abs(lam) >= float(spectrum[1]):
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
        non_gibbs, error, q_end = _non_gibbs_integral(model, nm, path.path, q_a, alpha, saddle)
        crossing = ""
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
