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
  flow is integrated to 16%, 8%, 4% and 2% of the path length from the saddle (and closer
  where the string has five segments there); beyond each stop the rest is the integral of the saddle's linear
  model, ½ log det(Σ_b Q) (exact there however slowly Q tends to Q_b), and the values are
  Richardson-extrapolated to the saddle; the change when a stop is dropped is the error
  reported in ``accuracy``.

For white noise (and any D = d·I) the process is reversible: then the result is the
Eyring–Kramers formula evaluated by `escape_time("white", ...)` at ``dps`` digits, with the
critical points refined by Newton's method in mpmath when the loss is a SymPy expression.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields, replace
from typing import Any

import mpmath
import numpy as np

from flatminima.errors import ParameterError, ValidityWarning
from flatminima.theory._conventions import interpretation_name

from ._action import (
    MinimumActionPath,
    Problem,
    _prepare,
    converged_path,
    locate_saddle,
)
from ._checks import check_dps, positive
from ._escape_time import VALIDITY_BARRIER, _interpretation
from ._loss_model import LossModel
from ._noise_models import NoiseModel
from ._prefactor import _bouchet_reygner, _eyring_kramers

__all__ = ["LandscapeEscapeTime", "landscape_escape_time"]

Array = np.ndarray


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
    channels
        With several saddles: the result of each (τ, rate and prefactor above are for all of
        them, rates summed; barrier, path and s are the lowest-barrier saddle's). Empty for one.
    """

    noise: str
    interpretation: str
    dps: int
    barrier: mpmath.mpf
    tau: mpmath.mpf
    log_tau: mpmath.mpf
    prefactor: mpmath.mpf
    rate: mpmath.mpf
    iterations: mpmath.mpf | None
    log_iterations: mpmath.mpf | None
    path: Array
    s: float | None
    non_gibbs: float
    accuracy: float
    minimum: Array
    saddle: Array
    action: MinimumActionPath
    method: str
    warnings: tuple[str, ...]
    channels: tuple[LandscapeEscapeTime, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain values: mpf as strings of ``dps`` digits, arrays as lists, the path's summary
        without its points (they are under ``"path"``)."""
        out: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, mpmath.mpf):
                value = mpmath.nstr(value, self.dps)
            elif isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, MinimumActionPath):
                value = {k: v for k, v in value.to_dict().items() if k != "path"}
            elif isinstance(value, tuple):
                value = [v.to_dict() if isinstance(v, LandscapeEscapeTime) else v for v in value]
            out[item.name] = value
        return out

    @property
    def quasi_potential(self) -> mpmath.mpf:
        """ΔΦ, the same number as ``barrier`` (the name ``EscapeTime`` uses)."""
        return self.barrier

    def _repr_latex_(self) -> str:
        """Jupyter: τ = A e^{ΔΦ} with its values (A = ``prefactor``, ΔΦ = ``barrier``)."""
        a, phi, tau = (_latex_number(v) for v in (self.prefactor, self.barrier, self.tau))
        return rf"$$\tau = A\,e^{{\Delta\Phi}} = {a}\; e^{{{phi}}} = {tau}$$"

    def __repr__(self) -> str:
        shown = {"tau": self.tau, "log_tau": self.log_tau, "barrier": self.barrier}
        if self.iterations is not None:
            shown["iterations"] = self.iterations
        values = ", ".join(f"{k}={mpmath.nstr(v, 10)}" for k, v in shown.items())
        return (
            f"LandscapeEscapeTime(noise={self.noise!r}, "
            f"interpretation={self.interpretation!r}, {values})"
        )


def _smallest_curvature(model: LossModel, points: Array) -> Array:
    return np.linalg.eigvalsh(model.hessian(points))[:, 0]


