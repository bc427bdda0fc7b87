"""Is the SGD noise covariance C ≈ H/B? Measured on trained models, and at random initialisation.

For a model at θ (a minimum reached by full-batch L-BFGS, or the random initialisation):

- H: the exact Hessian of the training loss (mean cross-entropy + ½wd‖θ‖²), the H of the
  theory, ``torch.func.hessian``;
- Σ: the centred covariance of the per-sample gradients (``torch.func.vmap`` of
  ``torch.func.grad``), so that a minibatch of B samples drawn with replacement has
  C = Σ/B;
- both in H's eigenbasis V: λ_i = (VᵀHV)_ii, c_i = (VᵀΣV)_ii. In that basis H is diagonal, so
  the comparison is on the diagonal (the off-diagonal of VᵀΣV is reported as a fraction);
- the claim C ≈ H/B (docs/conventions.md trap 8) means log c_i ≈ log λ_i along the top directions:
  slope 1, intercept 0 (−log B for C = Σ/B). The verdict uses the leading eigenspace (the top
  3 directions, where escapes happen); the same fit on the top 10 and on every direction with
  λ_i ≥ 10⁻³ λ_max is reported beside it. (A first version judged on that wide range: the
  MLPs' small-curvature directions, where the Hessian's residual term dominates the Fisher
  part, gave slopes of 3–5; on the top 10 the MLPs still fail: several large-curvature
  directions carry almost no gradient noise.)
- minibatch check: M minibatches of B samples drawn *without* replacement, their gradient
  covariance along the top directions against λ/B (the claim) and against
  Σ(N − B)/((N − 1)B) (sampling theory), for several B: the scaling exponent in B.

Criteria: "C ≈ H/B holds" when the slope is in [0.75, 1.25], the scale exp(intercept) in
[0.5, 2] and H is positive definite.
Weight decay (½wd‖θ‖²) makes the minimum isolated and adds no gradient noise: it adds wd to
every eigenvalue of H (same eigenvectors), so the noise is compared with λ_i − wd, the data part
of the curvature (a second version compared with λ_i itself and was dominated by directions
where H is the weight decay alone and the noise is zero). H must be positive definite.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._design import point_seed
from ._models import load_dataset, make_model, train_to_minimum
from ._registry import (
    Analysis,
    Case,
    Experiment,
    JSONValue,
    Point,
    Record,
    Result,
    Row,
    point_type,
    register,
)

__all__ = [
    "COVARIANCE",
    "CovarianceCase",
    "CovariancePoint",
    "CovarianceResult",
    "covariance_point",
    "plot_covariance",
]

SLOPE_RANGE = (0.75, 1.25)
SCALE_RANGE = (0.5, 2.0)
LEADING = 3  # the leading eigenspace: the verdict
TOP = 10  # the top ten directions: reported beside it (stricter)


@dataclass
class MinibatchCheck(Record):
    """Covariance of M minibatch means of B samples (without replacement), along the top
    directions, against H/B (the claim) and against sampling theory."""

    B: int
    median_ratio_to_H_over_B: float
    median_ratio_to_sampling_theory: float
    median_diag: float


@dataclass
class CovarianceResult(Result):
    """The noise covariance against H/B at one model state (see the module docstring)."""

    training: dict[str, float]
    parameters: int
    samples: int
    leading_directions: int
    slope: float
    intercept: float
    scale: float
    top_directions: int
    top_slope: float
    top_scale: float
    holds_top: bool
    wide_directions: int
    wide_slope: float
    wide_scale: float
    ratio_top5: list[float]
    median_relative_error_top10: float
    offdiagonal_fraction: float
    negative_spectrum_fraction: float
    minibatches: list[MinibatchCheck]
    minibatch_exponent: float | None
    holds: bool
    log_lambda: list[float]
    log_c: list[float]
    seconds: float = 0.0

    @classmethod
    def from_dict(cls, data: Any) -> CovarianceResult:
        values = {**data, "minibatches": [MinibatchCheck(**m) for m in data["minibatches"]]}
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})


@point_type("covariance", CovarianceResult)
class CovariancePoint(Point):
    """One model at one state (``"minimum"`` or ``"init"``): its Hessian and gradient noise."""

    model: str
    dataset: str
    state: str
    hidden: int
    weight_decay: float
    batch_sizes: tuple[int, ...]
    minibatches: int

    def run(self) -> CovarianceResult:
        return covariance_point(self)


@dataclass
class _Spectrum:
    """H's eigenbasis (descending), the noise's diagonal c in it, and the selections."""

    data_values: torch.Tensor  # λ_i − wd, the data part of the curvature
    vectors: torch.Tensor
    sigma_v: torch.Tensor  # VᵀΣV
    c: torch.Tensor
    negative_mass: float
    wide: torch.Tensor  # directions with λ ≥ 10⁻³ λ_max, λ > 0, c > 0
    idx: torch.Tensor  # the top ``TOP`` of them


def _state(point: CovariancePoint) -> tuple[Any, Any, torch.Tensor, dict[str, float]]:
    """Data, model, θ (trained minimum or initialisation) and the training record."""
    data = load_dataset(point.dataset, seed=point.seed)
    model = make_model(point.model, data, hidden=point.hidden, weight_decay=point.weight_decay)
    if point.state == "minimum":
        theta, info = train_to_minimum(model, data, seed=point.seed)
    else:
        theta = model.init(point.seed)
        info = {"loss": float(model.loss(theta, data.x, data.y))}
    return data, model, theta, info


def _per_sample_gradients(model: Any, data: Any, theta: torch.Tensor) -> torch.Tensor:
    def sample_loss(t: torch.Tensor, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return model.per_sample_loss(t, xi.unsqueeze(0), yi.unsqueeze(0)).squeeze()

    return torch.func.vmap(torch.func.grad(sample_loss), in_dims=(None, 0, 0))(
        theta, data.x, data.y
    )  # (N, P)


def _spectrum(model: Any, data: Any, theta: torch.Tensor, grads: torch.Tensor) -> _Spectrum:
    x, y = data.x, data.y
    hessian = torch.func.hessian(lambda t: model.loss(t, x, y))(theta)
    hessian = 0.5 * (hessian + hessian.T)
    centred = grads - grads.mean(0, keepdim=True)
    sigma = centred.T @ centred / data.size
    values, vectors = torch.linalg.eigh(hessian)
    order = torch.argsort(values, descending=True)
    values, vectors = values[order], vectors[:, order]
    sigma_v = vectors.T @ sigma @ vectors
    c = torch.diagonal(sigma_v)
    negative_mass = float(values[values < 0].abs().sum() / values.abs().sum())
    # the weight decay adds wd·I: same eigenvectors, no noise; compare the noise with the data part
    data_values = values - model.weight_decay
    lam_max = float(data_values[0])
    wide = torch.nonzero((data_values >= 1e-3 * lam_max) & (data_values > 0) & (c > 0)).squeeze(-1)
    return _Spectrum(data_values, vectors, sigma_v, c, negative_mass, wide, wide[:TOP])


def _loglog_fit(spec: _Spectrum, which: torch.Tensor) -> tuple[float, float]:
    """(slope, intercept) of log c_i against log λ_i over the directions ``which``."""
    slope, intercept = np.polyfit(
        np.log(spec.data_values[which].numpy()), np.log(spec.c[which].numpy()), 1
    )
    return float(slope), float(intercept)


def _minibatch_checks(
    point: CovariancePoint, data: Any, grads: torch.Tensor, spec: _Spectrum
) -> list[MinibatchCheck]:
    """Minibatches without replacement: their covariance along the top directions."""
    generator = torch.Generator(device="cpu").manual_seed(point.seed + 17)
    checks = []
    k = min(10, spec.idx.numel())
    projected = grads @ spec.vectors[:, spec.idx[:k]]  # (N, k)
    for b in point.batch_sizes:
        if b >= data.size:
            continue
        perm = torch.argsort(
            torch.rand(point.minibatches, data.size, generator=generator, device="cpu"), dim=1
        )
        means = projected[perm[:, :b]].mean(1)  # (M, k)
        cov_diag = means.var(0, unbiased=True).numpy()
        claim = spec.data_values[spec.idx[:k]].numpy() / b
        theory = spec.c[spec.idx[:k]].numpy() * (data.size - b) / ((data.size - 1) * b)
        checks.append(
            MinibatchCheck(
                B=b,
                median_ratio_to_H_over_B=float(np.median(cov_diag / claim)),
                median_ratio_to_sampling_theory=float(np.median(cov_diag / theory)),
                median_diag=float(np.median(cov_diag)),
            )
        )
    return checks


def _within(slope: float, intercept: float, negative_mass: float) -> bool:
    """The rule: slope in SLOPE_RANGE, scale in SCALE_RANGE, H positive definite."""
    return bool(
        SLOPE_RANGE[0] <= slope <= SLOPE_RANGE[1]
        and SCALE_RANGE[0] <= math.exp(intercept) <= SCALE_RANGE[1]
        and negative_mass < 1e-3
    )


def covariance_point(point: CovariancePoint) -> CovarianceResult:
    """Hessian and per-sample gradient covariance of one model state, compared in H's
    eigenbasis (see the module docstring)."""
    data, model, theta, info = _state(point)
    grads = _per_sample_gradients(model, data, theta)
    spec = _spectrum(model, data, theta, grads)
    idx, lead = spec.idx, spec.wide[:LEADING]
    lam_top, c_top = spec.data_values[idx].numpy(), spec.c[idx].numpy()
    slope, intercept = np.polyfit(np.log(lam_top), np.log(c_top), 1)
    lead_slope, lead_intercept = _loglog_fit(spec, lead)
    wide_slope, wide_intercept = _loglog_fit(spec, spec.wide)
    block = spec.sigma_v[idx][:, idx]
    off = block - torch.diag(torch.diagonal(block))
    batches = _minibatch_checks(point, data, grads, spec)
    exponent = None
    if len(batches) >= 2:
        exponent = float(
            np.polyfit(np.log([r.B for r in batches]), np.log([r.median_diag for r in batches]), 1)[
                0
            ]
        )
    return CovarianceResult(
        training=info,
        parameters=model.size,
        samples=data.size,
        leading_directions=int(lead.numel()),
        slope=lead_slope,
        intercept=lead_intercept,
        scale=float(math.exp(lead_intercept)),
        top_directions=int(idx.numel()),
        top_slope=float(slope),
        top_scale=float(math.exp(intercept)),
        holds_top=_within(slope, intercept, spec.negative_mass),
        wide_directions=int(spec.wide.numel()),
        wide_slope=wide_slope,
        wide_scale=float(math.exp(wide_intercept)),
        ratio_top5=[float(v) for v in (c_top[:5] / lam_top[:5])],
        median_relative_error_top10=float(np.median(np.abs(c_top / lam_top - 1))),
        offdiagonal_fraction=float(off.norm() / torch.diagonal(block).norm()),
        negative_spectrum_fraction=spec.negative_mass,
        minibatches=batches,
        minibatch_exponent=exponent,
        holds=_within(lead_slope, lead_intercept, spec.negative_mass),
        log_lambda=np.log(lam_top).tolist(),
        log_c=np.log(c_top).tolist(),
    )


@dataclass(kw_only=True)
class CovarianceCase(Case):
    """One model/data at one state: does the noise match H/B, and was a match expected?"""

    model: str
    dataset: str
    noise: str  # the state: "minimum" or "init"
    preferred: str
    measured: CovarianceResult = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.model}/{self.dataset}/{self.noise}"

    @property
    def detail(self) -> str:
        return self.preferred

    @property
    def at_minimum(self) -> bool:
        return self.noise == "minimum"

    def to_dict(self) -> dict[str, JSONValue]:
        head = {k: v for k, v in super().to_dict().items() if k != "measured"}
        return {**head, **self.measured.to_dict()}


def _case(point: CovariancePoint, result: CovarianceResult) -> CovarianceCase:
    expected = point.state == "minimum"
    return CovarianceCase(
        model=point.model,
        dataset=point.dataset,
        noise=point.state,
        expected="noise matches H/B" if expected else "noise does not match H/B",
        preferred=(
            f"noise {'matches' if result.holds else 'does not match'} H/B: "
            f"slope {result.slope:.3f}, scale {result.scale:.3f}"
        ),
        held=result.holds == expected,
        measured=result,
    )


@dataclass
class _CovarianceRow(Row[CovariancePoint, CovarianceResult]):
    """model, dataset, state and the result's scalar fields."""

    def to_dict(self) -> dict[str, JSONValue]:
        scalars = {k: v for k, v in self.result.to_dict().items() if not isinstance(v, list | dict)}
        p = self.point
        return {"model": p.model, "dataset": p.dataset, "state": p.state, **scalars}


