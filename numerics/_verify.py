"""Self-verification of mpmath results (``verify=True``): what is checked, and how.

``verified`` (escape times, closed formulas): the result is computed again at 2·dps digits and
must agree to dps − 5 significant digits of τ itself (τ is compared, not log τ rounded to dps
digits: an absolute error of log τ is a relative error of τ, so log τ = 10⁸ needs 8 more digits
than dps to carry τ to dps digits).

``verify_1d`` (``mfpt_1d``, ``splitting_probability``) runs four checks, listed in the result's
``checks``:

1. *feature scan* — the loss and the diffusion are sampled in float64 on a dense grid (about
   2²⁰ points over the domain the panels cover, 2¹⁴ for Python callables, plus the midpoints
   between every two Chebyshev nodes of every panel, plus 801 points over ±40 scales around
   every symbolic hint: the centre and scale of each argument linear or quadratic in x that a
   SymPy expression passes to exp, tanh, … or a negative power) and compared with each
   panel's polynomial interpolant. A deviation above float64 noise (≥ 10⁻⁸ in units of
   Φ = L/D) whose estimated effect on the result (deviation × sensitivity of the result to Φ
   there) exceeds 10^−dps is an unresolved feature (a narrow bump or well, a near-jump the panels stepped over): the
   panels are split around it and everything is computed again, up to five rounds.
2. *dense float64 quadrature* — the same samples give an independent trapezoid value of the
   result (its own error estimated by halving the samples); it must agree within that error
   (at least 10⁻⁶ relative).
3. *independent discretisation* — the result again at dps digits on other panels (breakpoints
   added at golden-ratio positions) with another Chebyshev degree (+6): dps − 5 digits.
4. *precision* — the result again at 2·dps digits on the same breakpoints: dps − 5 digits.

Any failure that refinement cannot fix raises
[`ConvergenceError`][flatminima.errors.ConvergenceError]. What cannot be caught: a feature
narrower than the scan's spacing that no sample lands on and no hint names, and one whose
effect on Φ is below 10⁻⁸ (float64) while the panels do not see it (docs/reliability.md).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import mpmath
import numpy as np
import sympy as sp

from flatminima.errors import ConvergenceError
from flatminima.theory._progress import current

from ._checks import MAX_DPS, positive

__all__ = ["Discretisation", "VerificationCheck", "verified", "verify_1d"]

R = TypeVar("R")

#: Float64 samples over the domain for vectorisable (SymPy) inputs, and for Python callables.
SCAN_SAMPLES = 2**20
SCAN_SAMPLES_POINTWISE = 2**14
#: A deviation of the panels' interpolant from the samples below this (in units of Φ) is noise.
SCAN_FLOOR = 1e-8
MAX_ROUNDS = 5
_GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class VerificationCheck:
    """One check made by ``verify=True``.

    Attributes
    ----------
    name
        ``"feature scan"``, ``"dense float64 quadrature"``, ``"independent discretisation"``
        or ``"precision"``.
    status
        ``"passed"``, ``"refined"`` (a feature was found and the panels were split there; the
        result was computed again) or ``"skipped"`` (the check could not apply; ``detail`` says
        why). A failed check raises ``ConvergenceError`` instead.
    detail
        What was compared, and the outcome in numbers.
    """

    name: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass
class Discretisation:
    """The panels a 1-D result was computed on, in the coordinate u = sign·θ (escape to +u)."""

    kind: str  # "mfpt" or "splitting"
    sign: int
    bounds: list[tuple[mpmath.mpf, mpmath.mpf]]
    start: mpmath.mpf
    end: mpmath.mpf
    alpha: float
    degree: int

    @classmethod
    def of(
        cls,
        kind: str,
        sign: int,
        panels: Sequence[Any],
        start: Any,
        end: Any,
        alpha: Any,
        degree: int,
    ) -> Discretisation:
        """The discretisation made of ``panels`` (objects with ends ``a`` and ``b``)."""
        return cls(kind, sign, [(p.a, p.b) for p in panels], start, end, float(alpha), degree)


def _agreement(a: mpmath.mpf, b: mpmath.mpf, dps: int) -> float:
    """Significant digits on which a and b agree (relative difference), at most dps."""
    with mpmath.workdps(2 * dps + 10):
        if b == 0:
            return float(dps) if a == 0 else 0.0
        difference = abs(a - b) / abs(b)
        if difference == 0:
            return float(dps)
        return min(float(dps), -float(mpmath.log10(difference)))


def verified(
    compute: Callable[[int], R], dps: int, value: Callable[[R], mpmath.mpf], what: str
) -> R:
    """``compute(dps)`` checked against ``compute(2·dps)``; returns the first with
    ``verified_digits`` and ``checks`` set.

    ``value`` must return the quantity itself (τ, not log τ): mpf has an unbounded exponent, so
    τ = e^(10⁸) is compared to dps digits as it is."""
    first = compute(dps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the check repeats the first call's warnings
        second = compute(min(2 * dps, MAX_DPS))
    digits = _agreement(value(first), value(second), dps)
    if not math.isfinite(digits) or digits < dps - 5:
        raise ConvergenceError(
            f"{what}: the result at {dps} digits agrees with the one at {2 * dps} digits to only "
            f"{digits:.1f} digits (fewer than dps − 5 = {dps - 5})"
        )
    check = VerificationCheck(
        "precision",
        "passed",
        f"again at {min(2 * dps, MAX_DPS)} digits: agrees to {digits:.1f} significant digits",
    )
    return dataclasses.replace(first, verified_digits=digits, checks=(check,))  # type: ignore[type-var]


# ---------------------------------------------------------------------------------------------
# float64 evaluation of the user's loss and diffusion, for the scan

FloatFn = Callable[[np.ndarray], np.ndarray]


def _pointwise(fn: Callable[[Any], Any]) -> FloatFn:
    def evaluate(xs: np.ndarray) -> np.ndarray:
        out = np.empty(xs.shape)
        with mpmath.workdps(15):
            for i, x in enumerate(xs.ravel()):
                try:
                    out.flat[i] = float(fn(mpmath.mpf(float(x))))
                except (ArithmeticError, ValueError, TypeError, OverflowError):
                    out.flat[i] = math.nan
        return out

    return evaluate


def _float_function(arg: Any, name: str) -> tuple[FloatFn | float, bool]:
    """(function of a float64 array, vectorised?) or (constant, True)."""
    if isinstance(arg, sp.Basic) and not arg.is_number:
        expr = sp.sympify(arg)
        floats = expr.atoms(sp.Float)
        if floats:
            expr = expr.xreplace({f: sp.Rational(str(f)) for f in floats})
        (symbol,) = expr.free_symbols
        numpy_fn = sp.lambdify(symbol, expr, "numpy")
        mp_fn = sp.lambdify(symbol, expr, "mpmath")

        def evaluate(xs: np.ndarray) -> np.ndarray:
            with np.errstate(all="ignore"):
                out = np.asarray(numpy_fn(xs), dtype=np.float64)
            return np.broadcast_to(out, xs.shape).copy()

        try:  # a function numpy does not know (NameError), or a non-real value: point by point
            evaluate(np.linspace(-1.0, 1.0, 5))
        except (TypeError, ValueError, AttributeError, NameError, KeyError):
            return _pointwise(mp_fn), False
        return evaluate, True
    if callable(arg) and not isinstance(arg, sp.Basic):
        return _pointwise(arg), False
    with mpmath.workdps(20):
        return float(positive(name, arg)), True


#: Symbolic hints: at most this many, each sampled at 801 points over ±40 of its own scale.
MAX_HINTS = 64
_HINT_OFFSETS = np.linspace(-40.0, 40.0, 801)


def _symbolic_hints(arg: Any) -> list[tuple[float, float]]:
    """(centre, scale) of the narrow features a SymPy expression can have: every argument of a
    function (exp, tanh, sin, …) or of a negative or fractional power that is a polynomial of
    degree 1 or 2 in the symbol — a·x + b changes by 1 over 1/|a| around −b/a, a quadratic
    over 1/√|a₂| around its vertex. The scan samples there at that scale, so a feature far
    narrower than its uniform spacing is not missed."""
    if not isinstance(arg, sp.Basic) or arg.is_number:
        return []
    expr = sp.sympify(arg)
    (symbol,) = expr.free_symbols
    found: dict[tuple[float, float], None] = {}
    for sub in sp.preorder_traversal(expr):
        if isinstance(sub, sp.Function):
            arguments = list(sub.args)
        elif isinstance(sub, sp.Pow) and not (sub.exp.is_Integer and sub.exp > 0):
            arguments = [sub.base]
        else:
            continue
        for argument in arguments:
            if not argument.has(symbol):
                continue
            try:
                poly = sp.Poly(sp.expand(argument), symbol)
            except (sp.PolynomialError, sp.GeneratorsNeeded, TypeError, AttributeError, ValueError):
                continue
            if not all(c.is_real for c in poly.all_coeffs()):
                continue
            coefficients = [float(c) for c in poly.all_coeffs()]
            if poly.degree() == 1 and coefficients[0] != 0:
                centre, scale = -coefficients[1] / coefficients[0], 1 / abs(coefficients[0])
            elif poly.degree() == 2 and coefficients[0] != 0:
                centre = -coefficients[1] / (2 * coefficients[0])
                scale = 1 / math.sqrt(abs(coefficients[0]))
            else:
                continue
            if math.isfinite(centre) and scale > 1e-12 * max(1.0, abs(centre)):
                found[(centre, scale)] = None
        if len(found) >= MAX_HINTS:
            break
    return list(found)


# ---------------------------------------------------------------------------------------------
# the scan


@dataclass
class _Scan:
    clusters: list[tuple[float, float, float]]  # (u_lo, u_hi, estimated effect), most first
    dense_log: float | None  # log of the dense float64 value (mfpt) or the value (splitting)
    dense_tolerance: float
    samples: int
    spacing: float
    unchecked: int


def _panel_points(
    a: float, b: float, degree: int, count: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """(samples, Chebyshev–Lobatto nodes) of one panel, the ends nudged inside."""
    width = b - a
    nudge = max(width * 1e-9, 8 * float(np.spacing(max(abs(a), abs(b)))))
    if width <= 4 * nudge:
        return None
    t = -np.cos(np.pi * np.arange(degree + 1) / degree)  # ascending on [−1, 1]
    middles = -np.cos(np.pi * (np.arange(degree) + 0.5) / degree)
    uniform = -1 + 2 * (np.arange(count) + 0.5) / count
    nodes = a + (b - a) * (t + 1) / 2
    nodes[0], nodes[-1] = a + nudge, b - nudge
    inner = a + (b - a) * (np.concatenate([uniform, middles]) + 1) / 2
    inner = inner[(inner > a + nudge) & (inner < b - nudge)]
    samples = np.unique(np.concatenate([[a + nudge], inner, [b - nudge]]))
    return samples, nodes


def _barycentric(nodes: np.ndarray, values: np.ndarray, xs: np.ndarray) -> np.ndarray:
    n = len(nodes) - 1
    weights = (-1.0) ** np.arange(n + 1)
    weights[0] /= 2
    weights[-1] /= 2
    out = np.empty(xs.shape)
    for lo in range(0, len(xs), 8192):
        chunk = xs[lo : lo + 8192]
        diff = chunk[:, None] - nodes[None, :]
        exact = diff == 0
        diff[exact] = 1.0
        kernel = weights / diff
        value = (kernel @ values) / kernel.sum(axis=1)
        hit = exact.any(axis=1)
        if hit.any():
            value[hit] = values[np.argmax(exact[hit], axis=1)]
        out[lo : lo + 8192] = value
    return out


def _cumulative_trapezoid(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum((y[1:] + y[:-1]) * np.diff(x) / 2)])


def _dense_value(
    u: np.ndarray,
    phi: np.ndarray,
    diffusion: np.ndarray,
    grid: Discretisation,
) -> tuple[float, np.ndarray]:
    """log of the dense trapezoid value (mfpt: log T; splitting: P) and the sensitivity of the
    result (relative) to Φ at each sample, per unit length."""
    alpha = grid.alpha
    start = float(grid.start)
    after = u >= start
    if grid.kind == "mfpt":
        phi_max = float(np.max(phi[after]))
        phi_min = float(np.min(phi))
        f = diffusion ** (-alpha) * np.exp(np.where(after, phi - phi_max, -np.inf))
        g = diffusion ** (alpha - 1) * np.exp(phi_min - phi)
        inner = _cumulative_trapezoid(u, g)
        outer = _cumulative_trapezoid(u, f * inner)
        total = outer[-1]
        f_cumulative = _cumulative_trapezoid(u, f)
        remaining = f_cumulative[-1] - f_cumulative
        sensitivity = (f * inner + g * remaining) / total
        return math.log(total) + phi_max - phi_min, sensitivity
    phi_max = float(np.max(phi))
    psi = diffusion ** (-alpha) * np.exp(phi - phi_max)
    cumulative = _cumulative_trapezoid(u, psi)
    below = float(np.interp(start, u, cumulative))
    whole = cumulative[-1]
    sensitivity = psi * ((~after) / below + 1 / whole)
    return below / whole, sensitivity


def _sample_points(
    grid: Discretisation, total: int, hints: Sequence[tuple[float, float]]
) -> tuple[np.ndarray, np.ndarray, list[int], float]:
    """(samples u, Chebyshev nodes of every panel, samples per panel, uniform spacing)."""
    bounds = [(float(a), float(b)) for a, b in grid.bounds]
    lo, hi = bounds[0][0], bounds[-1][1]
    spacing = (hi - lo) / total
    sample_sets, node_sets = [], []
    near = (
        np.concatenate([grid.sign * c + scale * _HINT_OFFSETS for c, scale in hints])
        if hints
        else np.empty(0)
    )
    near = np.sort(near[(near > lo) & (near < hi)])
    for a, b in bounds:
        count = max(4, int(total * (b - a) / (hi - lo)))
        points = _panel_points(a, b, grid.degree, count)
        if points is not None:
            samples, nodes_ab = points
            inside = near[(near > samples[0]) & (near < samples[-1])]
            if len(inside):
                samples = np.unique(np.concatenate([samples, inside]))
            sample_sets.append(samples)
            node_sets.append(nodes_ab)
    sizes = [len(s) for s in sample_sets]
    return np.concatenate(sample_sets), np.concatenate(node_sets), sizes, spacing


def _deviations(
    u: np.ndarray,
    nodes: np.ndarray,
    sizes: list[int],
    values: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    constant: bool,
    degree: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: the departure from the panel's interpolant (units of Φ, zero below float64
    noise) and whether the sample is usable (finite, D > 0)."""
    loss, loss_nodes, diffusion, diffusion_nodes = values
    deviation = np.zeros(u.shape)
    usable = np.isfinite(loss) & np.isfinite(diffusion) & (diffusion > 0)
    offset = node_offset = 0
    for size in sizes:
        part = slice(offset, offset + size)
        node_part = slice(node_offset, node_offset + degree + 1)
        l_nodes, d_nodes = loss_nodes[node_part], diffusion_nodes[node_part]
        if np.all(np.isfinite(l_nodes)) and np.all(np.isfinite(d_nodes)) and np.all(d_nodes > 0):
            d_min = float(np.min(d_nodes))
            span = float(np.ptp(l_nodes)) / d_min
            noise = 1e-11 * float(np.max(np.abs(l_nodes))) / d_min
            dev = np.abs(loss[part] - _barycentric(nodes[node_part], l_nodes, u[part]))
            dev = dev / diffusion[part]
            if not constant:
                rel = np.abs(diffusion[part] - _barycentric(nodes[node_part], d_nodes, u[part]))
                rel = rel / diffusion[part]
                dev = dev + rel * (1 + span)
                noise += 1e-11 * float(np.max(d_nodes)) / d_min * (1 + span)
            deviation[part] = np.where(dev > SCAN_FLOOR + noise, dev, 0.0)
        else:
            usable[part] = False
        offset += size
        node_offset += degree + 1
    deviation[~usable] = 0.0
    return deviation, usable


