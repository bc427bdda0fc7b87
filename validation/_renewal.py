"""An escape rate measured by renewal: the escape engine's ``run_escape`` with a `Renewal`
estimator after a burn-in, and the rate's exact Poisson interval. Shared by the landscape
measurement (``measure_rate``) and the network one (``measure_network_rate``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flatminima.numerics._engine import (
    DiscreteSGD,
    EscapeCounts,
    EulerMaruyama,
    RateEstimate,
    Renewal,
    rate_estimate,
    run_escape,
)

__all__ = ["renewal_rate"]


def renewal_rate(
    stepper: DiscreteSGD | EulerMaruyama,
    event: Callable[[Any], Any],
    x: Any,
    *,
    restart: Any,
    burn_in: int,
    target: int,
    max_steps: int,
    check_every: int = 1,
) -> tuple[RateEstimate, EscapeCounts]:
    """Run the replicas ``x`` (one row each) by ``stepper`` (on its ``ops``) until ``event``; a
    replica that escapes restarts at ``restart``. Escapes and exposure (replica-iterations at
    risk) are counted after ``burn_in`` iterations, for ``max_steps`` more or until ``target``
    escapes; ``event`` is checked every ``check_every`` iterations.

    Returns
    -------
    tuple[RateEstimate, EscapeCounts]
        The rate per iteration, escapes / exposure, with its exact (Garwood) 95 % Poisson
        interval, and the engine's counts (``steps``, ``stopped``). No exposure (a horizon no
        longer than the burn-in) raises a ``ParameterError`` naming ``max_steps``.
    """
    estimator = Renewal(stepper.ops, len(x), restart, 1.0, burn_in=burn_in, target=target)
    counts = run_escape(
        x, stepper.step, event, estimator, max_steps=max_steps + burn_in, check_every=check_every
    )
    return rate_estimate(counts.escapes, counts.exposure, 0.95, horizon="max_steps"), counts