def _switch_fraction(model: LossModel, path: Array) -> float | None:
    """(L(c) − L(a))/ΔL, c the first point of the path where the smallest eigenvalue of H
    changes sign, located by bisection on its segment (exact where H jumps, as in a C¹
    piecewise-quadratic valley, where it is the paper's s = |H_b|/(H_a + |H_b|))."""
    values = _smallest_curvature(model, path)
    change = np.nonzero((values[:-1] > 0) & (values[1:] <= 0))[0]
    if change.size == 0:
        return None
    i = int(change[0])
    left, right = path[i], path[i + 1]
    for _ in range(60):
        mid = 0.5 * (left + right)
        if _smallest_curvature(model, mid[None])[0] > 0:
            left = mid
        else:
            right = mid
    losses = model.value(np.stack([path[0], 0.5 * (left + right), path[-1]]))
    return float((losses[1] - losses[0]) / (losses[2] - losses[0]))


def _latex_number(value: mpmath.mpf, digits: int = 10) -> str:
    """``1.234e+5`` as ``1.234\\times 10^{5}``."""
    mantissa, _, exponent = mpmath.nstr(value, digits).partition("e")
    return rf"{mantissa}\times 10^{{{int(exponent)}}}" if exponent else mantissa


def _options(interpretation: Any, prefactor: str, dps: int) -> tuple[float, str, int]:
    """α and its name, and the checked ``dps``; refuses an unknown ``prefactor``."""
    dps = check_dps(dps)
    alpha = _interpretation(interpretation)
    if prefactor not in ("auto", "eyring-kramers", "bouchet-reygner"):
        raise ParameterError(
            "prefactor", "'auto', 'eyring-kramers' or 'bouchet-reygner'", prefactor
        )
    return float(alpha), interpretation_name(alpha), dps


def _use_eyring_kramers(nm: NoiseModel, prefactor: str) -> bool:
    reversible = nm.scalar is not None
    if prefactor == "eyring-kramers" and not reversible:
        raise ParameterError(
            "prefactor",
            "'auto' or 'bouchet-reygner' for a noise that is not D = d·I",
            prefactor,
            "the Eyring–Kramers formula holds only for a reversible process",
        )
    return reversible and prefactor != "bouchet-reygner"