def _dense_estimate(
    u: np.ndarray,
    loss: np.ndarray,
    diffusion: np.ndarray,
    constant: bool,
    grid: Discretisation,
) -> tuple[float | None, float, np.ndarray]:
    """(dense value or None, its tolerance, sensitivity of the result to Φ) on usable samples.

    Φ on the samples is a Stieltjes sum of dL/D (exact for a constant diffusion); the value's
    own error is estimated by dropping every other sample."""
    if constant:
        phi = (loss - loss[0]) / diffusion
        rounding = 1e-15
    else:
        steps = np.diff(loss) * 2 / (diffusion[1:] + diffusion[:-1])
        phi = np.concatenate([[0.0], np.cumsum(steps)])
        rounding = 1e-16 * len(phi)
    with np.errstate(all="ignore"):
        try:
            value, sens = _dense_value(u, phi, diffusion, grid)
            half = slice(None, None, 2)
            value_half, _ = _dense_value(u[half], phi[half], diffusion[half], grid)
        except (ValueError, ZeroDivisionError, FloatingPointError):
            value = value_half = math.nan
    if not (math.isfinite(value) and math.isfinite(value_half)):
        return None, math.inf, np.zeros(u.shape)
    sensitivity = np.nan_to_num(sens, nan=0.0, posinf=0.0)
    span_phi = float(np.ptp(phi))
    if grid.kind == "mfpt":
        estimate = abs(math.expm1(value - value_half))
    else:
        estimate = abs(value - value_half) / abs(value) if value else abs(value_half)
    tolerance = max(1e-6, 10 * estimate) + 10 * rounding * span_phi
    return value, tolerance, sensitivity


