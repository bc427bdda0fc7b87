"""The budget of estimated work per call, shared by the theory and numerics layers.

A request whose estimated cost is beyond the budget is a
[`BudgetError`][flatminima.errors.BudgetError] before any work starts (the message gives the
estimate and the parameter driving it); ``flatminima.numerics.work_budget`` raises it.

Derivation cost (measured, CPU seconds on a 2-core machine): several saddles 1.4 s at 40
saddles, growing about quadratically; dimension 13 s at 400 and 35 s at 1000, about
``0.035 s · dim``.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from flatminima.errors import BudgetError

__all__ = ["BUDGET", "BUDGET_SECONDS", "check_derivation_budget", "check_dimension_budget"]

#: Default budget of estimated work per call (seconds).
BUDGET_SECONDS = 600.0
BUDGET: ContextVar[float] = ContextVar("flatminima_budget", default=BUDGET_SECONDS)


def _over(name: str, value: Any, estimate: float, how: str) -> None:
    budget = BUDGET.get()
    if estimate > budget:
        raise BudgetError(
            name,
            f"a request within the work budget of {budget:g} s",
            value,
            f"estimated ≥ {estimate:.3g} s ({how}, measured); lower it, or raise the budget "
            "with flatminima.numerics.work_budget(seconds=...)",
        )


def check_derivation_budget(dim: Any, saddles: int) -> float:
    """Refuse a derivation whose estimated time is beyond the budget; return the estimate."""
    count = min(saddles, 10**12)  # the estimate only needs to be large, not exact
    estimate = 1.4 * (count / 40) ** 2
    _over("saddles", saddles, estimate, "≈ 1.4 s·(saddles/40)²")
    if isinstance(dim, int):
        per_dim = 0.035 * min(dim, 10**12) * count
        _over("dim", dim, per_dim, "≈ 0.035 s·dim per saddle")
        estimate += per_dim
    return estimate


def check_dimension_budget(dim: int) -> None:
    """Refuse a dimension whose derivation alone is beyond the budget (``parse_dim`` calls it,
    so every derivation and combination does)."""
    _over("dim", dim, 0.035 * min(dim, 10**12), "≈ 0.035 s·dim")
