"""Escape time of a valley on any landscape: quasi-potential, instanton and the non-reversible
Eyring–Kramers prefactor.

For ``dθ = −∇L dt + √(2D(θ)) dW`` (interpretation α of a state-dependent D), the mean escape
time from the minimum a over the index-1 saddle b is, as ΔΦ → ∞,

    τ = (2π/|λ_b|) · √(|det Q_b| / det Q_a) · exp(ΔΦ + I) · (1 + O(1/ΔΦ)),

(Bouchet & Reygner 2016, for irreversible diffusions; Freidlin & Wentzell for ΔΦ):

- ΔΦ: the quasi-potential barrier, the least Freidlin–Wentzell action from a to b
  (``minimum_action_path``);
- λ_b: the negative eigenvalue of H_b (the linearized drift −H_b at b has the unstable rate
  |λ_b|; this does not depend on D);
- Q_a = Σ_a⁻¹, Q_b = Σ_b⁻¹: the Hessians of the quasi-potential at a and b, from the Lyapunov
  equations H Σ + Σ H = 2D at a and at b;
- I = ∫ F dt along the instanton θ̇ = −∇L + 2D∇Φ (from a at t = −∞ to b at t = +∞), with
  F = tr(D Q) − tr H + (2 − α) ∇Φ·(∇·D), Q = ∇²Φ carried along by the Riccati equation
  Q̇ = −(H_xx + H_xp Q + Q H_px + 2 Q D Q) of the Hamiltonian H(x, p) = ⟨b, p⟩ + ⟨p, D p⟩
  (the transport equation of the WKB prefactor; I = 0 when the process is reversible). The
  flow is integrated to 4%, 2% and 1% of the path length from the saddle; the rest is
  F/|λ_b| (F vanishes linearly at the saddle). The spread of the three is the error
  reported in ``accuracy`` (a few hundredths on the test landscapes: Q arrives a few percent
  off the Lyapunov Q_b, a limitation of this implementation).

For white noise (and any D = d·I) the process is reversible: then the result is the
Eyring–Kramers formula evaluated by `escape_time("white", ...)` at ``dps`` digits, with the
critical points refined by Newton's method in mpmath when the loss is a SymPy expression.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mpmath
import numpy as np

if TYPE_CHECKING:
    from scipy.interpolate import CubicSpline

from flatminima.errors import ConvergenceError, ParameterError, ValidityWarning
from flatminima.theory._conventions import interpretation_name, numeric_alpha

from ._action import MinimumActionPath, _prepare, action_path, path_options
from ._checks import check_dps, positive
from ._escape_time import VALIDITY_BARRIER, escape_time
from ._loss_model import LossModel
from ._noise_models import NoiseModel

__all__ = ["LandscapeEscapeTime", "landscape_escape_time"]

Array = np.ndarray
#: Relaxation rate (in units of the largest curvature at a, b) that holds Q u = w on the path.
_GAIN = 10.0


@dataclass(frozen=True)
class LandscapeEscapeTime:
    """Escape time of a valley on a landscape given as a loss function.

    Attributes
    ----------
    tau, log_tau, rate
        τ (continuous time, unit η·iterations), log τ, γ = 1/τ (mpf at ``dps`` digits; the
        digits beyond ``accuracy`` carry no information for a non-reversible noise).
    iterations, log_iterations
        τ/η where ``lr`` was given.
    barrier, quasi_potential
        ΔΦ, the quasi-potential barrier (ΔL/D for white noise); ``quasi_potential`` is the
        name ``EscapeTime`` uses.
    path
        The minimum-action path from the minimum to the saddle, (N + 1, n).
    s
        The paper's switch fraction read off the path: (L(c) − L(a))/ΔL, with c the first point
        of the path where the Hessian's smallest eigenvalue changes sign (where the literal SGD
        noise κ[H]⁺ vanishes); None if it does not change sign before the saddle.
    prefactor
        τ e^{−ΔΦ}.
    non_gibbs
        I, the integral along the instanton (0 for a reversible process).
    accuracy
        Relative accuracy of τ from the numerics (path barrier error, prefactor integration),
        not counting the asymptotic O(1/ΔΦ) error of the formula.
    method, warnings
        How it was computed; the warnings issued.
    """

    noise: str
    interpretation: str
    dps: int
    tau: mpmath.mpf
    log_tau: mpmath.mpf
    rate: mpmath.mpf
    iterations: mpmath.mpf | None
    log_iterations: mpmath.mpf | None
    barrier: mpmath.mpf
    path: Array
    s: float | None
    prefactor: mpmath.mpf
    non_gibbs: float
    accuracy: float
    minimum: Array
    saddle: Array
    action: MinimumActionPath
    method: str
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        def f(x: mpmath.mpf | None) -> str | None:
            return None if x is None else mpmath.nstr(x, self.dps)

        return {
            "noise": self.noise,
            "interpretation": self.interpretation,
            "dps": self.dps,
            "tau": f(self.tau),
            "log_tau": f(self.log_tau),
            "rate": f(self.rate),
            "iterations": f(self.iterations),
            "log_iterations": f(self.log_iterations),
            "barrier": f(self.barrier),
            "path": self.path.tolist(),
            "s": self.s,
            "prefactor": f(self.prefactor),
            "non_gibbs": self.non_gibbs,
            "accuracy": self.accuracy,
            "minimum": self.minimum.tolist(),
            "saddle": self.saddle.tolist(),
            "action": {k: v for k, v in self.action.to_dict().items() if k != "path"},
            "method": self.method,
            "warnings": list(self.warnings),
        }

    @property
    def quasi_potential(self) -> mpmath.mpf:
        """ΔΦ, the same number as ``barrier`` (the name ``EscapeTime`` uses)."""
        return self.barrier

    def _repr_latex_(self) -> str:
        """Jupyter: τ = A e^{ΔΦ} with its values (A = ``prefactor``, ΔΦ = ``barrier``)."""
        a, phi, tau = (_latex_number(v) for v in (self.prefactor, self.barrier, self.tau))
        return rf"$$\tau = A\,e^{{\Delta\Phi}} = {a}\; e^{{{phi}}} = {tau}$$"

    def __repr__(self) -> str:
        its = "" if self.iterations is None else f", iterations={mpmath.nstr(self.iterations, 10)}"
        return (
            f"LandscapeEscapeTime(noise={self.noise!r}, interpretation={self.interpretation!r}, "
            f"tau={mpmath.nstr(self.tau, 10)}, log_tau={mpmath.nstr(self.log_tau, 10)}, "
            f"barrier={mpmath.nstr(self.barrier, 10)}{its})"
        )


def _latex_number(value: mpmath.mpf, digits: int = 10) -> str:
    """``1.234e+5`` as ``1.234\\times 10^{5}``."""
    mantissa, _, exponent = mpmath.nstr(value, digits).partition("e")
    return rf"{mantissa}\times 10^{{{int(exponent)}}}" if exponent else mantissa


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


def _switch_fraction(model: LossModel, path: Array) -> float | None:
    values = np.linalg.eigvalsh(model.hessian(path))[:, 0]
    losses = model.value(path)
    change = np.nonzero((values[:-1] > 0) & (values[1:] <= 0))[0]
    if change.size == 0:
        return None
    i = int(change[0])
    t = values[i] / (values[i] - values[i + 1])
    # the loss at the crossing: interpolate along the segment with the loss itself
    point = path[i] + t * (path[i + 1] - path[i])
    level = float(model.value(point[None])[0])
    return (level - float(losses[0])) / (float(losses[-1]) - float(losses[0]))


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
    """
    n = model.dim

    def rhs(_t: float, y: Array) -> Array:
        s = y[0]
        q = y[1 : 1 + n * n].reshape(n, n)
        x = spline(s)[None]
        tangent = spline(s, 1)
        d = nm.field(x)[0]
        m = np.linalg.inv(d)
        drift = -model.gradient(x)[0]
        norm_t = float(np.linalg.norm(tangent))
        speed = math.sqrt(max(drift @ m @ drift, 0.0) / max(tangent @ m @ tangent, 1e-300))
        p = 0.5 * m @ (speed * tangent - drift)
        hess = model.hessian(x)[0]
        third = model.third(x, p[None])[0]
        if nm.constant is not None:
            h_px = -hess
            h_xx = -third
            divergence_term = 0.0
        else:
            dd = nm.derivative(x)[0]  # [i, j, k] = ∂_k D_ij
            h_px = -hess + 2 * np.einsum("klj,l->kj", dd, p)
            h_xx = -third + nm.second_derivative_form(x, p[None])[0]
            div = np.einsum("iji->j", dd)
            divergence_term = (2 - alpha) * float(div @ p)
        qdot = -(h_xx + h_px.T @ q + q @ h_px + 2 * q @ d @ q)
        u = tangent / norm_t
        w = momentum(s, 1) / norm_t
        r = q @ u - w
        qdot -= gain * (np.outer(r, u) + np.outer(u, r) - (r @ u) * np.outer(u, u))
        qdot = 0.5 * (qdot + qdot.T)
        f = float(np.trace(d @ q) - np.trace(hess)) + divergence_term
        return np.concatenate([[speed], qdot.ravel(), [f]])

    return rhs


