"""Escape-rate points on the test landscapes, their typed results, and the per-point rows that
put the measured rate beside the theory's two predictions.

Theory enters twice: the asymptotic formula (theory layer → numerics ``escape_time``) and the
exact MFPT of the continuous SDE (``mfpt_1d``), so a disagreement can be placed: formula vs
exact is the asymptotic error, measured vs exact is the discrete chain and the statistics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, cast

from ._design import Design, point_seed
from ._dynamics import RateMeasurement
from ._registry import JSONValue, Point, Record, Result, SweepLabels, label, point_type

if TYPE_CHECKING:
    from ._landscapes import Landscape
    from ._predict import RatePrediction

__all__ = ["OccupationPoint", "OccupationResult", "RatePoint", "RateResult", "RateRow"]


@dataclass(frozen=True)
class RateResult(RateMeasurement, Result):
    """``measure_rate``'s measurement as a stored result, with the seconds it took."""

    seconds: float = 0.0


class _Walk(TypedDict):
    """The settings of a batched walk shared by ``measure_rate`` and ``measure_occupation``."""

    noise: str
    lr: float
    loss_scale: float
    batch_size: int | None
    diffusion: float | None
    replicas: int
    seed: int
    device: str


@dataclass(frozen=True, kw_only=True)
class _WalkPoint(Point):
    """A batched walk of ``replicas`` on a test landscape (``measure_rate``,
    ``measure_occupation``): the landscape and its options, the noise (``batch_size`` for SGD,
    ``diffusion`` for white noise), the step ``lr`` and the ``loss_scale``."""

    landscape: str
    noise: str
    lr: float
    loss_scale: float
    replicas: int
    landscape_options: Mapping[str, float | str] | None = None
    batch_size: int | None = None
    diffusion: float | None = None

    def walk(self) -> tuple[Landscape, _Walk]:
        """The point's landscape and the settings of its walk."""
        from ._landscapes import landscape

        land = landscape(self.landscape, **(self.landscape_options or {}))
        walk = {name: getattr(self, name) for name in _Walk.__annotations__}  # the same names
        walk["device"] = self.device or "cpu"
        return land, cast(_Walk, walk)


@point_type("rate", RateResult)
class RatePoint(_WalkPoint, SweepLabels):
    """Escape rate of replicas started at a landscape's minimum (``measure_rate``). The
    optional labels (`SweepLabels`' ``k``, ``B_over_eta``, ``which``, and the batch-size sweep's
    ``B`` and ``eta``) say where the point sits in its experiment's sweep."""

    target_escapes: int
    max_steps: int
    start: tuple[float, ...] | None = None
    B: int | None = label()
    eta: float | None = label()

    def run(self) -> RateResult:
        from ._dynamics import measure_rate

        land, walk = self.walk()
        measured = measure_rate(
            land,
            **walk,
            target_escapes=self.target_escapes,
            max_steps=self.max_steps,
            start=self.start,
        )
        result: RateResult = RateResult.from_dict(measured.to_dict())
        return result

    def predictions(self) -> tuple[RatePrediction, RatePrediction | None]:
        """(formula, exact) rates per iteration for this point (exact: None where unknown)."""
        from ._predict import predictions

        return predictions(self)


@dataclass
class RateRow(Record):
    """A measured rate beside the formula's and the exact MFPT's (a row of results.csv)."""

    point: RatePoint
    result: RateResult
    formula_rate: float
    quasi_potential: float
    exact_rate: float | None

    @classmethod
    def of(cls, point: RatePoint, result: RateResult) -> RateRow:
        formula, exact = point.predictions()
        return cls(
            point,
            result,
            formula_rate=formula.rate,
            quasi_potential=formula.quasi_potential,
            exact_rate=exact.rate if exact else None,
        )

    @property
    def measured_over_exact(self) -> float | None:
        return self.result.rate / self.exact_rate if self.exact_rate else None

    def to_dict(self) -> dict[str, JSONValue]:
        head = {k: v for k, v in self.point.to_dict().items() if k not in ("task", "device")}
        return {
            **head,
            **self.result.to_dict(),
            "formula_rate": self.formula_rate,
            "quasi_potential": self.quasi_potential,
            "exact_rate": self.exact_rate,
            "measured_over_exact": self.measured_over_exact,
        }


def rate_rows(points: list[RatePoint], results: list[RateResult]) -> list[RateRow]:
    return [RateRow.of(p, r) for p, r in zip(points, results, strict=True)]


def rate_point(
    experiment: str,
    land_name: str,
    noise: str,
    design: Design,
    *,
    lr: float,
    target: int,
    device: str,
    label: Mapping[str, float | int | str],
    batch_size: int | None = None,
    diffusion: float | None = None,
    options: Mapping[str, float | str] | None = None,
    steps_goal: int = 6000,
) -> RatePoint:
    """A rate point, with replicas sized from the formula's rate so a run takes ~steps_goal."""
    sgd = noise == "sgd"
    probe = RatePoint(
        landscape=land_name,
        noise=noise,
        lr=float(lr),
        loss_scale=float(design.loss_scale),
        replicas=0,
        target_escapes=target,
        max_steps=0,
        seed=0,
        experiment=experiment,
        landscape_options=options or None,
        batch_size=(batch_size if batch_size is not None else design.batch_size) if sgd else None,
        diffusion=None if sgd else (diffusion if diffusion is not None else design.diffusion),
        device=device,
        **label,  # type: ignore[arg-type]
    )
    rate = probe.predictions()[0].rate
    replicas = int(
        min(16384, max(256, 2 ** math.ceil(math.log2(max(target / (rate * steps_goal), 1)))))
    )
    from dataclasses import replace

    return replace(
        probe,
        replicas=replicas,
        max_steps=int(20 * target / (rate * replicas)) + 1000,
        seed=point_seed(
            experiment, land_name, noise, *(f"{k}={v}" for k, v in sorted(label.items())), options
        ),
    )


@dataclass
class OccupationResult(Result):
    """How many replicas are in their start valley after ``steps`` iterations."""

    in_start_valley: int
    replicas: int
    steps: int
    fraction: float
    seconds: float = 0.0


@point_type("occupation", OccupationResult)
class OccupationPoint(_WalkPoint, SweepLabels):
    """Replicas started half in each valley, run long: the fraction in the start valley
    (``measure_occupation``); the selection sweep labels it with its ``B_over_eta``."""

    steps: int

    def run(self) -> OccupationResult:
        from ._dynamics import measure_occupation

        land, walk = self.walk()
        m = measure_occupation(land, **walk, steps=self.steps)
        return OccupationResult(m.in_start_valley, m.replicas, m.steps, m.fraction)
