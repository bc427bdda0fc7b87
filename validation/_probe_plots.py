"""Figures of a probe: the top spectrum, C against H/B, predicted and measured escape rates."""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_probe_cases", "probe_figures"]


def probe_figures(result: Any) -> dict[str, Figure]:
    """``spectrum``, ``noise`` (C against H/B) and ``rates`` figures of a ``ProbeResult``."""
    return {
        "spectrum": _finish(*_spectrum(result)),
        "noise": _finish(*_noise(result)),
        "rates": _finish(*_rates(result)),
    }


def _finish(fig: Any, ax: Any) -> Any:
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _spectrum(result: Any) -> tuple[Any, Any]:
    h, pred = result.hessian_top, result.prediction
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    idx = np.arange(1, len(h.values) + 1)
    pos = h.values > 0
    ax.semilogy(idx[pos], h.values[pos], "o", color="C0", label="λ_i (Lanczos)")
    ax.errorbar(
        idx[pos],
        h.values[pos],
        yerr=np.minimum(h.residuals[pos], 0.99 * h.values[pos]),
        fmt="none",
        color="C0",
        alpha=0.6,
    )
    if pred.zero_modes:
        ax.plot(
            idx[pred.zero_modes],
            np.full(len(pred.zero_modes), h.values[pos].min() / 10),
            "x",
            color="C3",
            label="projected out ([H]⁺)",
        )
    ax.set_xlabel("index i")
    ax.set_ylabel("Hessian eigenvalue")
    ax.set_title(f"top {len(h.values)} of {h.parameters} parameters")
    return fig, ax


def _noise(result: Any) -> tuple[Any, Any]:
    h, noise = result.hessian_top, result.noise
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    lam = h.values - float(result.settings.get("weight_decay", 0.0))
    c = np.diag(noise.covariance)
    ok = (lam > 0) & (c > 0)
    ax.loglog(lam[ok] / noise.batch_size, c[ok], "o", color="C0", label="C_ii (measured)")
    if ok.any():
        grid = np.geomspace(lam[ok].min(), lam[ok].max(), 20) / noise.batch_size
        ax.loglog(
            grid,
            grid * noise.replacement_factor,
            "--",
            color="C1",
            label="C = H/B (× without-replacement factor)",
        )
    ax.set_xlabel("λ_i / B")
    ax.set_ylabel("C_ii in H's eigenbasis")
    ax.set_title(
        f"slope {noise.slope:.3g}, scale {noise.scale:.3g}: "
        f"{'holds' if noise.holds else 'does not hold'}",
        fontsize=9,
    )
    return fig, ax


def _rates(result: Any) -> tuple[Any, Any]:
    pred, meas = result.prediction, result.measured
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    labels = ["κH (paper)", "measured C", "measured C, level", "full C, k-D level", "white"]
    logs = [
        pred.log_rate_kappa,
        pred.log_rate_measured,
        pred.log_rate_level,
        pred.log_rate_full,
        pred.log_rate_white,
    ]
    ys = np.arange(len(labels))
    vals = [v / math.log(10) if math.isfinite(v) else np.nan for v in logs]
    ax.barh(ys, vals, color=["C1", "C2", "C4", "C3", "C7"], alpha=0.7, label="predicted")
    if meas is not None and meas.rate > 0:
        lo = math.log10(max(meas.rate_low, 1e-300))
        hi = math.log10(meas.rate_high)
        ax.axvspan(lo, hi, color="C0", alpha=0.25, label="measured 95%")
        ax.axvline(math.log10(meas.rate), color="C0", label="measured")
    elif meas is not None:
        ax.axvline(math.log10(meas.rate_high), color="C0", ls=":", label="measured upper bound")
    ax.set_yticks(ys, labels)
    ax.set_xlabel("log10 escape rate per iteration")
    ax.set_title(f"ΔL = {pred.barrier:.3g}, η = {pred.lr:g}, B = {pred.batch_size}", fontsize=9)
    return fig, ax


def plot_probe_cases(cases: Any, folder: Any) -> list[Any]:
    """``probe_rates.png``: per case of the registered probe experiment, the measured escape
    rate (95% interval) against the predicted rates (log10 per iteration)."""
    names = ("log_rate_kappa", "log_rate_level", "log_rate_full")
    labels = ("κH saddle", "C_ii level (1-D exact)", "full C level (k-D)")
    fig, ax = plt.subplots(figsize=(6.4, 1.2 + 1.1 * len(cases)))
    for row, case in enumerate(cases):
        m = case.measured
        if m.rate > 0:
            ax.plot(
                [math.log10(m.rate_low), math.log10(m.rate_high or m.rate)],
                [row, row],
                color="C0",
                lw=6,
                alpha=0.35,
                label="measured 95%" if row == 0 else None,
            )
            ax.plot(
                math.log10(m.rate), row, "o", color="C0", label="measured" if row == 0 else None
            )
        for j, (name, label) in enumerate(zip(names, labels, strict=True)):
            value = getattr(m, name)
            if value is not None:
                ax.plot(
                    value / math.log(10),
                    row + 0.15 * (j - 1),
                    "d",
                    color=f"C{j + 1}",
                    label=label if row == 0 else None,
                )
    ax.set_yticks(range(len(cases)), [c.label for c in cases], fontsize=8)
    ax.set_xlabel("log10 escape rate per iteration")
    ax.set_title("probe: measured escape against the predictions", fontsize=9)
    fig = _finish(fig, ax)
    path = folder / "probe_rates.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]
