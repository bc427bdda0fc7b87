"""Escape engine, stopping-event piece: which rows of a batch have escaped.

Each event is a callable batch (n, dim) → boolean (n,), True where a path is past it:

- `Plane`: (x − point)·n̂ > margin (the half-space beyond a saddle);
- `LevelSet`: f(x) > level, for any batch function f;
- `LossJump`: L(x) − L_ref > δ (a loss rising δ above the minimum's);
- `Distance`: ‖x − centre‖ > radius;
- `Custom`: a user's callable.

With ``guard=True`` an event raises `NonFinitePaths` when a path is NaN or ±inf (the loop turns
it into a `DivergenceError` naming the step): a non-finite path has no escape time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from flatminima.errors import DivergenceError

from ._engine_backend import to_numpy

__all__ = ["Custom", "Distance", "LevelSet", "LossJump", "NonFinitePaths", "Plane", "diverged"]


class NonFinitePaths(Exception):
    """Raised by a guarded event when a path is NaN or ±inf; carries the batch."""

    def __init__(self, x: Any) -> None:
        super().__init__("non-finite paths")
        self.x = x


def _all_finite(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return bool(np.isfinite(x).all())
    import torch

    return bool(torch.isfinite(x).all())


def _finite(value: Any, x: Any) -> bool:
    """``value`` (a reduction of the batch x, per row) is finite, or else every entry of x is:
    a NaN or ±inf coordinate makes the value NaN or ±inf, and an overflow of finite
    coordinates is a value, not a diverged path."""
    if isinstance(value, np.ndarray):
        return bool(np.isfinite(value.sum())) or _all_finite(x)
    import torch

    return bool(torch.isfinite(value).all()) or _all_finite(x)


class Plane:
    """(x − point)·normal > margin, normal of unit length (given as arrays of the backend)."""

    def __init__(self, point: Any, normal: Any, margin: float, *, guard: bool = False) -> None:
        self.point, self.normal, self.margin, self.guard = point, normal, margin, guard

    def __call__(self, x: Any) -> Any:
        projection = (x - self.point) @ self.normal
        # a NaN or ±inf coordinate makes the projection NaN or ±inf (inf·0 is NaN)
        if self.guard and not _finite(projection, x):
            raise NonFinitePaths(x)
        return projection > self.margin


class LevelSet:
    """f(x) > level: ``function`` maps a batch to (n,) values."""

    def __init__(self, function: Callable[[Any], Any], level: float, *, guard: bool = False):
        self.function, self.level, self.guard = function, level, guard

    def __call__(self, x: Any) -> Any:
        if self.guard and not _all_finite(x):
            raise NonFinitePaths(x)
        return self.function(x) > self.level


class LossJump:
    """loss(x) − reference > delta: the loss rose more than δ above the reference (minimum).

    With ``screen`` (a cheap estimate of the loss on a batch, for example in lower precision)
    and ``band`` (a bound on |screen − loss|), the exact loss is computed only for the rows
    whose screened value reaches the threshold less the band; the other rows are below the
    threshold whatever the rounding, so the event is the exact check on every row as long as
    the screen is within its band. ``loss`` must accept any subset of rows (torch tensors);
    ``exact_rows`` counts the rows evaluated exactly.
    """

    def __init__(
        self,
        loss: Callable[[Any], Any],
        reference: float,
        delta: float,
        *,
        guard: bool = False,
        screen: Callable[[Any], Any] | None = None,
        band: float = 0.0,
    ) -> None:
        self.loss, self.reference, self.delta, self.guard = loss, reference, delta, guard
        self.screen, self.band = screen, band
        self.exact_rows = 0

    def __call__(self, x: Any) -> Any:
        if self.guard and not _all_finite(x):
            raise NonFinitePaths(x)
        if self.screen is None:
            self.exact_rows += x.shape[0]
            return self.loss(x) - self.reference > self.delta
        estimate = self.screen(x)
        rows = (estimate - self.reference > self.delta - self.band).nonzero().flatten()
        mask = estimate.new_zeros(estimate.shape, dtype=bool)
        if rows.numel():
            mask[rows] = self.loss(x[rows]) - self.reference > self.delta
            self.exact_rows += int(rows.numel())
        return mask


class Distance:
    """‖x − centre‖₂ > radius."""

    def __init__(self, centre: Any, radius: float, *, guard: bool = False) -> None:
        self.centre, self.radius, self.guard = centre, radius, guard

    def __call__(self, x: Any) -> Any:
        d = x - self.centre
        squared = (d * d).sum(1)
        if self.guard and not _finite(squared, x):
            raise NonFinitePaths(x)
        return squared > self.radius * self.radius


class Custom:
    """A user's callable batch → boolean (n,)."""

    def __init__(self, escaped: Callable[[Any], Any], *, guard: bool = False) -> None:
        self.escaped, self.guard = escaped, guard

    def __call__(self, x: Any) -> Any:
        if self.guard and not _all_finite(x):
            raise NonFinitePaths(x)
        return self.escaped(x)


def diverged(x: Any, k: int, step: float, where: str = "before the escape check") -> None:
    """Raise the `DivergenceError` for non-finite paths at step k."""
    points = to_numpy(x)
    bad = ~np.all(np.isfinite(points), axis=1)
    raise DivergenceError(
        "step",
        "paths that stay finite (a smaller step, a finite gradient and diffusion)",
        f"{int(bad.sum())} of {points.shape[0]} paths non-finite {where} at step {k} "
        f"(time {k * step:g})",
        "a path reached NaN or ±inf: the step is too large for the loss's curvature there, or "
        "grad or diffusion returned NaN/inf; no escape time is reported from such paths",
    )
