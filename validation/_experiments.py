"""The escape experiments on test landscapes (sharpness, batch size, learning rate, selection):
their points, typed analyses and verdicts, registered with the experiment registry.

Every experiment is a list of sweep points (run by `_sweep`, resumable) and an analysis that
turns the measured rates into fits, theory comparisons and a verdict (see `_rate_points` for the
two theory references).

Sharpness k (L_k(θ) = L(√kθ)) is run as step size: SGD or white-noise GD on L_k with step η is
exactly the same update on L with step kη (docs/conventions.md §6; checked in the tests), so a point with
multiplier k runs with ``lr = kη`` and its rate per iteration is the rate on L_k.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from ._design import Design, point_seed, sgd_design, white_design
from ._design import kappa as _kappa
from ._fits import ScalingComparison, compare_laws
from ._landscapes import landscape
from ._network_escape import NetworkRatePoint, network_sharpness_analysis, network_sharpness_points
from ._network_selection import MinimaPair, network_selection_analysis, network_selection_points
from ._rate_points import (
    OccupationPoint,
    OccupationResult,
    RatePoint,
    RateResult,
    RateRow,
    rate_point,
    rate_rows,
)
from ._registry import Analysis, Case, Experiment, Point, Record, register, split_by_type

__all__ = [
    "BATCH_SIZE",
    "LEARNING_RATE",
    "SELECTION",
    "SHARPNESS",
    "LawCase",
    "SelectionAnalysis",
    "SelectionCase",
    "SlopeCase",
    "log_odds_slope",
    "sharpness_case",
]


# ---------------------------------------------------------------------------------------------
# shared analysis pieces


def _line_fit(
    x: np.ndarray, log_rate: np.ndarray, features: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Least-squares coefficients of a log-linear law on noise-free (theory) values."""
    return np.linalg.lstsq(features(x), log_rate, rcond=None)[0]


@dataclass
class TheoryLaw:
    """The sharpness law fitted to theory values: exponent E of exp(−E/k) and the power of k."""

    E: float
    power: float

    def to_dict(self) -> dict[str, float]:
        return {"E": self.E, "power": self.power}


class _FittedCase(Case):
    """A case decided by comparing fitted laws (``fits``): the ``preferred`` law, and why
    (``reason``, the report's "measured" column)."""

    preferred: str
    reason: str
    fits: ScalingComparison

    @property
    def detail(self) -> str:
        return self.reason

    @property
    def summary(self) -> str:
        verdict = "as predicted" if self.held else "NOT as predicted"
        return f"{self.label}: {self.preferred} ({verdict})"


@dataclass(kw_only=True)
class LawCase(_FittedCase):
    """Sharpness: exponential in 1/k (SGD) or polynomial, rate ∝ k (white noise)."""

    noise: str
    preferred: str
    reason: str
    fits: ScalingComparison
    points: Sequence[Any]
    landscape: str | None = None
    model: str | None = None
    theory: dict[str, TheoryLaw] = field(default_factory=dict)
    predicted_E: float | None = None
    criterion: str | None = None
    network: bool = False

    @property
    def label(self) -> str:
        return f"{self.landscape or self.model}/{self.noise}"


def sharpness_case(
    k: np.ndarray, counts: np.ndarray, exposure: np.ndarray, noise: str, **where: Any
) -> LawCase:
    """The sharpness law fitted to measured escapes, and its verdict for ``noise``."""
    comparison = compare_laws(k, counts, exposure, variable="k", inverse=True, prefactor_power=1.0)
    if noise == "sgd":
        held = comparison.preferred == "exponential"
        expected = "exponential in 1/k"
    else:
        p, p_se = comparison.power.coefficient("p")
        held = comparison.preferred == "polynomial" and abs(p - 1) <= 3 * p_se
        expected = "polynomial, rate ∝ k"
    return LawCase(
        noise=noise,
        expected=expected,
        preferred=comparison.preferred,
        held=held,
        reason=comparison.reason,
        fits=comparison,
        **where,
    )