def _evaluate(
    problem: Problem,
    path: MinimumActionPath,
    use_ek: bool,
    alpha: float,
    diffusion: Any,
    dps: int,
) -> tuple[mpmath.mpf, mpmath.mpf, float, float, str]:
    """(log τ, ΔΦ, I, accuracy, method); ValidityWarnings of `escape_time` are dropped (the
    caller issues its own)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if use_ek:
            log_tau, barrier, non_gibbs, accuracy = _eyring_kramers(problem, diffusion, dps)
            method = (
                "reversible (D = d·I): Eyring–Kramers formula evaluated by escape_time('white') "
                f"at {dps} digits"
                + ("; critical points refined in mpmath" if problem.model.kind == "sympy" else "")
            )
        else:
            log_tau_f, barrier_f, non_gibbs, accuracy, detail = _bouchet_reygner(
                problem, path, alpha
            )
            with mpmath.workdps(dps + 10):
                log_tau, barrier = mpmath.mpf(log_tau_f), mpmath.mpf(barrier_f)
            method = (
                "non-reversible Eyring–Kramers formula (Bouchet & Reygner 2016): quasi-potential "
                "barrier by gMAM (Richardson-extrapolated), Q_a and Q_b from Lyapunov equations, "
                f"non-Gibbs integral by the Riccati flow along the instanton ({detail})"
            )
    for w in caught:
        if not issubclass(w.category, ValidityWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return log_tau, barrier, non_gibbs, accuracy, method


def _validity_messages(
    problem: Problem, barrier: mpmath.mpf, accuracy: float, use_ek: bool
) -> list[str]:
    issued: list[str] = []
    if float(barrier) < VALIDITY_BARRIER:
        issued.append(
            f"the asymptotic formula is used at a quasi-potential barrier ΔΦ = "
            f"{float(barrier):.3g} < {VALIDITY_BARRIER}; its error is of order 1/ΔΦ and more "
            "below 5: use an exact reference (mfpt_1d, mfpt_2d)"
        )
    if use_ek:
        return issued
    if problem.minimum.size > 1:
        spectrum = np.linalg.eigvalsh(problem.hess_saddle)
        ratio = float(spectrum[1] / abs(spectrum[0]))
        if ratio < 1:
            issued.append(
                f"the saddle's smallest stable curvature is only {ratio:.3g}× its unstable one "
                f"(μ = {ratio:.3g} < 1, the Maier–Stein regime): the instanton reaches the "
                "saddle along its stable direction, the quasi-potential is not twice "
                "differentiable there, and the non-Gibbs integral's tail is integrated in the "
                "saddle's linear model along that arrival; measured against exact references "
                "on three such cases (μ = 0.5, 0.77 and, with the switch noise, 0.19) the "
                "prefactor's corrections fall like 1/ΔΦ but are large (0.80 and 0.93 of the "
                "exact τ at ΔΦ = 6 and 16 for μ = 0.77, 0.88 and 0.94 for μ = 0.19); check τ "
                "with mfpt_2d or simulate_escape"
            )
        elif ratio < 2:
            issued.append(
                f"the saddle's smallest stable curvature is only {ratio:.3g}× its unstable one: "
                "the quasi-potential's Hessian tends to its saddle value only like r^γ along "
                f"the instanton (γ = {ratio - 1:.3g}, r the distance to the saddle): the "
                "quasi-potential is only Hölder-continuous to second order at the saddle, the "
                "non-Gibbs integral's tail is taken from the saddle's linear model and the "
                "prefactor's 1/ΔΦ corrections can be large; measured on one such case "
                "(γ = 0.12): 0.859, 0.924 and 0.947 of the exact τ at ΔΦ = 6, 10 and 16; "
                "check τ with mfpt_2d or simulate_escape"
            )
    if accuracy > 1e-2:
        issued.append(
            f"the numerical accuracy of τ is only {accuracy:.2g} (relative); raise points"
        )
    return issued


def _result(
    problem: Problem,
    path: MinimumActionPath,
    values: tuple[mpmath.mpf, mpmath.mpf, float, float, str],
    alpha_name: str,
    dps: int,
    lr: Any,
    issued: list[str],
) -> LandscapeEscapeTime:
    log_tau, barrier, non_gibbs, accuracy, method = values
    with mpmath.workdps(dps + 10):
        eta = None if lr is None else positive("lr", lr)
        tau = mpmath.exp(log_tau)
        iterations = None if eta is None else tau / eta
        log_iterations = None if eta is None else log_tau - mpmath.log(eta)
        pref = mpmath.exp(log_tau - barrier)
    with mpmath.workdps(dps):
        return LandscapeEscapeTime(
            noise=problem.noise.name,
            interpretation=alpha_name,
            dps=dps,
            barrier=+barrier,
            tau=+tau,
            log_tau=+log_tau,
            prefactor=+pref,
            rate=1 / tau,
            iterations=None if iterations is None else +iterations,
            log_iterations=None if log_iterations is None else +log_iterations,
            path=path.path,
            s=_switch_fraction(problem.model, path.path),
            non_gibbs=non_gibbs,
            accuracy=accuracy,
            minimum=problem.minimum,
            saddle=problem.saddle,
            action=path,
            method=method,
            warnings=tuple(issued),
        )


def _saddle_list(saddle: Any) -> list[Any]:
    """One saddle, or the rows of a (k, n) array of saddles."""
    try:
        points = np.asarray(saddle, dtype=float)
    except (TypeError, ValueError, OverflowError):  # the point check names the parameter
        return [saddle]
    if points.ndim == 2 and points.shape[0] >= 1:
        return list(points)
    return [saddle]


def _combine(channels: list[LandscapeEscapeTime]) -> LandscapeEscapeTime:
    """Rates over several saddles summed; the lowest barrier's path, s and barrier."""
    best = min(channels, key=lambda r: r.barrier)
    dps = best.dps
    with mpmath.workdps(dps + 10):
        rate = mpmath.fsum(r.rate for r in channels)
        tau, log_tau = 1 / rate, -mpmath.log(rate)
        eta = None if best.iterations is None else best.tau / best.iterations
        iterations = None if eta is None else tau / eta
        log_iterations = None if eta is None else log_tau - mpmath.log(eta)
        pref = tau * mpmath.exp(-best.barrier)
    issued = tuple(dict.fromkeys(w for r in channels for w in r.warnings))
    with mpmath.workdps(dps):
        return replace(
            best,
            tau=+tau,
            log_tau=+log_tau,
            rate=+rate,
            prefactor=+pref,
            iterations=None if iterations is None else +iterations,
            log_iterations=None if log_iterations is None else +log_iterations,
            accuracy=max(r.accuracy for r in channels),
            method=f"rates summed over {len(channels)} saddles; the lowest barrier's: "
            + best.method,
            warnings=issued,
            channels=tuple(channels),
        )


