"""Escape engine, estimator piece: what is counted when paths escape, and what is reported.

- `FirstPassage`: a path stops at its first escape (its row is removed: it costs no more
  work); its time is k·unit. Paths still inside at the horizon are *censored*: their time
  inside counts as exposure, never as an escape time.
- `Renewal`: an escaped path is counted and restarted at ``restart``; escapes and exposure
  are counted only after ``burn_in`` steps (paths started together at the minimum must first
  relax into the valley, else the rate is biased low by about relaxation time / run length);
  the run may stop at ``target`` escapes. Rate = escapes / (paths × steps after burn-in); its
  inverse is the mean first-passage time from the restart point (renewal theorem).

Both give a `RateEstimate`: escapes per unit exposure with the exact Poisson (Garwood)
interval, exact for exponential waiting times. Zero escapes and zero exposure (one treatment
for every caller):

- zero escapes in a positive exposure: rate 0, interval (0, upper), mean time ∞ with interval
  (1/upper, ∞) — an upper bound on the rate, never a number that looks measured;
- zero exposure (no step at risk: a horizon not longer than the burn-in): no estimate exists,
  `ParameterError` naming the horizon parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from flatminima.errors import ParameterError

from ._engine_backend import Ops

__all__ = [
    "EscapeCounts",
    "FirstPassage",
    "RateEstimate",
    "Renewal",
    "mean_escape_time",
    "poisson_rate_interval",
    "rate_estimate",
]


def poisson_rate_interval(count: int, exposure: float, confidence: float) -> tuple[float, float]:
    """Exact (Garwood) interval of a Poisson rate: count events in ``exposure`` time."""
    from scipy import special  # lazy: scipy.special costs ~0.4 s of import

    tail = (1 - confidence) / 2
    lower = 0.0 if count == 0 else 2 * special.gammaincinv(count, tail) / (2 * exposure)
    upper = 2 * special.gammaincinv(count + 1, 1 - tail) / (2 * exposure)
    return float(lower), float(upper)


@dataclass(frozen=True)
class RateEstimate:
    """``escapes`` in ``exposure`` (time or iterations at risk): rate and its exact interval."""

    escapes: int
    exposure: float
    rate: float
    rate_low: float
    rate_high: float

    @property
    def log_rate(self) -> float:
        return math.log(self.rate) if self.rate > 0 else -math.inf


def rate_estimate(
    escapes: int, exposure: float, confidence: float = 0.95, horizon: str = "max_steps"
) -> RateEstimate:
    """The rate escapes/exposure with its Garwood interval; zero exposure raises naming
    ``horizon`` (see the module docstring)."""
    if not exposure > 0:
        raise ParameterError(
            horizon,
            "a horizon with steps at risk (longer than the burn-in)",
            f"an exposure of {exposure:g}",
        )
    low, high = poisson_rate_interval(escapes, exposure, confidence)
    return RateEstimate(escapes, exposure, escapes / exposure, low, high)


@dataclass(frozen=True)
class EscapeCounts:
    """What a run counted: ``escapes`` in ``exposure``; ``times`` (first passage: each
    escaped path's time), ``censored`` paths, the ``steps`` run, the final batch ``x`` and why
    the run stopped (``"max_steps"``, ``"escapes"`` or ``"all escaped"``)."""

    escapes: int
    exposure: float
    censored: int
    times: np.ndarray
    steps: int
    x: Any
    stopped: str


class FirstPassage:
    """First-passage times with censoring (see the module docstring)."""

    restart = False

    def __init__(self, ops: Ops, n_paths: int, unit: float) -> None:
        self.ops, self.unit = ops, unit
        self.ids = np.arange(n_paths)  # which original path each active row is
        self.steps_done = np.zeros(n_paths, dtype=np.int64)
        self.times: list[float] = []
        self.escapes = 0

    def hit(self, x: Any, mask: Any, k: int) -> tuple[Any, bool]:
        hit = self.ops.nonzero(mask)
        if not hit.size:
            return x, False
        self.escapes += hit.size
        self.times.extend(k * self.unit for _ in range(hit.size))
        self.steps_done[self.ids[hit]] = k
        keep = np.ones(x.shape[0], dtype=bool)
        keep[hit] = False
        self.ids = self.ids[keep]
        x = self.ops.keep_rows(x, keep)
        return x, x.shape[0] == 0

    def finish(self, x: Any, last: int) -> EscapeCounts:
        self.steps_done[self.ids] = last
        return EscapeCounts(
            escapes=self.escapes,
            exposure=float(self.steps_done.sum()) * self.unit,
            censored=int(self.ids.size),
            times=np.asarray(self.times),
            steps=last,
            x=x,
            stopped="max_steps" if self.ids.size else "all escaped",
        )


class Renewal:
    """Renewal counting with burn-in and an optional target (see the module docstring)."""

    restart = True

    def __init__(
        self,
        ops: Ops,
        n_paths: int,
        restart: Any,
        unit: float,
        burn_in: int = 0,
        target: int | None = None,
    ) -> None:
        self.ops, self.n_paths, self.point, self.unit = ops, n_paths, restart, unit
        self.burn_in, self.target = burn_in, target
        self.escapes = 0
        self.stopped = "max_steps"

    def hit(self, x: Any, mask: Any, k: int) -> tuple[Any, bool]:
        count = self.ops.count(mask)
        if not count:
            return x, False
        if k > self.burn_in:
            self.escapes += count
        x[mask] = self.point
        if self.target is not None and self.escapes >= self.target:
            self.stopped = "escapes"
            return x, True
        return x, False

    def finish(self, x: Any, last: int) -> EscapeCounts:
        return EscapeCounts(
            escapes=self.escapes,
            exposure=float(self.n_paths * max(last - self.burn_in, 0)) * self.unit,
            censored=0,
            times=np.empty(0),
            steps=last,
            x=x,
            stopped=self.stopped,
        )


def mean_escape_time(
    counts: EscapeCounts, rate: RateEstimate, confidence: float, restart: bool
) -> tuple[float, tuple[float, float], str]:
    """Mean first-passage time, its interval and how it was estimated: the sample mean with a
    normal interval when every path escaped (first passage, more than one path), otherwise
    1/rate with the inverted rate interval (exponential waiting times; renewal theorem)."""
    times = counts.times
    if not restart and counts.censored == 0 and times.size > 1:
        from scipy import special

        z = float(special.ndtri(0.5 + confidence / 2))
        mean = float(times.mean())
        half = z * float(times.std(ddof=1)) / math.sqrt(times.size)
        return (
            mean,
            (mean - half, mean + half),
            "sample mean of the escape times (nothing censored), normal interval",
        )
    mean = 1 / rate.rate if rate.rate > 0 else math.inf
    interval = (1 / rate.rate_high, 1 / rate.rate_low if rate.rate_low > 0 else math.inf)
    how = "1/rate, rate = escapes / time at risk" + (
        " (renewal with restart)"
        if restart
        else f" ({counts.censored} censored paths; exponential waiting times assumed)"
    )
    return mean, interval, how