_CASES = (
    ("logistic", "two-blobs"),
    ("mlp", "two-blobs"),
    ("logistic", "breast-cancer"),
    ("mlp", "wine"),
)
_FULL_CASES = (("mlp", "iris"), ("mlp", "breast-cancer"), ("logistic", "digits"))


class Covariance(Experiment[CovariancePoint, Analysis[CovarianceCase]]):
    name = "covariance"
    prediction = (
        "near a minimum C ≈ H/B (slope 1, scale 1 in H's eigenbasis); at random initialisation not"
    )

    def points(self, quick: bool, device: str) -> list[CovariancePoint]:
        cases = _CASES if quick else _CASES + _FULL_CASES
        return [
            CovariancePoint(
                experiment="covariance",
                model=model,
                dataset=dataset,
                state=state,
                hidden=8,
                weight_decay=1e-2,
                batch_sizes=(4, 16, 64),
                minibatches=4000 if quick else 20000,
                seed=point_seed("covariance", model, dataset),
                device=device,
            )
            for model, dataset in cases
            for state in ("minimum", "init")
        ]

    def analyse(
        self, points: list[CovariancePoint], results: list[CovarianceResult]
    ) -> Analysis[CovarianceCase]:
        return Analysis(
            cases=[_case(p, r) for p, r in zip(points, results, strict=True)],
            rows=[_CovarianceRow(p, r) for p, r in zip(points, results, strict=True)],
        )

    def figures(self, analysis: Analysis[CovarianceCase], folder: Path) -> list[Path]:
        return plot_covariance(analysis.cases, folder)

    def report_body(self, analysis: Analysis[CovarianceCase]) -> str:
        return covariance_body(analysis.cases)