def _group(rows: list[RateRow], key: Callable[[RateRow], Any]) -> dict[Any, list[RateRow]]:
    groups: dict[Any, list[RateRow]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def _counts(rows: Sequence[RateRow]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([r.result.escapes for r in rows]),
        np.array([r.result.exposure for r in rows]),
    )


# ---------------------------------------------------------------------------------------------
# sharpness


@dataclass(frozen=True)
class _SharpnessConfig:
    landscapes: tuple[str, ...]
    sgd_k: tuple[float, ...]
    sgd_phi: float
    white_k: tuple[float, ...]
    white_phi: float
    target: int


def _sharpness_config(quick: bool) -> _SharpnessConfig:
    if quick:
        return _SharpnessConfig(
            ("double-well",), (1.0, 1.5, 2.0, 3.0), 6.0, (1.0, 2.0, 4.0, 8.0), 5.0, 300
        )
    return _SharpnessConfig(
        ("double-well", "styblinski-tang-1d", "styblinski-tang-2d"),
        (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0),
        8.0,
        (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0),
        6.0,
        600,
    )


def _sharpness_points(quick: bool, device: str) -> list[RatePoint]:
    cfg = _sharpness_config(quick)
    points = []
    for name in cfg.landscapes:
        land = landscape(name)
        sgd = sgd_design(land, batch_size=4, barrier_phi=cfg.sgd_phi, largest_step=max(cfg.sgd_k))
        white = white_design(land, barrier_phi=cfg.white_phi, largest_step=max(cfg.white_k))
        for noise, design, ks in (("sgd", sgd, cfg.sgd_k), ("white", white, cfg.white_k)):
            points += [
                rate_point(
                    "sharpness",
                    name,
                    noise,
                    design,
                    lr=k * design.lr,
                    label={"k": k},
                    target=cfg.target,
                    device=device,
                )
                for k in ks
            ]
    return points


def _theory_laws(k: np.ndarray, group: Sequence[RateRow]) -> dict[str, TheoryLaw]:
    """The sharpness law of the formula's and the exact MFPT's rates (where known)."""
    exact = np.array([r.exact_rate or np.nan for r in group])
    formula = np.array([r.formula_rate for r in group])
    theory: dict[str, TheoryLaw] = {}
    for label, values in (("formula", formula), ("exact", exact)):
        if np.all(np.isfinite(values)):
            _, e = _line_fit(
                k, np.log(values) - np.log(k), lambda v: np.column_stack([np.ones_like(v), -1 / v])
            )
            p = _line_fit(
                k, np.log(values), lambda v: np.column_stack([np.ones_like(v), np.log(v)])
            )[1]
            theory[label] = TheoryLaw(float(e), float(p))
    return theory


def _sharpness_landscape_cases(rows: list[RateRow]) -> list[LawCase]:
    cases = []
    for (name, noise), group in _group(rows, lambda r: (r.point.landscape, r.point.noise)).items():
        group.sort(key=lambda r: r.point.k or 0.0)
        k = np.array([r.point.k for r in group])
        case = sharpness_case(k, *_counts(group), noise, landscape=name, points=group)
        case.theory = _theory_laws(k, group)
        cases.append(case)
    return cases


_A = TypeVar("_A", bound=Analysis[Any])


class _Sweeps(Experiment[Point, _A]):
    """An experiment whose points are its ``sweeps`` one after the other (the landscape
    sweep, then the network sweep)."""

    sweeps: ClassVar[tuple[Callable[[bool, str], Sequence[Point]], ...]]

    def points(self, quick: bool, device: str) -> list[Point]:
        return [point for sweep in self.sweeps for point in sweep(quick, device)]


class Sharpness(_Sweeps[Analysis[LawCase]]):
    name = "sharpness"
    prediction = (
        "SGD: log γ linear in 1/k (exponential); white noise: γ ∝ k (polynomial) — on test "
        "landscapes and at a trained network's minimum"
    )
    sweeps = (_sharpness_points, network_sharpness_points)

    def analyse(self, points: list[Point], results: list[Any]) -> Analysis[LawCase]:
        """Landscape cases and network cases (a trained MLP at its minimum), one verdict."""
        land_p, land_r, rest_p, rest_r = split_by_type(points, results, RatePoint)
        net_p, net_r, _, _ = split_by_type(rest_p, rest_r, NetworkRatePoint)
        rows = rate_rows(land_p, land_r)
        network = network_sharpness_analysis(net_p, net_r)
        return Analysis(
            cases=[*_sharpness_landscape_cases(rows), *network.cases],
            rows=[*rows, *network.rows],
        )

    def figures(self, analysis: Analysis[LawCase], folder: Path) -> list[Path]:
        from ._plots import plot_law_cases

        return plot_law_cases(analysis.cases, folder)


SHARPNESS = register(Sharpness())


# ---------------------------------------------------------------------------------------------
# batch size and learning rate


@dataclass(kw_only=True)
class SlopeCase(_FittedCase):
    """−log γ linear in B (batch size) or in 1/η (learning rate)."""

    landscape: str
    preferred: str
    slope: float
    slope_se: float
    slope_formula: float | None
    slope_exact: float | None
    slope_relative_deviation_from_exact: float | None
    reason: str
    fits: ScalingComparison
    points: list[RateRow]

    @property
    def label(self) -> str:
        return self.landscape


@dataclass(frozen=True)
class _SlopeConfig:
    landscapes: tuple[str, ...]
    values: tuple[float, ...]  # batch sizes, or learning-rate multipliers
    phi: float
    target: int


def _theory_slopes(x: np.ndarray, group: Sequence[RateRow], inverse: bool) -> dict[str, float]:
    theory = {}
    for label, values in (
        ("formula", np.array([r.formula_rate for r in group])),
        ("exact", np.array([r.exact_rate or np.nan for r in group])),
    ):
        if np.all(np.isfinite(values)):
            offset = np.log(x) if inverse else np.zeros_like(x)
            design = np.column_stack([np.ones_like(x), -(1 / x if inverse else x)])
            theory[label] = float(
                np.linalg.lstsq(design, np.log(values) - offset, rcond=None)[0][1]
            )
    return theory


class _SlopeExperiment(Experiment[RatePoint, Analysis[SlopeCase]]):
    """−log γ linear in a swept variable of the point (``B``, or ``eta`` with ``inverse``), on
    the same landscapes, barriers and escape targets whatever the variable: a subclass says what
    it sweeps (``values`` and ``sweep``)."""

    variable: ClassVar[str]  # the point's label field: "B" or "eta"
    inverse: ClassVar[bool]
    axis: ClassVar[str]  # the variable as the prediction, verdicts and figures write it
    values: ClassVar[tuple[tuple[float, ...], tuple[float, ...]]]  # swept: (quick, full)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.prediction = f"SGD: −log γ linear in {cls.axis}"

    def config(self, quick: bool) -> _SlopeConfig:
        if quick:
            return _SlopeConfig(("double-well",), self.values[0], 6.0, 300)
        return _SlopeConfig(("double-well", "styblinski-tang-1d"), self.values[1], 8.0, 600)

    def sweep(self, value: float) -> tuple[float, int]:
        """(step multiplier, batch size) of the point for one swept value."""
        raise NotImplementedError

    def design(self, name: str, cfg: _SlopeConfig) -> Design:
        """η for ΔΦ = ``cfg.phi`` at the sweep's largest batch size, λ for stable steps at its
        largest step multiplier."""
        multipliers, batches = zip(*(self.sweep(value) for value in cfg.values), strict=True)
        return sgd_design(
            landscape(name),
            batch_size=max(batches),
            barrier_phi=cfg.phi,
            largest_step=max(multipliers),
        )

    def x(self, row: RateRow) -> float:
        value = getattr(row.point, self.variable)
        assert value is not None
        return float(value)

    def points(self, quick: bool, device: str) -> list[RatePoint]:
        cfg = self.config(quick)
        points = []
        for name in cfg.landscapes:
            design = self.design(name, cfg)
            for value in cfg.values:
                multiplier, batch = self.sweep(value)
                lr = multiplier * design.lr
                points.append(
                    rate_point(
                        self.name,
                        name,
                        "sgd",
                        design,
                        lr=lr,
                        batch_size=batch,
                        label={self.variable: {"B": batch, "eta": lr}[self.variable]},
                        target=cfg.target,
                        device=device,
                    )
                )
        return points

    def _case(self, name: str, group: list[RateRow]) -> SlopeCase:
        group.sort(key=self.x)
        x = np.array([self.x(r) for r in group], dtype=float)
        comparison = compare_laws(
            x,
            *_counts(group),
            variable=self.variable,
            inverse=self.inverse,
            prefactor_power=1.0 if self.inverse else 0.0,
        )
        slope = comparison.exponential.coefficients[1]
        theory = _theory_slopes(x, group, self.inverse)
        reference = theory.get("exact", theory.get("formula"))
        return SlopeCase(
            landscape=name,
            expected=f"−log γ linear in {self.axis}",
            preferred=comparison.preferred,
            held=comparison.preferred == "exponential",
            slope=slope,
            slope_se=comparison.exponential.standard_errors[1],
            slope_formula=theory.get("formula"),
            slope_exact=theory.get("exact"),
            slope_relative_deviation_from_exact=(
                (slope - reference) / reference if reference else None
            ),
            reason=comparison.reason,
            fits=comparison,
            points=group,
        )

    def analyse(self, points: list[RatePoint], results: list[RateResult]) -> Analysis[SlopeCase]:
        rows = rate_rows(points, results)
        groups = _group(rows, lambda r: r.point.landscape)
        return Analysis(
            cases=[self._case(name, group) for name, group in groups.items()],
            rows=rows,
        )

    def figures(self, analysis: Analysis[SlopeCase], folder: Path) -> list[Path]:
        from ._plots import plot_slope_cases

        return plot_slope_cases(analysis.cases, folder, self.name, self.x, self.axis, self.inverse)


class BatchSize(_SlopeExperiment):
    name, aliases = "batch-size", ("batch_size",)
    variable, inverse, axis = "B", False, "B"
    values = (2, 3, 4, 5, 6), (2, 3, 4, 5, 6, 7, 8)

    def sweep(self, value: float) -> tuple[float, int]:
        return 1.0, int(value)  # the design's learning rate, batch size B = value


class LearningRate(_SlopeExperiment):
    name, aliases = "learning-rate", ("lr",)
    variable, inverse, axis = "eta", True, "1/η"
    values = (1.0, 1.25, 1.6, 2.0, 2.5), (1.0, 1.2, 1.45, 1.75, 2.1, 2.5, 3.0)

    def sweep(self, value: float) -> tuple[float, int]:
        return value, 4  # learning rate value·η of the design, batch size 4


BATCH_SIZE = register(BatchSize())
LEARNING_RATE = register(LearningRate())


# ---------------------------------------------------------------------------------------------
# selection: flat vs sharp


SELECTION_LANDSCAPE = {"h_flat": 1.0, "h_sharp": 4.0, "h_saddle": 2.0, "barrier": 1.0}


def log_odds_slope(
    x: Sequence[float], log_odds: Sequence[float], errors: Sequence[float]
) -> tuple[float, float, float]:
    """Weighted least-squares line through the log odds: (slope, its standard error, χ²)."""
    xs, y = np.array(x), np.array(log_odds)
    w = 1 / np.array(errors) ** 2
    X = np.column_stack([np.ones_like(xs), xs])
    cov = np.linalg.inv((X.T * w) @ X)
    coef = cov @ ((X.T * w) @ y)
    chi2 = float(np.sum(w * (y - X @ coef) ** 2))
    return float(coef[1]), float(math.sqrt(cov[1, 1])), chi2


def log_odds_error(sharp_escapes: int, flat_escapes: int) -> float:
    """Standard error of log(γ_sharp/γ_flat) from the two Poisson counts."""
    return math.sqrt(1 / max(sharp_escapes, 1) + 1 / max(flat_escapes, 1))


@dataclass(kw_only=True)
class SelectionCase(Case):
    """The log odds of the flat valley against B/η."""

    noise: str
    slope: float
    slope_se: float
    slope_formula: float | None
    slope_exact: float | None
    B_over_eta: list[float]
    log_odds: list[float]
    log_odds_se: list[float]
    fraction_flat: list[float]
    chi2: float | None = None
    dof: int | None = None
    log_odds_formula: list[float] | None = None
    log_odds_exact: list[float] | None = None
    model: str | None = None
    minima: MinimaPair | None = None
    criterion: str | None = None

    @property
    def label(self) -> str:
        return f"{self.model}/{self.noise}" if self.model else self.noise

    @property
    def detail(self) -> str:
        return (
            f"slope {self.slope:.4g} ± {self.slope_se:.2g} "
            f"(formula {self.slope_formula}, exact {self.slope_exact})"
        )

    @property
    def summary(self) -> str:
        verdict = "as predicted" if self.held else "NOT as predicted"
        return f"{self.label}: slope {self.slope:.3g} ± {self.slope_se:.2g} ({verdict})"


@dataclass
class DirectOccupation(Record):
    """The two-state picture checked directly: replicas started half in each valley."""

    B_over_eta: float
    fraction_flat_direct: float
    standard_error: float
    fraction_flat_from_rates: float
    steps: int


@dataclass
class SelectionAnalysis(Analysis[SelectionCase]):
    direct_occupation: DirectOccupation | None = None


def _selection_points(quick: bool, device: str) -> list[Point]:
    ratios = (1.0, 1.5, 2.0, 2.5, 3.0) if quick else (1.0, 1.5, 2.0, 2.5, 3.0, 3.5)
    batch, target = 2, 200 if quick else 500
    lam = 0.05 / ((batch / min(ratios)) * SELECTION_LANDSCAPE["h_sharp"])
    points: list[Point] = []
    for ratio in ratios:
        lr = batch / ratio
        for noise in ("sgd", "white"):
            # white noise at the SGD temperature of the flat minimum: D = (η/2B) λ H_flat
            diffusion = (
                _kappa(lr, batch) * lam * SELECTION_LANDSCAPE["h_flat"]
                if noise == "white"
                else None
            )
            design = Design(lr=lr, loss_scale=lam, batch_size=batch, diffusion=diffusion)
            points += [
                rate_point(
                    "selection",
                    "flat-sharp",
                    noise,
                    design,
                    lr=lr,
                    label={"B_over_eta": ratio, "which": which},
                    target=target,
                    device=device,
                    options={**SELECTION_LANDSCAPE, "which": which},
                )
                for which in ("flat", "sharp")
            ]
    # one direct check of the two-state picture: start half in each valley, run long, count
    ratio = min(ratios)
    points.append(
        OccupationPoint(
            experiment="selection",
            landscape="flat-sharp",
            landscape_options={**SELECTION_LANDSCAPE, "which": "flat"},
            noise="sgd",
            lr=batch / ratio,
            loss_scale=lam,
            batch_size=batch,
            replicas=2048,
            steps=40_000 if quick else 100_000,
            seed=point_seed("selection-occupation", ratio),
            B_over_eta=ratio,
            device=device,
        )
    )
    return points


_Pairs = dict[tuple[str, float], dict[str, RateRow]]


def _selection_case(noise: str, table: _Pairs) -> SelectionCase:
    ratios, log_odds, errors, formula_odds, exact_odds = [], [], [], [], []
    for (n, ratio), pair in sorted(table.items()):
        if n != noise:
            continue
        flat, sharp = pair["flat"], pair["sharp"]
        assert flat.exact_rate is not None and sharp.exact_rate is not None
        # quasi-equilibrium: P_flat / P_sharp = γ_sharp / γ_flat
        ratios.append(ratio)
        log_odds.append(math.log(sharp.result.rate / flat.result.rate))
        errors.append(log_odds_error(sharp.result.escapes, flat.result.escapes))
        formula_odds.append(math.log(sharp.formula_rate / flat.formula_rate))
        exact_odds.append(math.log(sharp.exact_rate / flat.exact_rate))
    slope, slope_se, chi2 = log_odds_slope(ratios, log_odds, errors)
    if noise == "sgd":
        held = slope > 3 * slope_se
        expected = "log odds of the flat valley grow linearly in B/η (exponential preference)"
    else:
        held = abs(slope) <= 3 * slope_se
        expected = "log odds do not depend on B/η (white noise at matched temperature)"
    return SelectionCase(
        noise=noise,
        expected=expected,
        held=held,
        slope=slope,
        slope_se=slope_se,
        slope_formula=float(np.polyfit(ratios, formula_odds, 1)[0]),
        slope_exact=float(np.polyfit(ratios, exact_odds, 1)[0]),
        chi2=chi2,
        dof=len(ratios) - 2,
        B_over_eta=ratios,
        log_odds=log_odds,
        log_odds_se=errors,
        log_odds_formula=formula_odds,
        log_odds_exact=exact_odds,
        fraction_flat=[1 / (1 + math.exp(-v)) for v in log_odds],
    )


def _direct_occupation(
    points: Sequence[OccupationPoint], results: Sequence[OccupationResult], table: _Pairs
) -> DirectOccupation | None:
    direct = None
    for point, result in zip(points, results, strict=True):
        assert point.B_over_eta is not None
        pair = table[("sgd", point.B_over_eta)]
        sharp, flat = pair["sharp"].result.rate, pair["flat"].result.rate
        fraction = result.fraction
        direct = DirectOccupation(
            B_over_eta=point.B_over_eta,
            fraction_flat_direct=fraction,
            standard_error=math.sqrt(fraction * (1 - fraction) / result.replicas),
            fraction_flat_from_rates=sharp / (sharp + flat),
            steps=result.steps,
        )
    return direct


class Selection(_Sweeps[SelectionAnalysis]):
    name = "selection"
    prediction = (
        "SGD's preference for the flat valley grows exponentially in B/η; white noise's does "
        "not — on a two-valley landscape and between two minima of a real MLP"
    )
    sweeps = (_selection_points, network_selection_points)

    def analyse(self, points: list[Point], results: list[Any]) -> SelectionAnalysis:
        """The two-valley landscape (SGD and white noise) and two minima of a real MLP (SGD)."""
        net_p, net_r, rest_p, rest_r = split_by_type(points, results, NetworkRatePoint)
        rate_p, rate_r, occ_p, occ_r = split_by_type(rest_p, rest_r, RatePoint)
        rows = rate_rows(rate_p, rate_r)
        table: _Pairs = {}
        for row in rows:
            assert row.point.B_over_eta is not None and row.point.which is not None
            table.setdefault((row.point.noise, row.point.B_over_eta), {})[row.point.which] = row
        network = network_selection_analysis(net_p, net_r)
        return SelectionAnalysis(
            cases=[*(_selection_case(noise, table) for noise in ("sgd", "white")), *network.cases],
            rows=[*rows, *network.rows],
            direct_occupation=_direct_occupation(occ_p, occ_r, table),  # type: ignore[arg-type]
        )

    def figures(self, analysis: SelectionAnalysis, folder: Path) -> list[Path]:
        from ._plots import plot_selection

        return plot_selection(analysis.cases, folder)


SELECTION = register(Selection())
