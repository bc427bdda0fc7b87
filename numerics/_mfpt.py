"""Exact mean first-passage times of the 1-D SDE, at any precision.

For ``dθ = −L'(θ) dt + √(2D(θ)) dW`` with interpretation α (current
``J = −P L' − D^α (D^{1−α} P)'``), the quasi-stationary density is ``p_s = D^{α−1} e^{−Φ}``,
``Φ' = L'/D``, and the generator is ``(1/p_s)(D p_s u')'``. The mean first-passage time from
``start`` to an absorbing ``end`` > start, with a reflecting boundary at ``left`` < start, is

    T = ∫_start^end dy e^{Φ(y)} D(y)^{−α} ∫_left^y dz D(z)^{α−1} e^{−Φ(z)}

(Gardiner, *Stochastic Methods*, §5.5; Hänggi, Talkner, Borkovec 1990 eq. 4.5). The splitting
probability of reaching ``upper`` before ``lower`` is ``∫_lower^start ψ / ∫_lower^upper ψ`` with
the scale density ``ψ = e^{Φ} D^{−α}``.

Numerics: the integrands are sharply peaked (e^{±Φ}, docs/conventions.md trap 6). Both are written with
the extreme values of Φ factored out, ``T = e^{Φ_max − Φ_min} ∫ f·I`` with f, g ≤ O(1), and
computed on adaptive Chebyshev–Lobatto panels split at the critical points of L, the jumps of D
and ``start``: Φ and the inner integral I(y) are spectral cumulative integrals on the same nodes,
so the double integral costs one pass. A panel is split until the last Chebyshev coefficients of
every integrand are below 10^−(dps+2) of its maximum. The error estimate compares the result
with the one on panels all halved once (two rules). Everything runs at dps + 10 digits.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import mpmath

from flatminima.errors import ConvergenceError, ParameterError
from flatminima.theory._conventions import TauNames, interpretation_name, numeric_alpha
from flatminima.theory._progress import current
from flatminima.theory._progress import progress as show_progress

from ._budget import check_mfpt_request, estimated_mfpt_seconds
from ._chebyshev import ChebRule, cheb_rule
from ._checks import check_dps, real
from ._landscape1d import Landscape1D, landscape_1d
from ._verify import Discretisation, VerificationCheck, verify_1d

__all__ = ["MFPTResult", "SplittingResult", "mfpt_1d", "splitting_probability"]

GUARD_DIGITS = 10
#: Work of ``verify=True`` in units of one computation: the first, the shifted panels
#: (degree + 6), 2·dps digits (≈ 2^2.3 with the degree growing with dps), two float64 scans.
VERIFY_COST = 8.0


@dataclass(frozen=True)
class MFPTResult(TauNames):
    """Mean first-passage time T (continuous time, unit η·iterations) of the 1-D SDE.

    Attributes
    ----------
    value, log_value
        T and log T at ``dps`` digits.
    tau, log_tau
        The same numbers under the name every escape-time result uses for the mean escape
        time (``EscapeTime.tau``, ``EscapeSimulation.tau``, ...).
    error
        Absolute error estimate of ``value`` (difference of two panel sets).
    barrier
        ΔΦ, the quasi-potential barrier the process climbs on its way from ``start`` to
        ``end``: the largest ``Φ(y) − min_{z ≤ y} Φ(z)`` over y between start and end (z runs
        from the reflecting boundary; mirrored for leftward escape). For a single barrier this
        is Φ(saddle) − Φ(minimum), the exponent of the Kramers formulas.
    verified_digits, checks
        Set by ``verify=True``: the smallest agreement (significant digits) of the
        independent recomputations, and the checks made, each a
        [`VerificationCheck`][flatminima.numerics.VerificationCheck] (docs/reliability.md).
    """

    value: mpmath.mpf
    log_value: mpmath.mpf
    error: mpmath.mpf
    barrier: mpmath.mpf
    start: mpmath.mpf
    end: mpmath.mpf
    reflecting: mpmath.mpf
    interpretation: str
    dps: int
    panels: int
    method: str
    verified_digits: float | None = None  # set by verify=True: the smallest agreement found
    checks: tuple[VerificationCheck, ...] = ()  # set by verify=True: what was checked, outcomes

    @property
    def relative_error(self) -> mpmath.mpf:
        return self.error / self.value

    def to_dict(self) -> dict[str, Any]:
        digits = self.dps
        return {
            "value": mpmath.nstr(self.value, digits),
            "log_value": mpmath.nstr(self.log_value, digits),
            "error": mpmath.nstr(self.error, 3),
            "barrier": mpmath.nstr(self.barrier, digits),
            "start": mpmath.nstr(self.start, digits),
            "end": mpmath.nstr(self.end, digits),
            "reflecting": mpmath.nstr(self.reflecting, digits),
            "interpretation": self.interpretation,
            "dps": self.dps,
            "panels": self.panels,
            "method": self.method,
            "verified_digits": self.verified_digits,
            "checks": [check.to_dict() for check in self.checks],
        }

    def __repr__(self) -> str:
        return (
            f"MFPTResult(value={mpmath.nstr(self.value, 15)}, "
            f"log_value={mpmath.nstr(self.log_value, 15)}, error={mpmath.nstr(self.error, 3)}, "
            f"interpretation={self.interpretation!r}, dps={self.dps})"
        )


@dataclass(frozen=True)
class SplittingResult:
    """Probability of reaching ``upper`` before ``lower`` from ``start``."""

    value: mpmath.mpf
    error: mpmath.mpf
    dps: int
    method: str
    verified_digits: float | None = None
    checks: tuple[VerificationCheck, ...] = ()  # set by verify=True: what was checked, outcomes

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": mpmath.nstr(self.value, self.dps),
            "error": mpmath.nstr(self.error, 3),
            "dps": self.dps,
            "method": self.method,
            "verified_digits": self.verified_digits,
            "checks": [check.to_dict() for check in self.checks],
        }


# ---------------------------------------------------------------------------------------------


@dataclass
class _Panel:
    """Everything about one panel [a, b] that does not depend on the others (computed once).

    Local quantities are normalised by the panel's own extremes of Φ, so that the global
    assembly only multiplies by one factor per panel: Φ = offset + Φ_loc,
    g = D^(α−1) e^{−(Φ − Φ_min)} = g_factor · ĝ, f = D^(−α) e^{Φ − Φ_max} = f_factor · f̂.
    """

    a: mpmath.mpf
    b: mpmath.mpf
    phi_step: mpmath.mpf  # Φ(b) − Φ(a)
    phi_low: mpmath.mpf  # min Φ_loc
    phi_high: mpmath.mpf  # max Φ_loc
    g_total: mpmath.mpf  # ∫_a^b ĝ
    g_max: mpmath.mpf
    g_tail: mpmath.mpf
    f_weight: mpmath.mpf  # ∫_a^b f̂
    fg_weight: mpmath.mpf  # ∫_a^b f̂(y) ∫_a^y ĝ
    f_max: mpmath.mpf
    f_tail: mpmath.mpf
    fg_tail: mpmath.mpf
    drift_tail: mpmath.mpf  # resolution of Φ (zero for a constant diffusion)


class _Panels:
    """Adaptive panels for one landscape in the coordinate u = sign·θ (escape towards +u)."""

    def __init__(self, land: Landscape1D, sign: int, alpha: mpmath.mpf, rule: ChebRule) -> None:
        self.land = land
        self.sign = sign
        self.alpha = alpha
        self.rule = rule
        self._cache: dict[tuple[mpmath.mpf, mpmath.mpf], _Panel] = {}

    def panel(self, a: mpmath.mpf, b: mpmath.mpf) -> _Panel:
        key = (a, b)
        if key not in self._cache:
            self._cache[key] = self._build(a, b)
            current().detail(f"{len(self._cache)} panels built")
        return self._cache[key]

    def _build(self, a: mpmath.mpf, b: mpmath.mpf) -> _Panel:
        rule, alpha, land = self.rule, self.alpha, self.land
        half, mid = (b - a) / 2, (a + b) / 2
        nodes = [mid + half * t for t in rule.nodes]
        # one-sided values at the panel ends: a jump of D sits on a panel boundary, and the end
        # node must see this panel's side of it (a nudge of 2^(8−prec) relative, within guard)
        nudge = max(abs(a), abs(b), b - a) * mpmath.ldexp(1, 8 - mpmath.mp.prec)
        nodes[0], nodes[-1] = a + nudge, b - nudge
        losses, diffusions = [], []
        for u in nodes:
            theta = self.sign * u
            loss, diff = land.loss(theta), land.diffusion(theta)
            if not (mpmath.isfinite(loss) and mpmath.isfinite(diff)):
                raise ParameterError(
                    "loss",
                    "finite values of the loss and the diffusion",
                    f"non-finite value at θ = {mpmath.nstr(theta, 8)}",
                )
            if diff <= 0:
                raise ParameterError(
                    "diffusion",
                    "a positive diffusion on the whole domain",
                    f"D = {mpmath.nstr(diff, 5)} at θ = {mpmath.nstr(theta, 8)}",
                )
            losses.append(loss)
            diffusions.append(diff)
        if land.constant_diffusion is not None:
            phi = [(loss - losses[0]) / land.constant_diffusion for loss in losses]
            drift_tail = mpmath.mpf(0)
        else:
            assert land.gradient is not None
            drift = [
                self.sign * land.gradient(self.sign * u) / d
                for u, d in zip(nodes, diffusions, strict=True)
            ]
            phi = [half * v for v in rule.integrate_cumulative(drift)]
            drift_tail = _tail(rule, drift) * half
        low, high = min(phi), max(phi)
        g_hat = [
            d ** (alpha - 1) * mpmath.exp(low - v) for v, d in zip(phi, diffusions, strict=True)
        ]
        f_hat = [d ** (-alpha) * mpmath.exp(v - high) for v, d in zip(phi, diffusions, strict=True)]
        g_cumulative = [half * v for v in rule.integrate_cumulative(g_hat)]
        fg = [f * g for f, g in zip(f_hat, g_cumulative, strict=True)]
        return _Panel(
            a=a,
            b=b,
            phi_step=phi[-1],
            phi_low=low,
            phi_high=high,
            g_total=g_cumulative[-1],
            g_max=max(g_hat),
            g_tail=_tail(rule, g_hat),
            f_weight=half * rule.integrate(f_hat),
            fg_weight=half * rule.integrate(fg),
            f_max=max(f_hat),
            f_tail=_tail(rule, f_hat),
            fg_tail=_tail(rule, fg),
            drift_tail=drift_tail,
        )


def _tail(rule: ChebRule, values: list[mpmath.mpf]) -> mpmath.mpf:
    return rule.tail(values)  # the last two coefficients only (O(N))


def _assemble(
    panels: list[_Panel], start: mpmath.mpf, tolerance: mpmath.mpf
) -> tuple[dict[str, Any], list[bool]]:
    """Global integrals from the per-panel data, and which panels are not resolved. O(panels)."""
    offsets, running = [], mpmath.mpf(0)
    for panel in panels:
        offsets.append(running)
        running += panel.phi_step
    inside = [p for p, panel in enumerate(panels) if panel.a >= start]
    phi_min = min(o + panel.phi_low for o, panel in zip(offsets, panels, strict=True))
    phi_max = max(offsets[p] + panels[p].phi_high for p in inside)
    # the barrier the process climbs: max over y in [start, end] of Φ(y) − min_{z ≤ y} Φ(z).
    # Φ is monotone on each panel (panels are split at the critical points of L), so the lowest
    # Φ before a panel's maximum is the lower of the running minimum and Φ at the panel's start.
    climb, running_min = mpmath.mpf(0), mpmath.inf
    for o, panel in zip(offsets, panels, strict=True):
        if panel.a >= start:
            climb = max(climb, o + panel.phi_high - min(running_min, o))
        running_min = min(running_min, o + panel.phi_low)
    g_factor = [
        mpmath.exp(phi_min - (o + panel.phi_low)) for o, panel in zip(offsets, panels, strict=True)
    ]
    prefix, acc = [], mpmath.mpf(0)
    for factor, panel in zip(g_factor, panels, strict=True):
        prefix.append(acc)
        acc += factor * panel.g_total
    integral = mpmath.mpf(0)
    fi_bounds: dict[int, mpmath.mpf] = {}
    fi_tails: dict[int, mpmath.mpf] = {}
    for p in inside:
        panel = panels[p]
        f_factor = mpmath.exp(offsets[p] + panel.phi_high - phi_max)
        integral += f_factor * (prefix[p] * panel.f_weight + g_factor[p] * panel.fg_weight)
        fi_bounds[p] = f_factor * panel.f_max * (prefix[p] + g_factor[p] * panel.g_total)
        fi_tails[p] = f_factor * (prefix[p] * panel.f_tail + g_factor[p] * panel.fg_tail)
    g_scale = max(f * panel.g_max for f, panel in zip(g_factor, panels, strict=True))
    fi_scale = max(fi_bounds.values())
    flags = []
    for p, panel in enumerate(panels):
        unresolved = (
            panel.drift_tail > tolerance or g_factor[p] * panel.g_tail > tolerance * g_scale
        )
        if p in fi_tails:
            unresolved = unresolved or fi_tails[p] > tolerance * fi_scale
        flags.append(bool(unresolved))
    result = {
        "integral": integral,
        "phi_min": phi_min,
        "phi_max": phi_max,
        "climb": climb,
        "left_gap": offsets[0] - phi_min,  # Φ at the left end above its minimum
        "total_psi": None,
    }
    return result, flags


def _split(
    panels: list[tuple[mpmath.mpf, mpmath.mpf]], flags: list[bool]
) -> list[tuple[mpmath.mpf, mpmath.mpf]]:
    out = []
    for (a, b), flag in zip(panels, flags, strict=True):
        if flag:
            m = (a + b) / 2
            out += [(a, m), (m, b)]
        else:
            out.append((a, b))
    return out


def _breakpoints(
    solver: _Panels, lo: mpmath.mpf, hi: mpmath.mpf, extra: Iterable[mpmath.mpf]
) -> list[mpmath.mpf]:
    land, sign = solver.land, solver.sign
    points = {lo, hi}
    candidates = list(land.breakpoints) + list(extra)
    if land.critical_points is not None:
        candidates += land.critical_points
    else:
        candidates += _scan_critical_points(land, sign, lo, hi)
    for theta in candidates:
        u = sign * theta
        if lo < u < hi:
            points.add(u)
    return sorted(points)


def _scan_critical_points(
    land: Landscape1D, sign: int, lo: mpmath.mpf, hi: mpmath.mpf, samples: int = 1024
) -> list[mpmath.mpf]:
    """Critical points of a callable loss: extrema of L on a grid, refined by findroot on L'."""
    grid = [lo + (hi - lo) * k / samples for k in range(samples + 1)]
    values = [land.loss(sign * u) for u in grid]
    found = []
    for k in range(1, samples):
        left, mid, right = values[k - 1], values[k], values[k + 1]
        if (mid - left) * (right - mid) < 0:
            guess = sign * grid[k]
            try:
                root = mpmath.findroot(lambda t: mpmath.diff(land.loss, t), guess)
            except (ValueError, ZeroDivisionError):
                continue
            if abs(root - guess) < 2 * (hi - lo) / samples:
                found.append(root)
    return found


