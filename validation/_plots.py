"""Figures of the registered experiments: measured points with 95% intervals, theory lines over
them (formula and exact). Each experiment's ``figures`` calls the function for its cases."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

if TYPE_CHECKING:
    from ._experiments import LawCase, SelectionCase, SlopeCase
    from ._rate_points import RateRow

__all__ = ["plot_law_cases", "plot_selection", "plot_slope_cases", "save_all"]


def save_all(fig: Any, path: Path) -> None:
    """``path`` (PNG, embedded in the report) and the same figure as PDF and SVG beside it."""
    fig.savefig(path, dpi=100)
    for suffix in (".pdf", ".svg"):
        fig.savefig(path.with_suffix(suffix))


def _errorbars(rows: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log rate and its 95% interval below and above, from rows with a ``result``."""
    rate = np.array([r.result.rate for r in rows])
    low = np.array([max(r.result.rate_low, 1e-300) for r in rows])
    high = np.array([r.result.rate_high for r in rows])
    y = np.log(np.maximum(rate, 1e-300))
    return y, y - np.log(low), np.log(high) - y


def _theory(ax: Any, x: np.ndarray, rows: Sequence[RateRow], sign: float = 1.0) -> None:
    """The formula's and (where known) the exact MFPT's log rate, times ``sign``."""
    formula = np.array([r.formula_rate for r in rows])
    ax.plot(x, sign * np.log(formula), "--", color="C1", label="formula (asymptotic)")
    exact = [r.exact_rate for r in rows]
    if all(v is not None for v in exact):
        ax.plot(
            x,
            sign * np.log(np.array(exact, dtype=float)),
            "-",
            color="C2",
            label="exact MFPT (continuous)",
        )


def _finish(fig: Any, path: Path, save: Callable[[Any, Path], None] = save_all) -> Path:
    fig.tight_layout()
    save(fig, path)
    plt.close(fig)
    return path


def _verdict(case: Any) -> str:
    return f"{case.preferred} ({'held' if case.held else 'NOT held'})"


def _network_figure(cases: Sequence[LawCase], folder: Path) -> list[Path]:
    """The network cases: SGD's log γ against 1/k, white noise's against log k."""
    if not cases:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, case in zip(axes, cases, strict=False):
        rows = case.points
        k = np.array([r.point.k for r in rows])
        y, lo, hi = _errorbars(rows)
        sgd = case.noise == "sgd"
        ax.errorbar(1 / k if sgd else np.log(k), y, yerr=[lo, hi], fmt="o", label="measured (95%)")
        fit = case.fits.exponential if sgd else case.fits.power
        a, b = fit.coefficients
        grid = np.linspace(k.min(), k.max(), 50)
        line = a - b / grid + np.log(grid) if sgd else a + b * np.log(grid)
        ax.plot(1 / grid if sgd else np.log(grid), line, "--", label="fitted law")
        if not sgd:
            ax.plot(np.log(grid), y[0] + np.log(grid / k[0]), ":", label="prediction: slope 1")
        ax.set_xlabel("1/k" if sgd else "log k")
        ax.set_ylabel("log γ per iteration")
        ax.set_title(f"{case.noise}: {_verdict(case)}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("network at a trained minimum: escape (loss jump) rate vs sharpness k")
    return [_finish(fig, folder / "network_sharpness.png", lambda f, p: f.savefig(p, dpi=100))]


def plot_law_cases(cases: Sequence[LawCase], folder: Path) -> list[Path]:
    """Sharpness: the network figure, then one figure per landscape case (1/k and log k)."""
    paths = _network_figure([c for c in cases if c.network], folder)
    for case in cases:
        if case.network:
            continue
        rows = case.points
        k = np.array([r.point.k for r in rows])
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        y, lo, hi = _errorbars(rows)
        for ax, x, label in ((axes[0], 1 / k, "1/k"), (axes[1], np.log(k), "log k")):
            ax.errorbar(x, y, yerr=[lo, hi], fmt="o", color="C0", label="measured (95%)")
            _theory(ax, x, rows)
            ax.set_xlabel(label)
            ax.set_ylabel("log γ per iteration")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"{case.landscape}, {case.noise}: {_verdict(case)}")
        paths.append(_finish(fig, folder / f"sharpness_{case.landscape}_{case.noise}.png"))
    return paths


def plot_slope_cases(
    cases: Sequence[SlopeCase],
    folder: Path,
    name: str,
    x_of: Callable[[RateRow], float],
    label: str,
    inverse: bool,
) -> list[Path]:
    """−log γ against B (or 1/η with ``inverse``), one figure per landscape."""
    paths = []
    for case in cases:
        rows = case.points
        x = np.array([x_of(r) for r in rows], dtype=float)
        xx = 1 / x if inverse else x
        fig, ax = plt.subplots(figsize=(5, 3.6))
        y, lo, hi = _errorbars(rows)
        ax.errorbar(xx, -y, yerr=[hi, lo], fmt="o", label="measured (95%)")
        _theory(ax, xx, rows, sign=-1.0)
        ax.set_xlabel(label)
        ax.set_ylabel("−log γ per iteration")
        ax.set_title(f"{case.landscape}: slope {case.slope:.3g} ± {case.slope_se:.2g}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        paths.append(_finish(fig, folder / f"{name}_{case.landscape}.png"))
    return paths


def _odds_axes(ax: Any, ylabel: str) -> None:
    ax.set_xlabel("B/η")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _selection_network(cases: Sequence[SelectionCase], folder: Path) -> list[Path]:
    if not cases:
        return []
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for case in cases:
        x = np.array(case.B_over_eta)
        ax.errorbar(
            x,
            case.log_odds,
            yerr=1.96 * np.array(case.log_odds_se),
            fmt="o",
            label=f"{case.model} {case.noise} measured (95%)",
        )
        slope = case.slope_formula or 0.0
        intercept = float(np.mean(np.array(case.log_odds) - slope * x))
        ax.plot(x, intercept + slope * x, "--", label="slope from the level-set estimate")
    ax.set_title("two minima of a real MLP (XOR data), SGD", fontsize=9)
    _odds_axes(ax, "log γ_sharp/γ_flat (odds of the flat minimum)")
    return [_finish(fig, folder / "selection_network.png")]


def plot_selection(cases: Sequence[SelectionCase], folder: Path) -> list[Path]:
    """Log odds of the flat valley against B/η: the landscape (measured, formula, exact), then
    the network's two minima."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, case in enumerate(c for c in cases if c.model is None):
        x = np.array(case.B_over_eta)
        color = f"C{i}"
        ax.errorbar(
            x,
            case.log_odds,
            yerr=1.96 * np.array(case.log_odds_se),
            fmt="o",
            color=color,
            label=f"{case.noise} measured",
        )
        for values, style, alpha, what in (
            (case.log_odds_formula, "--", 0.7, "formula"),
            (case.log_odds_exact, "-", 0.5, "exact"),
        ):
            ax.plot(x, values or [], style, color=color, alpha=alpha, label=f"{case.noise} {what}")
    _odds_axes(ax, "log P(flat)/P(sharp) = log γ_sharp/γ_flat")
    path = _finish(fig, folder / "selection.png")
    return [path, *_selection_network([c for c in cases if c.model is not None], folder)]
