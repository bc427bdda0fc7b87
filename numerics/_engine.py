"""The escape engine: one Monte Carlo loop for every escape measurement in flatminima.

Four small pieces, composed by `run_escape`:

- problem (`_engine_problem`): `SDEProblem` (∇L, D, interpretation) or `MinibatchProblem`;
- stepper (`_engine_step`): `EulerMaruyama` or `DiscreteSGD`, numpy or torch (`Ops`), batched
  over paths;
- stopping event (`_engine_events`): `Plane`, `LevelSet`, `LossJump`, `Distance`, `Custom`;
- estimator (`_engine_estimate`): `FirstPassage` (censoring) or `Renewal` (burn-in, target),
  then `rate_estimate` (exact Poisson interval; one treatment of zero escapes / zero exposure)
  and `mean_escape_time`.

`simulate_escape` (numerics), `measure_rate` (validation, test landscapes) and the network
escape measurement (validation) are thin uses of it. Torch is imported only by the torch
backend, so ``import flatminima.numerics`` stays torch-free.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ._engine_backend import Ops, to_numpy
from ._engine_estimate import (
    EscapeCounts,
    FirstPassage,
    RateEstimate,
    Renewal,
    mean_escape_time,
    poisson_rate_interval,
    rate_estimate,
)
from ._engine_events import Custom, Distance, LevelSet, LossJump, NonFinitePaths, Plane, diverged
from ._engine_problem import MinibatchProblem, SDEProblem
from ._engine_step import DiscreteSGD, EulerMaruyama

__all__ = [
    "Custom",
    "DiscreteSGD",
    "Distance",
    "EscapeCounts",
    "EulerMaruyama",
    "FirstPassage",
    "LevelSet",
    "LossJump",
    "MinibatchProblem",
    "Ops",
    "Plane",
    "RateEstimate",
    "Renewal",
    "SDEProblem",
    "mean_escape_time",
    "poisson_rate_interval",
    "rate_estimate",
    "run_escape",
    "to_numpy",
]


class Estimator(Protocol):
    escapes: int

    def hit(self, x: Any, mask: Any, k: int) -> tuple[Any, bool]: ...

    def finish(self, x: Any, last: int) -> EscapeCounts: ...


def run_escape(
    x: Any,
    step: Callable[[Any], Any],
    event: Callable[[Any], Any],
    estimator: Estimator,
    *,
    max_steps: int,
    check_every: int = 1,
    unit: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
) -> EscapeCounts:
    """Run ``step`` on the batch ``x`` up to ``max_steps`` times; after every
    ``check_every``-th step and after the last one, rows where ``event`` is True go to the
    ``estimator`` (which removes or restarts them, and may stop the run). Escape times are
    those of the check (k·unit), so with ``check_every`` > 1 they are rounded up to a check.

    A guarded event that sees a non-finite path raises `DivergenceError` naming the step.
    ``progress(k, escapes)`` is called after each step with an escape.
    """
    k = 0
    for k in range(1, max_steps + 1):
        x = step(x)
        if k % check_every and k != max_steps:
            continue
        try:
            mask = event(x)
        except NonFinitePaths as bad:
            diverged(bad.x, k, unit)
        if not bool(mask.any()):
            continue
        x, stop = estimator.hit(x, mask, k)
        if stop:
            break
        if progress is not None:
            progress(k, estimator.escapes)
    return estimator.finish(x, k)