def landscape_escape_time(
    loss: Any,
    noise: Any = "white",
    *,
    minimum: Any,
    saddle: Any = None,
    other_minimum: Any = None,
    keep_saddles: str = "all",
    lr: Any = None,
    batch_size: Any = None,
    interpretation: Any = "ito",
    dps: int = 30,
    diffusion: Any = None,
    prefactor: str = "auto",
    points: int = 32,
    tol: float = 1e-11,
    initial: Any = None,
    gradient: Any = None,
    hessian: Any = None,
    switch: Any = None,
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
        ``"sgd"`` (``lr``, ``batch_size``; D = κH_a | κ|H_b|, κ = η/2B, the harmonic switch:
        see ``switch``), ``"loss-dependent"`` (``lr``, ``batch_size``; D = (ηL(θ)/B) H(a)),
        ``"measured"`` (``diffusion=Σ``: callable θ → per-sample gradient covariance;
        D = ηΣ/(2B)), or a callable θ → D(θ) (continuous: a callable with a jump is refused).
        Default ``"white"``.
    minimum, saddle
        Points near the minimum and the index-1 saddle (refined by Newton's method, checked).
        ``saddle`` may also be several points, shape (k, n): the rates over the k saddles add
        (each its own escape channel); ``barrier``, ``path`` and ``s`` are then those of the
        lowest-barrier saddle and ``channels`` holds each saddle's result.
    other_minimum
        Instead of ``saddle``: a point near a second minimum; the index-1 saddles between the
        two are found on several minimum-energy strings (the white-noise gMAM string from
        ``minimum`` to ``other_minimum``, started straight and bent to either side), each the
        first loss maximum along its string refined by Newton's method; the distinct ones are
        used as several given saddles (rates add).
    keep_saddles
        With ``other_minimum``: ``"all"`` (the default: every distinct saddle found, rates
        summed) or ``"lowest"`` (only the lowest saddle found).
    lr, batch_size
        η and B (κ = η/2B) for the SGD-shaped models; ``lr`` also gives ``iterations = τ/η``.
    interpretation
        α of a state-dependent D: ``"ito"`` (the default), ``"stratonovich"``, ``"anti-ito"``
        or a number.
    dps
        Digits of the returned mpf values (default 30). For white noise the value is exact to
        ``dps`` digits (SymPy loss); otherwise the numerics limit it to ``accuracy``.
    prefactor
        ``"auto"`` (the default: Eyring–Kramers when D = d·I, else Bouchet–Reygner),
        ``"eyring-kramers"`` (only for D = d·I) or ``"bouchet-reygner"`` (the general formula,
        any D).
    switch
        The switch surface of ``noise="sgd"`` (None otherwise): None or ``"harmonic"`` (the
        default: where H's smallest eigenvalue vanishes) or a callable g(θ), surface g = 0;
        ``"literal"`` is refused with the reason (see `minimum_action_path`).
    points, tol, initial
        The minimum-action string (see `minimum_action_path`; ``initial`` with one saddle
        only): ``points`` segments of the coarsest string (default 32), ``tol`` the relative
        change of the action that ends the relaxation (default 1e-11).

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

    At a saddle whose unstable curvature exceeds its smallest stable one (μ = λ_s/|λ_b| < 1,
    the Maier–Stein regime; Maier & Stein, SIAM J. Appl. Math. 57, 752 (1997)) the instanton
    reaches b along its stable direction and ∇²Φ → 0 there: for a continuous D the last
    stretch of I is integrated in the saddle's linear model and the first in the minimum's,
    ``method`` names the regime and μ, and a `ValidityWarning` says how far such results were
    measured from exact references (a 1/ΔΦ law; 2.7% and 7.2% off at ΔΦ = 16 on the two cases
    measured, μ = 0.5 and 0.77). With the harmonic switch of ``noise="sgd"`` (D jumps on a
    surface), which the string cannot follow into such a saddle (p = O(r^{1/μ})), the
    instanton is shot in 2-D backwards from the saddle's stable manifold to the minimum and V
    carried along it (5.5% off at ΔΦ = 16 on the one case measured, μ = 0.19; about 30 s);
    in more dimensions the prefactor is refused there.

    Raises
    ------
    ParameterError
        A bad argument, named (a minimum that is not one, a saddle of index ≠ 1, a D that is
        not positive definite on the path, ...).
    ConvergenceError
        The string or the Riccati flow along it did not converge; or the prefactor is not
        computed (a switch-model D in the Maier–Stein regime in more than 2 dimensions, or no
        shot trajectory reaches the minimum; μ = 1 exactly).

    Warns
    -----
    ValidityWarning
        A small ΔΦ, a coarse string (raise ``points``), or the Maier–Stein regime.

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
    if saddle is None:
        if other_minimum is None:
            raise ParameterError(
                "saddle", "a point near an index-1 saddle, or other_minimum= to find it", None
            )
        saddle = locate_saddle(loss, minimum, other_minimum, gradient, hessian, keep=keep_saddles)
    elif other_minimum is not None:
        raise ParameterError("other_minimum", "None when saddle= is given", "a point")
    elif keep_saddles != "all":
        raise ParameterError(
            "keep_saddles",
            '"all" when saddle= is given (it chooses among the saddles other_minimum= finds)',
            repr(keep_saddles),
        )
    saddles = _saddle_list(saddle)
    if len(saddles) > 1 and initial is not None:
        raise ParameterError("initial", "None when several saddles are given", "an initial path")
    alpha, alpha_name, dps = _options(interpretation, prefactor, dps)
    if lr is not None:
        positive("lr", lr)
    settings = (lr, batch_size, alpha, alpha_name, dps, diffusion, prefactor, gradient, hessian)
    channels = [
        _one_saddle(loss, noise, minimum, point, settings, points, tol, initial, switch)
        for point in saddles
    ]
    return channels[0] if len(channels) == 1 else _combine(channels)


def _one_saddle(
    loss: Any,
    noise: Any,
    minimum: Any,
    saddle: Any,
    settings: tuple[Any, ...],
    points: int,
    tol: float,
    initial: Any,
    switch: Any,
) -> LandscapeEscapeTime:
    """``landscape_escape_time`` over one saddle (the options already checked)."""
    lr, batch_size, alpha, alpha_name, dps, diffusion, prefactor, gradient, hessian = settings
    problem = _prepare(
        loss, noise, minimum, saddle, diffusion, lr, batch_size, gradient, hessian, switch
    )
    path = converged_path(problem, points, tol, initial, "landscape_escape_time")
    use_ek = _use_eyring_kramers(problem.noise, prefactor)
    values = _evaluate(problem, path, use_ek, alpha, diffusion, dps)
    issued = _validity_messages(problem, values[1], values[3], use_ek)
    for message in issued:
        warnings.warn(message, ValidityWarning, stacklevel=3)
    return _result(problem, path, values, alpha_name, dps, lr, issued)