def _resolve(
    solver: _Panels,
    bounds: list[tuple[mpmath.mpf, mpmath.mpf]],
    start: mpmath.mpf,
    tolerance: mpmath.mpf,
    max_panels: int,
) -> tuple[list[_Panel], dict[str, Any]]:
    """Split panels until every integrand is resolved; return the panels and the integrals."""
    while True:
        panels = [solver.panel(a, b) for a, b in bounds]
        result, flags = _assemble(panels, start, tolerance)
        if not any(flags):
            return panels, result
        if len(bounds) + sum(flags) > max_panels:
            worst = [bounds[p] for p, f in enumerate(flags) if f][:3]
            where = ", ".join(
                f"[{mpmath.nstr(solver.sign * a, 6)}, {mpmath.nstr(solver.sign * b, 6)}]"
                for a, b in worst
            )
            raise ConvergenceError(
                f"could not resolve the integrands with max_panels={max_panels} (still unresolved "
                f"near {where}); give the jump points of the diffusion as breakpoints=[...], or "
                "raise max_panels"
            )
        bounds = _split(bounds, flags)


def _interpretation(interpretation: Any, dps: int) -> tuple[mpmath.mpf, str]:
    """α at the working precision (dps + guard digits: α = 1/3 or π/4 exactly enough), and its
    name."""
    alpha = numeric_alpha(interpretation)
    with mpmath.workdps(dps + GUARD_DIGITS):
        return real("interpretation", alpha), interpretation_name(alpha)