COVARIANCE = register(Covariance())


def _names(items: Sequence[CovarianceCase]) -> str:
    return ", ".join(html.escape(f"{c.model}/{c.dataset}") for c in items) or "none"


def _rule() -> str:
    return (
        '<p class="rule"><b>Rule.</b> In the eigenbasis of the Hessian H, fit log Σ<sub>ii</sub> '
        f"(per-sample gradient covariance) against log λ<sub>i</sub> over the {LEADING} "
        "directions of largest curvature (the filled markers in the figure; the hollow ones are "
        "shown for context and are not used). The noise <i>matches</i> H/B when the slope lies in "
        f"[{SLOPE_RANGE[0]}, {SLOPE_RANGE[1]}], the scale e<sup>intercept</sup> in "
        f"[{SCALE_RANGE[0]}, {SCALE_RANGE[1]}] and H is positive definite. The theory predicts a "
        "match at a trained minimum and no match at random initialisation; a case passes when "
        "the measurement agrees with that prediction.</p>"
    )


def _outcome(cases: Sequence[CovarianceCase]) -> str:
    at_min = [c for c in cases if c.at_minimum]
    at_init = [c for c in cases if not c.at_minimum]
    unmatched = [c for c in at_min if not c.measured.holds]
    scales = ", ".join(f"{c.measured.scale:.2f}" for c in unmatched)
    return (
        '<p class="summary"><b>What held.</b> At the minimum the noise matched H/B on: '
        f"{_names([c for c in at_min if c.measured.holds])}. At random initialisation it did "
        f"not match, as predicted, on: {_names([c for c in at_init if not c.measured.holds])}.</p>"
        '<p class="summary"><b>What did not hold.</b> At the minimum the noise did not match '
        f"H/B on: {_names(unmatched)}"
        + (
            f" (scale {scales} × H/B: less gradient noise than the Hessian predicts)"
            if unmatched
            else ""
        )
        + ". At random initialisation it matched unexpectedly on: "
        f"{_names([c for c in at_init if c.measured.holds])}.</p>"
    )


