"""Self-verification of mpmath results: evaluate again at twice the precision and compare.

The guarantee (docs/numerics.md): a result returned with ``verify=True`` agrees with the same
computation at 2·dps digits to at least dps − 5 significant digits (``verified_digits`` says how
many); otherwise [`ConvergenceError`][flatminima.errors.ConvergenceError] is raised, never a silently wrong
number.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import TypeVar

import mpmath

from flatminima.errors import ConvergenceError

from ._checks import MAX_DPS

__all__ = ["verified"]

R = TypeVar("R")


def verified(
    compute: Callable[[int], R],
    dps: int,
    value: Callable[[R], mpmath.mpf],
    what: str,
    *,
    log: bool = False,
) -> R:
    """``compute(dps)`` checked against ``compute(2·dps)``; returns the first with
    ``verified_digits`` set.

    With ``log=True``, ``value`` returns a logarithm (log τ, log T) and the digits counted are
    those of the exponentiated value: its relative difference is ``expm1(|Δ log|)``, so a log T
    of 10⁴ does not earn four digits for free."""
    first = compute(dps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the check repeats the first call's warnings
        second = compute(min(2 * dps, MAX_DPS))
    with mpmath.workdps(2 * dps):
        a, b = value(first), value(second)
        if log:
            difference = abs(mpmath.expm1(abs(a - b)))
            digits = (
                float(dps) if difference == 0 else min(float(dps), -float(mpmath.log10(difference)))
            )
        elif b == 0:
            digits = float(dps) if a == 0 else 0.0
        else:
            difference = abs(a - b) / abs(b)
            digits = (
                float(dps) if difference == 0 else min(float(dps), -float(mpmath.log10(difference)))
            )
    if not math.isfinite(digits) or digits < dps - 5:
        raise ConvergenceError(
            f"{what}: the result at {dps} digits agrees with the one at {2 * dps} digits to only "
            f"{digits:.1f} digits (fewer than dps − 5 = {dps - 5})"
        )
    return dataclasses.replace(first, verified_digits=digits)  # type: ignore[type-var]
