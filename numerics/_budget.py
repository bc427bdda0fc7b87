"""Budgets instead of hangs: the cost of a request estimated before any work.

The exact references can be asked for more than a lifetime of work (``dps=2000``,
``degree=10**9``, a diffusion of 10⁻³⁰⁸ that makes the integrand a spike of width 10⁻¹⁵⁴, a
start at 10³⁰⁰). Each public function calls a check here first; beyond the budget it is a
[`BudgetError`][flatminima.errors.BudgetError] that gives the estimate, the parameter that
drives it and how to proceed. The budget is ``BUDGET_SECONDS`` of estimated work unless
raised with `flatminima.numerics.work_budget`.

The time model of ``mfpt_1d`` was measured (CPU time on the double well x⁴/4 − x²/2, D = 1/10,
default degree = dps, 2-core machine, 2026-12-02): 0.82 s at 100 digits, 2.7 s at 200, 6.5 s
at 300, 184 s at 1000. The cost grows like dps^1.7 up to ~300 digits and faster beyond (the
big-number products), so the model is
``0.8 s · (degree/100) · (dps/100)^0.7 · max(1, dps/300)``: 0.8, 2.6, 5.2 and 133 s at those
four precisions, below every measurement. Harder landscapes take more panels; the estimate is
a floor, so a request refused is certainly too long (2000 digits: ≥ 870 s).
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterable, Iterator
from typing import Any

import mpmath
import sympy as sp

from flatminima.errors import BudgetError, ParameterError
from flatminima.theory._budget import BUDGET, BUDGET_SECONDS

from ._checks import real

__all__ = ["BUDGET_SECONDS", "check_mfpt_request", "work_budget"]

#: Largest Chebyshev degree per panel (a degree of 10⁹ is 10⁹ evaluations per panel).
MAX_DEGREE = 1024
#: Largest |coordinate| of start/end/boundaries: the panels resolve the landscape down to the
#: noise width from there, ~log2(range/width) levels of bisection.
MAX_COORDINATE = 1e12
#: Largest ΔL/D the 1-D quadrature is budgeted for (10⁸ takes seconds; the panels must resolve
#: a peak of relative width √(D/ΔL)).
MAX_BARRIER_RATIO = 1e12
#: Measured CPU seconds of mfpt_1d at 100 digits, degree 100 (see the module docstring).
_SECONDS_AT_100 = 0.8

_BUDGET = BUDGET  # one budget for both layers (flatminima.theory._budget)


@contextlib.contextmanager
def work_budget(seconds: float) -> Iterator[None]:
    """Raise (or lower) the budget of estimated work per call inside a ``with`` block.

    Parameters
    ----------
    seconds
        Estimated seconds of work a single call may take (default ``BUDGET_SECONDS`` = 600).

    Examples
    --------
    >>> import sympy as sp
    >>> from flatminima.numerics import mfpt_1d, work_budget
    >>> x = sp.Symbol("x")
    >>> with work_budget(seconds=1e-3):
    ...     mfpt_1d(x**4/4 - x**2/2, sp.Rational(1, 10), start=-1, end=1, dps=30)
    Traceback (most recent call last):
    ...
    flatminima.errors.BudgetError: dps: expected ...
    """
    value = float(real("seconds", seconds))
    if value <= 0:
        raise ParameterError("seconds", "a positive number of seconds", seconds)
    token = _BUDGET.set(value)
    try:
        yield
    finally:
        _BUDGET.reset(token)


def budget_seconds() -> float:
    return _BUDGET.get()


def estimated_mfpt_seconds(dps: int, degree: int) -> float:
    """Floor of mfpt_1d's CPU time: ``0.8 s · (degree/100) · (dps/100)^0.7 · max(1, dps/300)``
    (measured: see the module docstring)."""
    return _SECONDS_AT_100 * (degree / 100) * (dps / 100) ** 0.7 * max(1.0, dps / 300)


def check_mfpt_request(
    loss: Any,
    diffusion: Any,
    points: dict[str, Any],
    dps: int,
    degree: Any,
    breakpoints: Any,
) -> None:
    """Checks before ``mfpt_1d`` / ``splitting_probability`` start: the budget (dps, degree,
    range, ΔL/D), the breakpoints' type, and a loss that is real, differentiable by SymPy and
    evaluated at the working precision. Errors name the parameter responsible."""
    if (
        breakpoints is None
        or isinstance(breakpoints, str | bytes)
        or not isinstance(breakpoints, Iterable)
        or getattr(breakpoints, "ndim", 1) == 0  # a 0-d array is not iterable
    ):
        raise ParameterError(
            "breakpoints", "an iterable of points, e.g. () or ['0.5']", breakpoints
        )
    if (
        isinstance(degree, numbers.Integral)
        and not isinstance(degree, bool)
        and int(degree) > MAX_DEGREE
    ):
        raise BudgetError(
            "degree",
            f"a Chebyshev degree ≤ {MAX_DEGREE}",
            degree,
            f"{degree} evaluations per panel; leave degree=None (about dps) or lower it",
        )
    chosen = degree if isinstance(degree, int) and not isinstance(degree, bool) else None
    effective = chosen if chosen is not None else max(32, 2 * ((dps + 1) // 2))
    estimate = estimated_mfpt_seconds(dps, effective)
    if estimate > budget_seconds():
        name = "degree" if chosen is not None and chosen > max(32, dps + 1) else "dps"
        raise BudgetError(
            name,
            f"a request within the work budget of {budget_seconds():g} s",
            dps if name == "dps" else degree,
            f"estimated ≥ {estimate:.3g} s at dps={dps}, degree={effective} (≈ 0.8 s·(degree/100)"
            "·(dps/100)^0.7·max(1, dps/300), measured); lower it, or raise the budget with "
            "flatminima.numerics.work_budget(seconds=...)",
        )
    with mpmath.workdps(20):
        finite = {
            name: real(name, value)
            for name, value in points.items()
            if value is not None and not _infinite(value)
        }
        for name, value in finite.items():
            if abs(value) > MAX_COORDINATE:
                raise BudgetError(
                    name,
                    f"|{name}| ≤ {MAX_COORDINATE:g}",
                    points[name],
                    "the panels resolve the landscape from the start to the noise width, "
                    f"~log2({mpmath.nstr(abs(value), 3)}/width) bisections; shift the "
                    "coordinate (x → x − c) so that the points are of order one",
                )
        _check_loss(loss, diffusion, list(finite.values()))


def _samples(points: list[mpmath.mpf], count: int = 9) -> list[mpmath.mpf]:
    lo, hi = min(points), max(points)
    if hi == lo:
        return [lo]
    return [lo + (hi - lo) * k / (count - 1) for k in range(count)]


def _check_loss(loss: Any, diffusion: Any, points: list[mpmath.mpf]) -> None:
    """The loss at 9 points between the given ones: real, differentiable by SymPy, not a
    float64 callable; then ΔL/D within the budget and a diffusion the loss can confine."""
    if not points:
        return
    samples = _samples(points)
    if isinstance(loss, sp.Basic):
        values = _symbolic_values(loss, samples)
    elif callable(loss):
        _check_callable_loss(loss, samples[0])
        return
    else:
        return
    if not values or not _is_number(diffusion):
        return
    d = real("diffusion", diffusion)
    if d <= 0:
        return  # mfpt_1d names it
    _check_barrier_ratio(values, d, diffusion)
    _check_confining(loss, values[0], d, diffusion, max(abs(p) for p in points) + 10**9)


def _symbolic_values(loss: sp.Basic, samples: list[mpmath.mpf]) -> list[mpmath.mpf]:
    """The loss at ``samples`` (empty when it is not a function of one symbol: mfpt_1d's own
    check names that); errors name ``loss``."""
    symbols = sorted(loss.free_symbols, key=str)
    if len(symbols) != 1:
        return []
    x = symbols[0]
    if sp.diff(loss, x).has(sp.Derivative):
        raise ParameterError(
            "loss",
            "an expression SymPy can differentiate (for Abs or sign declare the symbol "
            "real: Symbol('x', real=True); or write it as a Piecewise)",
            loss,
        )
    function = sp.lambdify(x, loss, "mpmath")
    values = []
    for point in samples:
        try:
            value = function(point)
        except (ValueError, ZeroDivisionError, TypeError, OverflowError):
            raise ParameterError(
                "loss", "a loss defined between the points", f"{loss} at x = {point}"
            ) from None
        if isinstance(value, mpmath.mpc) and value.imag != 0:
            raise ParameterError(
                "loss",
                "a loss real between the points",
                f"{loss} = {mpmath.nstr(value, 5)} at x = {mpmath.nstr(point, 5)}",
            )
        values.append(mpmath.re(value))
    return values


def _check_callable_loss(loss: Any, point: mpmath.mpf) -> None:
    try:
        value = loss(point)
    except Exception:  # the user's function: mfpt_1d reports its own failure
        return
    if isinstance(value, float) or type(value).__module__ == "numpy":
        raise ParameterError(
            "loss",
            "a callable returning mpmath numbers (mpf → mpf, e.g. with mpmath functions) "
            "or a SymPy expression",
            f"a {type(value).__name__}",
            "a float64 loss is noise at the 16th digit: the panels cannot meet the "
            "dps-digit tolerance and refine without end",
        )


def _check_barrier_ratio(values: list[mpmath.mpf], d: mpmath.mpf, diffusion: Any) -> None:
    rise = max(abs(v - values[0]) for v in values)
    if rise / d > MAX_BARRIER_RATIO:
        raise BudgetError(
            "diffusion",
            f"a diffusion with ΔL/D ≤ {MAX_BARRIER_RATIO:g} between the points",
            diffusion,
            f"the loss varies by {mpmath.nstr(rise, 3)} there, ΔL/D ≈ "
            f"{mpmath.nstr(rise / d, 3)}: the integrand is a peak of relative width "
            f"{mpmath.nstr(mpmath.sqrt(d / rise), 3)}; use the asymptotic "
            "flatminima.numerics.escape_time at such barriers",
        )


def _check_confining(
    loss: sp.Basic, base: mpmath.mpf, d: mpmath.mpf, diffusion: Any, far: mpmath.mpf
) -> None:
    """A diffusion so large that the loss cannot confine the walk within ``far`` (mfpt_1d's
    search for a reflecting boundary) is the diffusion's fault, not the loss's."""
    x = next(iter(loss.free_symbols))
    try:
        with mpmath.workdps(20):
            edge = [mpmath.re(mpmath.mpf(sp.N(loss.subs(x, s), 20))) for s in (-far, far)]
    except (TypeError, ValueError):
        return
    grows = min(e - base for e in edge)
    if grows > 0 and grows / d < 1:
        raise ParameterError(
            "diffusion",
            "a diffusion small against the rise of the loss (it confines within 1e9 of the "
            "points only if ΔL/D > 1)",
            diffusion,
            f"the loss rises by {mpmath.nstr(grows, 3)} out to |x| = 1e9, "
            f"{mpmath.nstr(grows / d, 3)} × D",
        )


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, sp.Basic):
        return bool(value.is_number)
    return isinstance(value, numbers.Number | str | mpmath.mpf)


def _infinite(value: Any) -> bool:
    """±inf, the default of a reflecting boundary (any other bad value is real()'s to name)."""
    try:
        return isinstance(value, float | mpmath.mpf) and mpmath.isinf(value)
    except TypeError:
        return False


#: Measured CPU seconds of escape_time on float64 n×n Hessians at n = 1000, 30 digits (the
#: eigen-decomposition refined at the working precision dominates; ~n^2.5 between 400 and 3000).
_ESCAPE_SECONDS_AT_1000 = 33.0


def estimated_escape_seconds(hess_min: Any) -> float:
    """Floor of escape_time's time from the Hessian's size (0 when the size is not known yet:
    the argument checks that follow name a bad matrix)."""
    try:
        size = int(hess_min.rows) if isinstance(hess_min, mpmath.matrix) else len(hess_min)
    except (TypeError, ValueError, AttributeError):
        return 0.0
    return _ESCAPE_SECONDS_AT_1000 * (min(size, 10**6) / 1000) ** 2.5