def _non_gibbs_integral(
    model: LossModel,
    nm: NoiseModel,
    path: Array,
    q_a: Array,
    alpha: float,
    marks: tuple[float, ...] = (0.04, 0.02, 0.01),
    trace: list[Any] | None = None,
) -> tuple[float, float, Array]:
    """I along the instanton, an error estimate, and Q at the end of the integration."""
    n = model.dim
    lengths = np.linalg.norm(np.diff(path, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(lengths)])
    total = s[-1]
    from scipy.interpolate import CubicSpline  # lazy: keeps scipy.special off the import path

    spline = CubicSpline(s, path, axis=0)
    momentum = CubicSpline(s, _momentum(model, nm, path, spline(s, 1)), axis=0)
    scale = max(float(np.max(np.abs(np.linalg.eigvalsh(model.hessian(path[[0, -1]]))))), 1e-300)
    rhs = _hamiltonian_rhs(model, nm, spline, momentum, alpha, _GAIN * scale)
    start = 1e-4 * total
    y0 = np.concatenate([[start], q_a.ravel(), [0.0]])
    rate = abs(float(np.linalg.eigvalsh(model.hessian(path[-1:]))[0, 0]))
    values: list[float] = []
    q_end = q_a
    t0 = 0.0
    state = y0
    for mark in marks:

        def event(_t: float, y: Array, mark: float = mark) -> float:
            return y[0] - (1 - mark) * total

        event.terminal = True  # type: ignore[attr-defined]
        from scipy.integrate import solve_ivp

        sol = solve_ivp(
            rhs, (t0, t0 + 1e5), state, method="LSODA", rtol=1e-10, atol=1e-12, events=event
        )
        if sol.status != 1:
            raise ConvergenceError(
                "landscape_escape_time: the Riccati equation along the instanton did not reach "
                f"the saddle ({sol.message}); the path may not be converged"
            )
        state = sol.y_events[0][0]
        t0 = float(sol.t_events[0][0])
        # the tail to the saddle: F vanishes linearly in the distance r there, and r decays
        # like e^{−|λ_b| t}, so ∫ F dt from here on is F(here)/|λ_b| + O(r²)
        tail = float(rhs(t0, state)[-1]) / rate
        values.append(float(state[-1]) + tail)
        q_end = state[1 : 1 + n * n].reshape(n, n)
        if trace is not None:
            trace.append((mark, values[-1], q_end.copy()))
    # the values should agree if Q reaches the saddle's Q_b; measured, they drift by a few
    # hundredths per halving of the cut-off (Q ends a few % off Q_b): report the spread
    error = max(values) - min(values) + 1e-9
    return values[-1], error, q_end