def covariance_body(cases: Sequence[CovarianceCase]) -> str:
    """The covariance section in plain words: the rule, then what held and what did not."""
    rows = "".join(
        f"<tr><td>{html.escape(f'{c.model}/{c.dataset}')}</td>"
        f"<td>{'trained minimum' if c.at_minimum else 'random initialisation'}</td>"
        f"<td>{c.measured.slope:.2f}</td><td>{c.measured.scale:.2f}</td>"
        f"<td>{'yes' if c.measured.holds else '<b>no</b>'}</td>"
        f"<td>{'yes' if c.at_minimum else 'no'}</td>"
        f"<td>{'pass' if c.held else '<b>FAIL</b>'}</td></tr>"
        for c in cases
    )
    table = (
        f"<table><tr><th>model/data</th><th>state</th><th>slope (top {LEADING})</th>"
        f"<th>scale (top {LEADING})</th><th>noise matches H/B?</th><th>theory expects a match?"
        f"</th><th>case</th></tr>{rows}</table>"
    )
    return _rule() + _outcome(cases) + table


def plot_covariance(cases: Sequence[CovarianceCase], folder: Path) -> list[Path]:
    """One panel per case: log Σ_ii against log λ_i. Filled markers: the top ``LEADING``
    directions the verdict fits; hollow grey: the other directions, shown for context only."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    columns = 2
    rows = math.ceil(len(cases) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(9, 3.2 * rows), squeeze=False)
    for ax, case in zip(axes.ravel(), cases, strict=False):
        m = case.measured
        lam, c = np.array(m.log_lambda), np.array(m.log_c)
        lead = min(m.leading_directions, lam.size)
        ax.plot(lam[lead:], c[lead:], "o", ms=4, mfc="none", color="0.6", label="other (unused)")
        ax.plot(lam[:lead], c[:lead], "o", ms=6, color="C0", label=f"top {lead} (verdict)")
        line = np.linspace(lam.min(), lam.max(), 10)
        ax.plot(line, line, "--", color="C1", label="Σ = H (C = H/B)")
        match = "matches" if m.holds else "does not match"
        state = "minimum" if case.at_minimum else "init"
        ax.set_title(
            f"{case.model}/{case.dataset} at {state}: {match}\n"
            f"slope {m.slope:.2f}, scale {m.scale:.2f}",
            fontsize=8,
        )
        ax.set_xlabel("log λ_i (Hessian)", fontsize=8)
        ax.set_ylabel("log Σ_ii", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.yaxis.set_major_locator(MaxNLocator(5))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(cases) :]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    path = folder / "covariance.png"
    from ._plots import save_all

    save_all(fig, path)
    plt.close(fig)
    return [path]