def _clusters(
    u: np.ndarray, deviation: np.ndarray, sensitivity: np.ndarray, spacing: float, dps: int
) -> list[tuple[float, float, float]]:
    """Runs of flagged samples whose first-order effect on the result exceeds 10^−dps, as
    (u_lo, u_hi, effect), largest effect first (at most 100)."""
    weights = np.zeros(u.shape)
    weights[1:-1] = (u[2:] - u[:-2]) / 2
    effect = deviation * sensitivity * weights
    if not np.any(sensitivity):  # no usable sensitivity: every deviation counts
        effect = deviation * weights
    flagged = np.flatnonzero(deviation > 0)
    clusters: list[tuple[float, float, float]] = []
    if len(flagged):
        gaps = np.flatnonzero(np.diff(u[flagged]) > 3 * spacing) + 1
        for run in np.split(flagged, gaps):
            total_effect = float(np.sum(effect[run]))
            if total_effect > 10.0 ** (-dps):
                first, last = run[0], run[-1]
                left = u[max(first - 2, 0)]
                right = u[min(last + 2, len(u) - 1)]
                clusters.append((float(left), float(right), total_effect))
    clusters.sort(key=lambda c: -c[2])
    return clusters[:100]


def _scan(
    loss_fn: FloatFn | float,
    diffusion_fn: FloatFn | float,
    vectorised: bool,
    grid: Discretisation,
    dps: int,
    hints: Sequence[tuple[float, float]] = (),
) -> _Scan:
    assert callable(loss_fn)
    total = SCAN_SAMPLES if vectorised else SCAN_SAMPLES_POINTWISE
    u, nodes, sizes, spacing = _sample_points(grid, total, hints)
    sign = grid.sign

    def evaluate(fn: FloatFn | float, where: np.ndarray) -> np.ndarray:
        if callable(fn):
            return fn(sign * where)
        return np.full(where.shape, fn)

    constant = not callable(diffusion_fn)
    values = (
        evaluate(loss_fn, u),
        evaluate(loss_fn, nodes),
        evaluate(diffusion_fn, u),
        evaluate(diffusion_fn, nodes),
    )
    deviation, usable = _deviations(u, nodes, sizes, values, constant, grid.degree)
    dense_log, tolerance, sens = _dense_estimate(
        u[usable], values[0][usable], values[2][usable], constant, grid
    )
    sensitivity = np.zeros(u.shape)
    sensitivity[usable] = sens
    clusters = _clusters(u, deviation, sensitivity, spacing, dps)
    unchecked = int(np.count_nonzero(~usable))
    return _Scan(clusters, dense_log, tolerance, len(u), spacing, unchecked)


