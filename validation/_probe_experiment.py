"""The probe as a registered experiment (``flatminima validate probe``).

A point probes a shipped small model at its minimum with ``probe(..., measure=True)`` and
stores the numbers a user would read: the curvature, the noise against H/B (with the
off-diagonal fraction), the predicted rates (κH saddle formula, per-direction exact level
passage with C_ii, the k-D level passage with the full C and with diag(C)) and the measured
escape rate of real minibatch SGD with its Poisson interval. The case holds when both
measured-noise level passages (1-D exact and full-C k-D) lie within a factor 2 of the measured
95% interval (``EscapeMeasurement.agrees``): the criterion is a loss level, and those are the
predictions made for a level.

The model: least-squares linear regression on two correlated inputs (400 samples, 2
parameters; the noise changes away from the minimum), the example of docs/probe.md. At η = 0.1
and 0.05 with ΔL/η fixed the exponent is the same (≈ 4.8); the discrete-time deficit shrinks
with η.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._registry import (
    Analysis,
    Case,
    Experiment,
    JSONRecord,
    Point,
    Result,
    Row,
    point_type,
    register,
)

__all__ = ["PROBE", "ProbeCase", "ProbeExperiment", "ProbePoint", "ProbePointResult"]


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass
class ProbePointResult(Result):
    """What one probe point found (non-finite numbers stored as None)."""

    parameters: int
    samples: int
    eigenvalues: list[float]
    noise_slope: float | None
    noise_scale: float | None
    noise_holds: bool
    off_diagonal: float
    barrier: float
    exponent_measured: float | None
    exponent_full: float | None
    log_rate_kappa: float | None
    log_rate_level: float | None
    log_rate_full: float | None
    log_rate_full_diagonal: float | None
    escapes: int
    rate: float
    rate_low: float
    rate_high: float | None
    ratio_kappa: float | None
    ratio_level: float | None
    ratio_full: float | None
    agrees_level: bool
    agrees_full: bool
    seconds: float = 0.0


def regression_problem(samples: int = 400, seed: int = 0) -> tuple[Any, Any, Any]:
    """(model, loss_fn, (x, y)): a 2-parameter least-squares regression at its minimum, on two
    correlated inputs (the docs/probe.md example)."""
    import torch
    from torch import nn

    f64 = torch.float64
    gen = torch.Generator(device="cpu").manual_seed(seed)
    mix = torch.tensor([[1.0, 0.5], [0.0, 0.35]], dtype=f64, device="cpu")
    x = torch.randn(samples, 2, generator=gen, dtype=f64, device="cpu") @ mix
    noise = torch.randn(samples, generator=gen, dtype=f64, device="cpu")
    y = x @ torch.tensor([0.7, -1.2], dtype=f64, device="cpu") + noise
    model = nn.Linear(2, 1, bias=False, dtype=f64, device="cpu")
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(x, y.unsqueeze(1)).solution.T)

    def mse(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((out.squeeze(-1) - t) ** 2).mean()

    return model, mse, (x, y)


@point_type("probe", ProbePointResult)
class ProbePoint(Point):
    """One probe of a shipped model with a measured escape (``regression`` for now)."""

    model: str
    lr: float
    batch_size: int
    barrier: float
    replicas: int
    max_steps: int
    burn_in: int
    target_escapes: int

    def run(self) -> ProbePointResult:
        from ._probe import probe

        if self.model != "regression":
            from flatminima.errors import ParameterError

            raise ParameterError("model", "'regression'", self.model)
        import torch

        model, loss_fn, data = regression_problem()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a 2-parameter model: threads only fight (10x slower on 2)
        try:
            r = self._probe(probe, model, loss_fn, data)
        finally:
            torch.set_num_threads(threads)
        return _result(r)

    def _probe(self, probe: Any, model: Any, loss_fn: Any, data: Any) -> Any:
        return probe(
            model,
            loss_fn,
            data,
            lr=self.lr,
            batch_size=self.batch_size,
            k=2,
            barrier=self.barrier,
            measure=True,
            replicas=self.replicas,
            max_steps=self.max_steps,
            check_every=1,
            burn_in=self.burn_in,
            target_escapes=self.target_escapes,
            seed=self.seed,
            device=self.device or "cpu",
        )


def _result(r: Any) -> ProbePointResult:
    h, n, p, m = r.hessian_top, r.noise, r.prediction, r.measured
    return ProbePointResult(
        parameters=h.parameters,
        samples=h.samples,
        eigenvalues=[float(v) for v in h.values],
        noise_slope=_finite(n.slope),
        noise_scale=_finite(n.scale),
        noise_holds=n.holds,
        off_diagonal=n.off_diagonal,
        barrier=p.barrier,
        exponent_measured=_finite(float(min(p.exponent_measured[p.kept]))),
        exponent_full=_finite(p.exponent_full),
        log_rate_kappa=_finite(p.log_rate_kappa),
        log_rate_level=_finite(p.log_rate_level),
        log_rate_full=_finite(p.log_rate_full),
        log_rate_full_diagonal=_finite(p.log_rate_full_diagonal),
        escapes=m.escapes,
        rate=m.rate,
        rate_low=m.rate_low,
        rate_high=_finite(m.rate_high),
        ratio_kappa=_finite(m.ratio_kappa),
        ratio_level=_finite(m.ratio_level),
        ratio_full=_finite(m.ratio_full),
        agrees_level=m.agrees["level"],
        agrees_full=m.agrees["full"],
    )


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


@dataclass(kw_only=True)
class ProbeCase(Case):
    """One probed model at one (η, B, ΔL): measured rate against the predictions."""

    model: str
    lr: float
    batch_size: int
    measured: ProbePointResult

    @property
    def label(self) -> str:
        return f"{self.model}/η={self.lr:g}/B={self.batch_size}"

    @property
    def detail(self) -> str:
        m = self.measured
        return (
            f"{m.escapes} escapes; measured/predicted rate: level (C_ii, exact 1-D) "
            f"{_fmt(m.ratio_level)}, full-C k-D level {_fmt(m.ratio_full)}, κH saddle "
            f"{_fmt(m.ratio_kappa)}; C ≈ H/B {'holds' if m.noise_holds else 'fails'} "
            f"(slope {_fmt(m.noise_slope)}), off-diagonal {m.off_diagonal:.3f}"
        )

    def to_dict(self) -> JSONRecord:
        head = {k: v for k, v in super().to_dict().items() if k != "measured"}
        return {**head, **self.measured.to_dict()}


def _case(point: ProbePoint, result: ProbePointResult) -> ProbeCase:
    return ProbeCase(
        expected="measured rate within a factor 2 of the 95% interval of both measured-noise "
        "level passages (C_ii exact 1-D, full-C k-D)",
        held=result.agrees_level and result.agrees_full,
        model=point.model,
        lr=point.lr,
        batch_size=point.batch_size,
        measured=result,
    )


@dataclass
class _ProbeRow(Row[ProbePoint, ProbePointResult]):
    """The point's settings and the result's scalar fields."""

    def to_dict(self) -> JSONRecord:
        scalars = {k: v for k, v in self.result.to_dict().items() if not isinstance(v, list)}
        p = self.point
        return {"model": p.model, "lr": p.lr, "batch_size": p.batch_size, **scalars}


class ProbeExperiment(Experiment[ProbePoint, Analysis[ProbeCase]]):
    """The network probe of a shipped model, its predictions against a measured escape."""

    name = "probe"
    prediction = (
        "at a probed minimum, real minibatch SGD escapes to the loss level L(a) + ΔL at the rate "
        "the measured noise's level passage predicts (within a factor 2)"
    )

    def points(self, quick: bool, device: str) -> list[ProbePoint]:
        settings = ((0.1, 0.06),) if quick else ((0.1, 0.06), (0.05, 0.03))
        return [
            ProbePoint(
                experiment="probe",
                model="regression",
                lr=lr,
                batch_size=4,
                barrier=barrier,
                replicas=256 if quick else 1024,
                max_steps=4000 if quick else 6000,
                burn_in=200,
                target_escapes=100 if quick else 400,
                seed=1,
                device=device,
            )
            for lr, barrier in settings
        ]

    def analyse(
        self, points: list[ProbePoint], results: list[ProbePointResult]
    ) -> Analysis[ProbeCase]:
        pairs = list(zip(points, results, strict=True))
        return Analysis(
            cases=[_case(p, r) for p, r in pairs], rows=[_ProbeRow(p, r) for p, r in pairs]
        )

    def figures(self, analysis: Analysis[ProbeCase], folder: Path) -> list[Path]:
        from ._probe_plots import plot_probe_cases

        return plot_probe_cases(analysis.cases, folder)


PROBE = register(ProbeExperiment())