def _default_degree(dps: int) -> int:
    """Chebyshev degree per panel: 32 up to 30 digits, then about the number of digits."""
    return max(32, 2 * ((dps + 1) // 2))


def _bounds(points: list[mpmath.mpf]) -> list[tuple[mpmath.mpf, mpmath.mpf]]:
    return [(a, b) for a, b in itertools.pairwise(points) if b > a]


def _check_method_options(degree: Any, max_panels: Any, dps: int) -> int:
    """The Chebyshev degree (default: from dps) and the panel budget, checked."""
    if isinstance(max_panels, bool) or not isinstance(max_panels, numbers.Integral):
        raise ParameterError("max_panels", "an integer ≥ 4", max_panels)
    if max_panels < 4:
        raise ParameterError("max_panels", "an integer ≥ 4", max_panels)
    if degree is None:
        return _default_degree(dps)
    if isinstance(degree, bool) or not isinstance(degree, numbers.Integral) or degree % 2:
        raise ParameterError("degree", "an even integer ≥ 8", degree)
    if degree < 8:
        raise ParameterError("degree", "an even integer ≥ 8", degree)
    return int(degree)


@dataclass(frozen=True)
class _Method:
    """What one computation needs besides its points: the landscape's inputs, α (and its name),
    the digits, the breakpoints and the panels' degree and budget (all checked)."""

    loss: Any
    diffusion: Any
    alpha: mpmath.mpf
    name: str
    dps: int
    breakpoints: list[Any]
    degree: int
    max_panels: int


def mfpt_1d(
    loss: Any,
    diffusion: Any,
    start: Any,
    end: Any,
    *,
    left: Any = -mpmath.inf,
    interpretation: Any = "ito",
    dps: int = 30,
    right: Any = mpmath.inf,
    breakpoints: Iterable[Any] = (),
    degree: int | None = None,
    max_panels: int = 4000,
    verify: bool = False,
    progress: bool | None = None,
) -> MFPTResult:
    r"""Exact mean first-passage time of the 1-D SDE from ``start`` to ``end``, at ``dps`` digits.

    Parameters
    ----------
    loss
        L(θ): a SymPy expression of one symbol or a callable (mpf → mpf).
    diffusion
        D(θ) > 0: a positive number, a SymPy expression of the same symbol (``Piecewise`` jumps
        become breakpoints by themselves) or a callable.
    start, end
        Starting point and absorbing point. ``end > start`` escapes to the right with a
        reflecting boundary at ``left`` (default −∞); ``end < start`` escapes to the left with a
        reflecting boundary at ``right`` (default +∞).
    interpretation
        ``"ito"`` (α = 0, default), ``"stratonovich"``, ``"anti-ito"`` or α ∈ [0, 1].
    dps
        Decimal digits of the result (15 to 10000, default 30). The work is done at dps + 10.
    breakpoints
        Points where D (or L) is not smooth, for callables (default none); SymPy ``Piecewise``
        jumps are found automatically.
    degree, max_panels
        Chebyshev degree per panel (default: 32, or about dps above 30 digits) and the panel
        budget (default 4000).
    verify
        Check the result four ways (docs/reliability.md): a float64 scan of the loss and the
        diffusion against the panels' interpolants, which splits the panels where it finds a
        feature they missed (a narrow bump or well, a near-jump) and computes again; a dense
        float64 quadrature; other panels with another degree; 2·dps digits. Raises
        [`ConvergenceError`][flatminima.errors.ConvergenceError] when a check fails and cannot
        be repaired; ``verified_digits`` and ``checks`` report what was found.
    progress
        Show the stage, the panels built and an ETA on stderr: None (default) when stderr is a
        terminal and the work is estimated at more than 2 s (from about 170 digits;
        with ``verify=True`` from about 50), True always, False never.

    Returns
    -------
    MFPTResult
        ``value``, ``log_value`` (also ``tau``, ``log_tau``), ``error`` (absolute), ``barrier``
        (ΔΦ climbed), method.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> m = mfpt_1d(x**4/4 - x**2/2, sp.Rational(1, 20), start=-1, end=1, dps=20)
    >>> mpmath.nstr(m.value, 15)
    '729.670691942323'

    Barriers far beyond float64 are fine (ΔL/D = 10⁴ here); ask for ``log_value``:

    >>> m = mfpt_1d(x**4/4 - x**2/2, sp.Rational(1, 40000), start=-1, end=1, dps=20)
    >>> mpmath.nstr(m.log_value, 15)
    '10001.4913409799'

    A float in a SymPy expression is read as the decimal it prints as (0.05 → 1/20), not as the
    double nearest to it. Bad: ``diffusion=lambda x: 0.05`` returns a double, so the result is
    good to 16 digits whatever ``dps`` is. Good: ``diffusion="0.05"`` or ``sp.Rational(1, 20)``.
    """
    points = {"start": start, "end": end, "left": left, "right": right}
    options = (interpretation, dps, breakpoints, degree, max_panels, verify, progress)
    return _run(_mfpt_1d, "mfpt_1d", loss, diffusion, points, *options)


def _run(
    inner: Callable[..., tuple[Any, Discretisation]],
    what: str,
    loss: Any,
    diffusion: Any,
    fixed: dict[str, Any],
    interpretation: Any,
    dps: Any,
    breakpoints: Iterable[Any],
    degree: int | None,
    max_panels: int,
    verify: bool,
    progress: Any,
) -> Any:
    """``inner`` (``_mfpt_1d`` or ``_splitting_probability``) on the points ``fixed``, once or
    under ``verify_1d``'s checks, inside the call's progress line; the budgets and argument
    checks first (numerics/_budget.py)."""
    dps = check_dps(dps)
    check_mfpt_request(loss, diffusion, fixed, dps, degree, breakpoints)
    points = list(breakpoints)

    def compute(
        digits: int, extra: list[mpmath.mpf], rule_degree: int | None
    ) -> tuple[Any, Discretisation]:
        alpha, name = _interpretation(interpretation, digits)
        chosen = _check_method_options(rule_degree, max_panels, digits)
        method = _Method(
            loss, diffusion, alpha, name, digits, [*points, *extra], chosen, max_panels
        )
        return inner(method, **fixed)

    effective = degree if isinstance(degree, int) else _default_degree(dps)
    estimate = estimated_mfpt_seconds(dps, effective) * (VERIFY_COST if verify else 1)
    with show_progress(what, estimate, progress) as line:
        if verify:
            return verify_1d(compute, loss, diffusion, dps, degree, what)
        line.update("computing", 0)
        return compute(dps, [], degree)[0]


def _orientation(
    start_v: mpmath.mpf, end_v: mpmath.mpf, left: Any, right: Any, end: Any
) -> tuple[int, Any, str]:
    """(sign of the escape direction, the reflecting boundary, its parameter name)."""
    if start_v == end_v:
        raise ParameterError("end", "a point different from start", end)
    if end_v > start_v:
        if right != mpmath.inf:
            raise ParameterError(
                "right", "+inf when end > start (left is the reflecting boundary)", right
            )
        return 1, left, "left"
    if left != -mpmath.inf:
        raise ParameterError(
            "left", "-inf when end < start (right is the reflecting boundary)", left
        )
    return -1, right, "right"


def _fixed_boundary(
    reflecting: Any, name: str, sign: int, u_start: mpmath.mpf
) -> mpmath.mpf | None:
    """A finite reflecting boundary in the coordinate u (None for ±inf), checked."""
    if reflecting in (mpmath.inf, -mpmath.inf):
        return None
    fixed_lo = sign * real(name, reflecting)
    if not fixed_lo <= u_start:
        raise ParameterError(
            name, "a reflecting boundary on the other side of start from end", reflecting
        )
    return fixed_lo


def _confined_panels(
    solver: _Panels,
    u_start: mpmath.mpf,
    u_end: mpmath.mpf,
    fixed_lo: mpmath.mpf | None,
    candidates: list[mpmath.mpf],
    reflecting_name: str,
    tolerance: mpmath.mpf,
    max_panels: int,
    dps: int,
) -> tuple[list[_Panel], dict[str, Any]]:
    """Resolved panels from the reflecting boundary to ``end`` (split at ``candidates``, θ
    coordinates); an infinite boundary is moved
    out until Φ there is (dps + 10)·ln 10 + 5 above its minimum (or the loss is not
    confining)."""
    lo = fixed_lo if fixed_lo is not None else u_start - max(u_end - u_start, mpmath.mpf(1))
    threshold = (dps + GUARD_DIGITS) * math.log(10) + 5
    falling = 0  # consecutive extensions with Φ lowest at the far end: not confining
    while True:
        points = _breakpoints(solver, lo, u_end, candidates)
        panels, result = _resolve(solver, _bounds(points), u_start, tolerance, max_panels)
        if fixed_lo is not None or result["left_gap"] > threshold:
            return panels, result
        falling = falling + 1 if result["left_gap"] <= 0 else 0
        if falling >= 2 or u_start - lo > mpmath.mpf(10) ** 9:
            raise ParameterError(
                "loss",
                "a loss that grows towards the reflecting boundary at infinity (a confining loss)",
                solver.land.description,
                f"give a finite {reflecting_name} boundary",
            )
        lo = u_start - 4 * (u_start - lo)


def _mfpt_1d(
    method: _Method, start: Any, end: Any, left: Any, right: Any
) -> tuple[MFPTResult, Discretisation]:
    """mfpt_1d without verification; also returns the panels it used (for the checks)."""
    alpha, dps, degree, max_panels = method.alpha, method.dps, method.degree, method.max_panels
    with mpmath.workdps(dps + GUARD_DIGITS):
        land = landscape_1d(method.loss, method.diffusion)
        start_v, end_v = real("start", start), real("end", end)
        sign, reflecting, reflecting_name = _orientation(start_v, end_v, left, right, end)
        extra = [real("breakpoints", b) for b in method.breakpoints]
        solver = _Panels(land, sign, alpha, cheb_rule(degree))
        u_start, u_end = sign * start_v, sign * end_v
        fixed_lo = _fixed_boundary(reflecting, reflecting_name, sign, u_start)
        tolerance = mpmath.mpf(10) ** (-(dps + 2))
        panels, result = _confined_panels(
            solver,
            u_start,
            u_end,
            fixed_lo,
            [start_v, *extra],
            reflecting_name,
            tolerance,
            max_panels,
            dps,
        )
        current().detail(f"{len(panels)} panels; every panel halved")
        fine_panels, value, error, log_value, barrier = _two_rules(
            solver, panels, result, u_start, tolerance, max_panels
        )
        described = (
            "exact 1-D MFPT T = ∫dy e^Φ(y) D(y)^(−α) ∫dz e^(−Φ(z)) D(z)^(α−1), "
            f"α = {mpmath.nstr(alpha, 5)}; adaptive Chebyshev panels (degree {degree}, "
            f"{len(fine_panels)} panels) at {dps + GUARD_DIGITS} digits; error = difference with "
            f"every panel halved; {land.description}"
        )
        reflecting_at = sign * fine_panels[0].a
        grid = Discretisation.of("mfpt", sign, fine_panels, u_start, u_end, alpha, degree)
    with mpmath.workdps(dps):
        return MFPTResult(
            value=+value,
            log_value=+log_value,
            error=+error,
            barrier=+barrier,
            start=+start_v,
            end=+end_v,
            reflecting=+reflecting_at if fixed_lo is not None else +reflecting,
            interpretation=method.name,
            dps=dps,
            panels=len(fine_panels),
            method=described,
        ), grid


def _two_rules(
    solver: _Panels,
    panels: list[_Panel],
    result: dict[str, Any],
    u_start: mpmath.mpf,
    tolerance: mpmath.mpf,
    max_panels: int,
) -> tuple[list[_Panel], mpmath.mpf, mpmath.mpf, mpmath.mpf, mpmath.mpf]:
    """The same integrals on every panel halved once: (panels, T, |T − T_coarse|, log T, ΔΦ)."""
    halved = _split([(p.a, p.b) for p in panels], [True] * len(panels))
    fine_panels, fine = _resolve(solver, halved, u_start, tolerance, 2 * max_panels + len(halved))
    scale = fine["phi_max"] - fine["phi_min"]
    coarse_scale = result["phi_max"] - result["phi_min"]
    value = fine["integral"] * mpmath.exp(scale)
    error = abs(value - result["integral"] * mpmath.exp(coarse_scale))
    log_value = mpmath.log(fine["integral"]) + scale
    return fine_panels, value, error, log_value, fine["climb"]


def _splitting_integrals(
    panels: list[_Panel], start: mpmath.mpf, tolerance: mpmath.mpf
) -> tuple[mpmath.mpf, list[bool]]:
    offsets, running = [], mpmath.mpf(0)
    for panel in panels:
        offsets.append(running)
        running += panel.phi_step
    phi_max = max(o + panel.phi_high for o, panel in zip(offsets, panels, strict=True))
    factors = [
        mpmath.exp(o + panel.phi_high - phi_max) for o, panel in zip(offsets, panels, strict=True)
    ]
    below = sum(
        (f * panel.f_weight for f, panel in zip(factors, panels, strict=True) if panel.b <= start),
        mpmath.mpf(0),
    )
    whole = sum(
        (f * panel.f_weight for f, panel in zip(factors, panels, strict=True)), mpmath.mpf(0)
    )
    scale = max(f * panel.f_max for f, panel in zip(factors, panels, strict=True))
    flags = [
        bool(panel.drift_tail > tolerance or f * panel.f_tail > tolerance * scale)
        for f, panel in zip(factors, panels, strict=True)
    ]
    return below / whole, flags


def splitting_probability(
    loss: Any,
    diffusion: Any,
    start: Any,
    lower: Any,
    upper: Any,
    *,
    interpretation: Any = "ito",
    dps: int = 30,
    breakpoints: Iterable[Any] = (),
    degree: int | None = None,
    max_panels: int = 4000,
    verify: bool = False,
    progress: bool | None = None,
) -> SplittingResult:
    """Probability that the 1-D SDE started at ``start`` reaches ``upper`` before ``lower``.

    ``P = ∫_lower^start ψ / ∫_lower^upper ψ`` with the scale density ψ = e^{Φ} D^{−α} (both
    boundaries absorbing; Gardiner §5.5.3). Parameters as for
    [`mfpt_1d`][flatminima.numerics.mfpt_1d]; ``verify=True`` runs the same four checks,
    ``progress`` shows the same progress line.

    Parameters
    ----------
    loss, diffusion
        As for ``mfpt_1d``.
    start, lower, upper
        The starting point between the two absorbing points.
    interpretation
        ``"ito"`` (α = 0, default), ``"stratonovich"``, ``"anti-ito"`` or α ∈ [0, 1].
    dps
        Decimal digits of the result (15 to 10000, default 30).
    breakpoints, degree, max_panels, verify
        As for ``mfpt_1d`` (defaults: no breakpoints, degree from dps, 4000 panels, no
        verification).
    progress
        As for ``mfpt_1d`` (default ``None``: automatic).
    """
    points = {"start": start, "lower": lower, "upper": upper}
    options = (interpretation, dps, breakpoints, degree, max_panels, verify, progress)
    return _run(_splitting_probability, "splitting_probability", loss, diffusion, points, *options)


def _splitting_probability(
    method: _Method, start: Any, lower: Any, upper: Any
) -> tuple[SplittingResult, Discretisation]:
    """splitting_probability without verification; also returns the panels it used."""
    alpha, dps, degree, max_panels = method.alpha, method.dps, method.degree, method.max_panels
    with mpmath.workdps(dps + GUARD_DIGITS):
        land = landscape_1d(method.loss, method.diffusion)
        start_v, lower_v, upper_v = real("start", start), real("lower", lower), real("upper", upper)
        if not lower_v < start_v < upper_v:
            raise ParameterError("start", "a point strictly between lower and upper", start)
        extra = [real("breakpoints", b) for b in method.breakpoints]
        solver = _Panels(land, 1, alpha, cheb_rule(degree))
        tolerance = mpmath.mpf(10) ** (-(dps + 2))
        bounds = _bounds(_breakpoints(solver, lower_v, upper_v, [start_v, *extra]))
        values = []
        for _ in range(2):  # the resolved panel set, then every panel halved once
            while True:
                panels = [solver.panel(a, b) for a, b in bounds]
                value, flags = _splitting_integrals(panels, start_v, tolerance)
                if not any(flags):
                    break
                if len(bounds) + sum(flags) > 2 * max_panels:
                    raise ConvergenceError(
                        f"splitting_probability: could not resolve ψ with max_panels={max_panels}"
                    )
                bounds = _split(bounds, flags)
            values.append(value)
            bounds = _split(bounds, [True] * len(bounds))
        grid = Discretisation.of("splitting", 1, panels, start_v, upper_v, alpha, degree)
    with mpmath.workdps(dps):
        return SplittingResult(
            value=+values[1],
            error=+abs(values[1] - values[0]),
            dps=dps,
            method="exact splitting probability ∫ψ/∫ψ, ψ = e^Φ D^(−α), adaptive Chebyshev panels",
        ), grid