def _golden_points(grid: Discretisation, count: int = 9) -> list[mpmath.mpf]:
    lo, hi = grid.bounds[0][0], grid.bounds[-1][1]
    return [
        grid.sign * (lo + (hi - lo) * mpmath.mpf((k * _GOLDEN) % 1)) for k in range(1, count + 1)
    ]


def _where(grid: Discretisation, clusters: list[tuple[float, float, float]]) -> str:
    spots = []
    for u_lo, u_hi, effect in clusters[:3]:
        centre, half = grid.sign * (u_lo + u_hi) / 2, (u_hi - u_lo) / 2
        spots.append(f"θ = {centre:.10g} ± {half:.2g} (effect ~{effect:.1e})")
    return ", ".join(spots)


Compute = Callable[[int, list[mpmath.mpf], int | None], tuple[Any, Discretisation]]


class _Checker:
    """The float64 view of the loss and the diffusion, and the scan-and-split loop."""

    def __init__(self, compute: Compute, loss: Any, diffusion: Any, dps: int, what: str) -> None:
        self.compute, self.dps, self.what = compute, dps, what
        self.loss_fn, loss_vectorised = _float_function(loss, "loss")
        self.diffusion_fn, diffusion_vectorised = _float_function(diffusion, "diffusion")
        self.vectorised = loss_vectorised and diffusion_vectorised
        self.hints = (_symbolic_hints(loss) + _symbolic_hints(diffusion))[:MAX_HINTS]
        self.line = current()
        self.done, self.total = 0.0, _VERIFY_WORK

    def step(self, what: str, work: float = 0.0) -> None:
        """Progress: ``work`` more units done (one unit: one computation at dps digits)."""
        self.done += work
        self.line.update(what, self.done, self.total)

    def scan(self, grid: Discretisation) -> _Scan:
        return _scan(self.loss_fn, self.diffusion_fn, self.vectorised, grid, self.dps, self.hints)

    def scanned(
        self,
        base: list[mpmath.mpf],
        rule_degree: int | None,
        label: str,
        initial: tuple[Any, Discretisation] | None = None,
    ) -> tuple[Any, Discretisation, _Scan, list[mpmath.mpf], list[VerificationCheck]]:
        """compute on ``base`` breakpoints, scan, split at what the scan finds, repeat."""
        found: list[VerificationCheck] = []
        extra: list[mpmath.mpf] = []
        if initial is None:
            initial = self.compute(self.dps, base, rule_degree)
            self.step(f"feature scan of the {label}", 1.0)
        result, grid = initial
        for round_ in range(1, MAX_ROUNDS + 1):
            scan = self.scan(grid)
            self.step(f"feature scan of the {label}", 0.5)
            if not scan.clusters:
                return result, grid, scan, extra, found
            new = []
            for u_lo, u_hi, _ in scan.clusters:
                for u in (u_lo, u_hi):
                    point = mpmath.mpf(grid.sign * u)
                    if point not in extra:
                        new.append(point)
            if round_ == MAX_ROUNDS or not new:
                raise ConvergenceError(
                    f"{self.what}: the {label} miss a feature of the loss or the diffusion near "
                    f"{_where(grid, scan.clusters)} that {round_ - 1} rounds of splitting there "
                    "did not resolve; give breakpoints=[...] around it, or raise max_panels"
                )
            found.append(
                VerificationCheck(
                    "feature scan",
                    "refined",
                    f"round {round_} on the {label}: their interpolant of the loss/diffusion "
                    f"missed a feature near {_where(grid, scan.clusters)} (effect on the result "
                    "estimated to first order); split there and computed again",
                )
            )
            extra += new
            self.total += 1.5  # one more computation and scan
            self.step(f"refinement round {round_} on the {label}")
            result, grid = self.compute(self.dps, [*base, *extra], rule_degree)
            self.step(f"feature scan of the {label}", 1.0)
        raise AssertionError("unreachable")


