"""Figures: measured points with 95% intervals, theory lines over them (formula and exact)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_experiment", "save_all"]


def save_all(fig: Any, path: Path) -> None:
    """``path`` (PNG, embedded in the report) and the same figure as PDF and SVG beside it."""
    fig.savefig(path, dpi=100)
    for suffix in (".pdf", ".svg"):
        fig.savefig(path.with_suffix(suffix))


def _errorbars(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rate = np.array([r["rate"] for r in rows])
    low = np.array([max(r["rate_low"], 1e-300) for r in rows])
    high = np.array([r["rate_high"] for r in rows])
    y = np.log(np.maximum(rate, 1e-300))
    return y, y - np.log(low), np.log(high) - y


def _theory(ax: Any, x: np.ndarray, rows: list[dict[str, Any]]) -> None:
    formula = np.array([r["formula_rate"] for r in rows])
    ax.plot(x, np.log(formula), "--", color="C1", label="formula (asymptotic)")
    exact = [r["exact_rate"] for r in rows]
    if all(v is not None for v in exact):
        ax.plot(
            x,
            np.log(np.array(exact, dtype=float)),
            "-",
            color="C2",
            label="exact MFPT (continuous)",
        )


def _sharpness(analysis: dict[str, Any], folder: Path) -> list[Path]:
    from ._network_escape import plot_network

    paths = plot_network(analysis, folder)
    for case in analysis["cases"]:
        if case.get("network"):
            continue
        rows = case["points"]
        k = np.array([r["k"] for r in rows])
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        y, lo, hi = _errorbars(rows)
        for ax, x, label in ((axes[0], 1 / k, "1/k"), (axes[1], np.log(k), "log k")):
            ax.errorbar(x, y, yerr=[lo, hi], fmt="o", color="C0", label="measured (95%)")
            _theory(ax, x, rows)
            ax.set_xlabel(label)
            ax.set_ylabel("log γ per iteration")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(
            f"{case['landscape']}, {case['noise']}: {case['preferred']} ({'held' if case['held'] else 'NOT held'})"
        )
        fig.tight_layout()
        path = folder / f"sharpness_{case['landscape']}_{case['noise']}.png"
        save_all(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths


def _slopes(
    analysis: dict[str, Any], folder: Path, name: str, key: str, label: str, inverse: bool
) -> list[Path]:
    paths = []
    for case in analysis["cases"]:
        rows = case["points"]
        x = np.array([r[key] for r in rows], dtype=float)
        xx = 1 / x if inverse else x
        fig, ax = plt.subplots(figsize=(5, 3.6))
        y, lo, hi = _errorbars(rows)
        ax.errorbar(xx, -y, yerr=[hi, lo], fmt="o", label="measured (95%)")
        formula = np.array([r["formula_rate"] for r in rows])
        ax.plot(xx, -np.log(formula), "--", label="formula")
        exact = [r["exact_rate"] for r in rows]
        if all(v is not None for v in exact):
            ax.plot(xx, -np.log(np.array(exact, dtype=float)), "-", label="exact MFPT")
        ax.set_xlabel(label)
        ax.set_ylabel("−log γ per iteration")
        ax.set_title(
            f"{case['landscape']}: slope {case['slope']:.3g} ± {case['slope_se']:.2g}", fontsize=9
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / f"{name}_{case['landscape']}.png"
        save_all(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths


def _selection(analysis: dict[str, Any], folder: Path) -> list[Path]:
    paths = []
    network = [c for c in analysis["cases"] if "model" in c]
    if network:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for case in network:
            x = np.array(case["B_over_eta"])
            ax.errorbar(
                x,
                case["log_odds"],
                yerr=1.96 * np.array(case["log_odds_se"]),
                fmt="o",
                label=f"{case['model']} {case['noise']} measured (95%)",
            )
            intercept = float(np.mean(np.array(case["log_odds"]) - case["slope_formula"] * x))
            ax.plot(
                x,
                intercept + case["slope_formula"] * x,
                "--",
                label="slope from the level-set estimate",
            )
        ax.set_xlabel("B/η")
        ax.set_ylabel("log γ_sharp/γ_flat (odds of the flat minimum)")
        ax.set_title("two minima of a real MLP (XOR data), SGD", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = folder / "selection_network.png"
        save_all(fig, path)
        plt.close(fig)
        paths.append(path)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, case in enumerate(c for c in analysis["cases"] if "model" not in c):
        x = np.array(case["B_over_eta"])
        ax.errorbar(
            x,
            case["log_odds"],
            yerr=1.96 * np.array(case["log_odds_se"]),
            fmt="o",
            color=f"C{i}",
            label=f"{case['noise']} measured",
        )
        ax.plot(
            x,
            case["log_odds_formula"],
            "--",
            color=f"C{i}",
            alpha=0.7,
            label=f"{case['noise']} formula",
        )
        ax.plot(
            x, case["log_odds_exact"], "-", color=f"C{i}", alpha=0.5, label=f"{case['noise']} exact"
        )
    ax.set_xlabel("B/η")
    ax.set_ylabel("log P(flat)/P(sharp) = log γ_sharp/γ_flat")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = folder / "selection.png"
    save_all(fig, path)
    plt.close(fig)
    return [path, *paths]


def plot_experiment(name: str, analysis: dict[str, Any], folder: Path) -> list[Path]:
    """Write the experiment's figures to ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    if name == "sharpness":
        return _sharpness(analysis, folder)
    if name == "batch-size":
        return _slopes(analysis, folder, name, "B", "B", inverse=False)
    if name == "learning-rate":
        return _slopes(analysis, folder, name, "eta", "1/η", inverse=True)
    if name == "selection":
        return _selection(analysis, folder)
    if name == "covariance":
        from ._covariance import plot_covariance

        return plot_covariance(analysis, folder)
    return []