def landscape_escape_time(
    loss: Any,
    noise: Any = "white",
    *,
    minimum: Any,
    saddle: Any,
    lr: Any = None,
    batch_size: Any = None,
    diffusion: Any = None,
    interpretation: Any = "ito",
    dps: int = 30,
    prefactor: str = "auto",
    points: int = 32,
    tol: float = 1e-11,
    initial: Any = None,
    gradient: Any = None,
    hessian: Any = None,
) -> LandscapeEscapeTime:
    r"""Mean escape time from a minimum over an index-1 saddle of any landscape, any noise.

    Parameters
    ----------
    loss
        A SymPy expression of n symbols (ordered by name; no float literals: use Rational), a
        callable on torch tensors of shape (m, n) returning m values (autograd derivatives), or
        any callable with ``gradient=`` and ``hessian=`` (same convention).
    noise
        ``"white"`` (``diffusion=d``), ``"anisotropic"`` (``diffusion=D`` constant SPD),
        ``"loss-dependent"`` (``lr``, ``batch_size``; D = (ηL(θ)/B) H(a)), ``"measured"``
        (``diffusion=Σ``: callable θ → per-sample gradient covariance; D = ηΣ/(2B)), or a
        callable θ → D(θ). The literal ``"sgd"`` model κ[H]⁺ is refused (D is singular on the
        path; see the error message).
    minimum, saddle
        Points near the minimum and the index-1 saddle (refined by Newton's method, checked).
    lr, batch_size
        η and B (κ = η/2B) for the SGD-shaped models; ``lr`` also gives ``iterations = τ/η``.
    interpretation
        α of a state-dependent D: ``"ito"``, ``"stratonovich"``, ``"anti-ito"`` or a number.
    dps
        Digits of the returned mpf values. For white noise the value is exact to ``dps``
        digits (SymPy loss); otherwise the numerics limit it to ``accuracy``.
    prefactor
        ``"auto"`` (Eyring–Kramers when D = d·I, else Bouchet–Reygner), ``"eyring-kramers"``
        (only for D = d·I) or ``"bouchet-reygner"`` (the general formula, any D).
    points, tol, initial
        The minimum-action string (see `minimum_action_path`).

    Returns
    -------
    LandscapeEscapeTime

    Notes
    -----
    :math:`\tau = \frac{2\pi}{|\lambda_b|}\sqrt{\frac{|\det Q_b|}{\det Q_a}}\,e^{\Delta\Phi + I}`
    with Q_a, Q_b from the Lyapunov equations HΣ + ΣH = 2D at a and b (Q = Σ⁻¹), λ_b the
    negative eigenvalue of H_b and I the integral of tr(DQ) − tr H + (2−α)∇Φ·(∇·D) along the
    instanton (Bouchet & Reygner, Ann. Henri Poincaré 17, 3499 (2016), "Generalisation of the
    Eyring–Kramers transition rate formula to irreversible diffusion processes"; the
    quasi-potential ΔΦ by gMAM, Heymann & Vanden-Eijnden 2008). For D = d·I it is the
    Eyring–Kramers formula :math:`\frac{2\pi}{|H_{be}|}\sqrt{\frac{|\det H_b|}{\det H_a}}
    e^{\Delta L/d}`.

    Examples
    --------
    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> L = (x**2 - 1)**2 + (y - x**2 / 2)**2
    >>> r = landscape_escape_time(L, "white", minimum=[-1, 0.5], saddle=[0, 0],
    ...                           diffusion="0.1", points=8, dps=20)
    >>> r.barrier  # ΔL/D, exact for white noise
    mpf('10.0')
    """
    dps = check_dps(dps)
    alpha_exact = numeric_alpha(interpretation)
    alpha, alpha_name = float(alpha_exact), interpretation_name(alpha_exact)
    if prefactor not in ("auto", "eyring-kramers", "bouchet-reygner"):
        raise ParameterError(
            "prefactor", "'auto', 'eyring-kramers' or 'bouchet-reygner'", prefactor
        )
    model, nm, a, b, h_a, h_b = _prepare(
        loss, noise, minimum, saddle, diffusion, lr, batch_size, gradient, hessian
    )
    eta = None
    if lr is not None:
        with mpmath.workdps(dps + 10):
            eta = positive("lr", lr)
    init = path_options(points, tol, initial, a.size)
    path = action_path(model, nm, a, b, points, float(tol), init)
    if not path.converged:
        raise ConvergenceError(
            f"landscape_escape_time: the minimum-action path did not converge (relative change "
            f"{path.residual:.2g}, order {path.order}); raise points or give an initial path"
        )
    reversible = nm.scalar is not None
    if prefactor == "eyring-kramers" and not reversible:
        raise ParameterError(
            "prefactor",
            "'auto' or 'bouchet-reygner' for a noise that is not D = d·I",
            prefactor,
            "the Eyring–Kramers formula holds only for a reversible process",
        )
    issued: list[str] = []
    use_ek = reversible and prefactor != "bouchet-reygner"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if use_ek:
            result = _eyring_kramers(model, nm, a, b, h_a, h_b, diffusion, dps)
            log_tau, barrier, non_gibbs, accuracy = result
            method = (
                "reversible (D = d·I): Eyring–Kramers formula evaluated by escape_time('white') "
                f"at {dps} digits"
                + ("; critical points refined in mpmath" if model.kind == "sympy" else "")
            )
        else:
            log_tau_f, barrier_f, non_gibbs, accuracy, detail = _bouchet_reygner(
                model, nm, a, b, h_a, h_b, path, alpha
            )
            with mpmath.workdps(dps + 10):
                log_tau = mpmath.mpf(log_tau_f)
                barrier = mpmath.mpf(barrier_f)
            method = (
                "non-reversible Eyring–Kramers formula (Bouchet & Reygner 2016): quasi-potential "
                "barrier by gMAM (Richardson-extrapolated), Q_a and Q_b from Lyapunov equations, "
                f"non-Gibbs integral by the Riccati flow along the instanton ({detail})"
            )
    for w in caught:
        if not issubclass(w.category, ValidityWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if float(barrier) < VALIDITY_BARRIER:
        issued.append(
            f"the asymptotic formula is used at a quasi-potential barrier ΔΦ = "
            f"{float(barrier):.3g} < {VALIDITY_BARRIER}; its error is of order 1/ΔΦ and more "
            "below 5: use an exact reference (mfpt_1d, mfpt_2d)"
        )
    if not use_ek and len(a) > 1:
        issued.append(
            "the non-reversible prefactor (Bouchet–Reygner) is not yet validated: against exact "
            "backward-Kolmogorov solves it gave 0.94–0.99 of τ on one 2-D anisotropic case and "
            "0.51 on another (a rotated double well with D at 60° to the valley); the barrier "
            "ΔΦ is reliable, the prefactor may be off by a factor of 2: check τ with mfpt_2d "
            "or simulate_escape"
        )
    if not reversible and accuracy > 1e-2:
        issued.append(
            f"the numerical accuracy of τ is only {accuracy:.2g} (relative); raise points"
        )
    for message in issued:
        warnings.warn(message, ValidityWarning, stacklevel=2)
    with mpmath.workdps(dps + 10):
        tau = mpmath.exp(log_tau)
        iterations = tau / eta if eta is not None else None
        log_iterations = log_tau - mpmath.log(eta) if eta is not None else None
        pref = mpmath.exp(log_tau - barrier)
    with mpmath.workdps(dps):
        return LandscapeEscapeTime(
            noise=nm.name,
            interpretation=alpha_name,
            dps=dps,
            tau=+tau,
            log_tau=+log_tau,
            rate=1 / tau,
            iterations=None if iterations is None else +iterations,
            log_iterations=None if log_iterations is None else +log_iterations,
            barrier=+barrier,
            path=path.path,
            s=_switch_fraction(model, path.path),
            prefactor=+pref,
            non_gibbs=non_gibbs,
            accuracy=accuracy,
            minimum=a,
            saddle=b,
            action=path,
            method=method,
            warnings=tuple(issued),
        )


def _eyring_kramers(
    model: LossModel,
    nm: NoiseModel,
    a: Array,
    b: Array,
    h_a: Array,
    h_b: Array,
    diffusion: Any,
    dps: int,
) -> tuple[mpmath.mpf, mpmath.mpf, float, float]:
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
    model: LossModel,
    nm: NoiseModel,
    a: Array,
    b: Array,
    h_a: Array,
    h_b: Array,
    path: MinimumActionPath,
    alpha: float,
) -> tuple[float, float, float, float, str]:
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
        raise ConvergenceError(
            "landscape_escape_time: the saddle's unstable curvature |λ_b| = "
            f"{abs(lam):.4g} is not below its smallest stable curvature {spectrum[1]:.4g}; "
            "then the instanton of a non-reversible process reaches the saddle along the slow "
            "stable direction, the quasi-potential is not twice differentiable there and the "
            "Bouchet–Reygner prefactor does not apply (the barrier from minimum_action_path "
            "still does); use an exact reference (mfpt_2d) or simulate_escape"
        )
    sign_a, logdet_a = np.linalg.slogdet(q_a)
    sign_b, logdet_b = np.linalg.slogdet(q_b)
    if sign_a <= 0 or sign_b >= 0:
        raise ConvergenceError(
            "landscape_escape_time: the quasi-potential Hessians from the Lyapunov equations "
            f"have the wrong signature (det Q_a sign {sign_a}, det Q_b sign {sign_b})"
        )
    non_gibbs, error, q_end = _non_gibbs_integral(model, nm, path.path, q_a, alpha)
    mismatch = float(np.linalg.norm(q_end - q_b) / np.linalg.norm(q_b))
    log_tau = (
        math.log(2 * math.pi / abs(lam)) + 0.5 * (logdet_b - logdet_a) + path.barrier + non_gibbs
    )
    accuracy = path.error + error
    detail = (
        f"I = {non_gibbs:.6g} ± {error:.2g}; Q at the end of the flow vs the Lyapunov Q_b: "
        f"relative difference {mismatch:.2g}"
    )
    return log_tau, path.barrier, non_gibbs, accuracy, detail