#: Work units of the checks: first computation, scan, shifted panels, their scan, 2·dps digits.
_VERIFY_WORK = 1.0 + 0.5 + 1.0 + 0.5 + 5.0


def _scan_check(scan: _Scan, grid: Discretisation, hints: int) -> VerificationCheck:
    return VerificationCheck(
        "feature scan",
        "passed",
        f"{scan.samples} float64 samples of the loss and the diffusion (spacing "
        f"{scan.spacing:.2g}, and between every two nodes of the {len(grid.bounds)} "
        f"panels"
        + (f", and around {hints} symbolic hints at their own scale" if hints else "")
        + ") agree with the panels' interpolants"
        + (
            f"; {scan.unchecked} samples not finite in float64, unchecked" if scan.unchecked else ""
        ),
    )


def _dense_check(scan: _Scan, result: Any, grid: Discretisation, what: str) -> VerificationCheck:
    """The dense float64 trapezoid value against the result (or why it is skipped)."""
    if scan.dense_log is None or scan.dense_tolerance > 1e-3:
        reason = (
            "float64 overflowed or gave no finite value on the samples"
            if scan.dense_log is None
            else f"the trapezoid rule's own error bound on the samples ({scan.dense_tolerance:.1e})"
            " is above 1e-3: too few samples (Python callables get 2¹⁴) for a quadrature"
        )
        return VerificationCheck("dense float64 quadrature", "skipped", reason)
    with mpmath.workdps(20):
        if grid.kind == "mfpt":
            mine = float(result.log_value)
            difference = abs(math.expm1(scan.dense_log - mine))
            shown = f"T = {mpmath.nstr(mpmath.exp(scan.dense_log), 8)}"
        else:
            mine = float(result.value)
            difference = abs(scan.dense_log - mine) / abs(mine) if mine else abs(scan.dense_log)
            shown = f"P = {scan.dense_log:.8g}"
    if not difference <= scan.dense_tolerance:
        raise ConvergenceError(
            f"{what}: a dense float64 trapezoid rule on {scan.samples} samples gives {shown}, "
            f"relative difference {difference:.2e} from the panels' result (tolerance "
            f"{scan.dense_tolerance:.1e}); a feature the scan cannot localise — give "
            "breakpoints=[...] where the loss or the diffusion changes fast"
        )
    return VerificationCheck(
        "dense float64 quadrature",
        "passed",
        f"trapezoid rule on the scan's samples: {shown}, relative difference "
        f"{difference:.1e} (tolerance {scan.dense_tolerance:.1e})",
    )


def verify_1d(
    compute: Compute,
    loss: Any,
    diffusion: Any,
    dps: int,
    degree: int | None,
    what: str,
) -> Any:
    """Run the four checks of the module docstring on ``compute(dps, extra_breakpoints,
    degree)``; return its result (refined if a feature was found) with ``verified_digits``
    (the smaller of the two mpmath agreements) and ``checks`` set."""
    current().update("first computation", 0.0, _VERIFY_WORK)
    first = compute(dps, [], degree)  # checks every input before anything else
    checker = _Checker(compute, loss, diffusion, dps, what)
    checker.step("feature scan of the panels", 1.0)
    result, grid, scan, extra, checks = checker.scanned([], degree, "panels", first)
    checks.append(_scan_check(scan, grid, len(checker.hints)))
    checks.append(_dense_check(scan, result, grid, what))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other_degree = grid.degree + 6
        checker.step("independent discretisation")
        other, other_grid, _, _, found = checker.scanned(
            _golden_points(grid), other_degree, "shifted panels"
        )
        checks += found
        digits_other = _agreement(result.value, other.value, dps)
        if not digits_other >= dps - 5:
            raise ConvergenceError(
                f"{what}: on other panels ({len(other_grid.bounds)} panels, degree "
                f"{other_degree}) the result agrees to only {digits_other:.1f} digits (fewer than "
                f"dps − 5 = {dps - 5})"
            )
        checks.append(
            VerificationCheck(
                "independent discretisation",
                "passed",
                f"again on {len(other_grid.bounds)} panels shifted to golden-ratio points, "
                f"degree {other_degree} instead of {grid.degree}: agrees to {digits_other:.1f} "
                "significant digits",
            )
        )
        high_dps = min(2 * dps, MAX_DPS)
        checker.step(f"precision: again at {high_dps} digits")
        high, _ = compute(high_dps, extra, degree)
        checker.step("done", 5.0)
    digits_high = _agreement(result.value, high.value, dps)
    if not digits_high >= dps - 5:
        raise ConvergenceError(
            f"{what}: the result at {dps} digits agrees with the one at {high_dps} digits to only "
            f"{digits_high:.1f} digits (fewer than dps − 5 = {dps - 5})"
        )
    checks.append(
        VerificationCheck(
            "precision",
            "passed",
            f"again at {high_dps} digits: agrees to {digits_high:.1f} significant digits",
        )
    )
    return dataclasses.replace(
        result, verified_digits=min(digits_other, digits_high), checks=tuple(checks)
    )
