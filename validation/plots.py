"""Plot helpers that return matplotlib Figures, and ``save_figure`` for PNG, PDF and SVG.

- [`plot_tau`][flatminima.validation.plot_tau]: the derived log τ against sharpness k, batch
  size B or learning rate η, from the compiled formula;
- [`plot_comparison`][flatminima.validation.plot_comparison]: an experiment's measured rates
  (95% intervals) beside the formula and the exact MFPT, from its ``results.json``;
- [`save_figure`][flatminima.validation.save_figure]: one figure as ``.png``, ``.pdf`` and
  ``.svg`` (for papers).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from flatminima.errors import ParameterError

from ._registry import JSONRecord

__all__ = ["plot_comparison", "plot_tau", "save_figure"]

_WRT = {
    "sharpness": "k",
    "k": "k",
    "batch_size": "B",
    "batch-size": "B",
    "b": "B",
    "lr": "eta",
    "eta": "eta",
}
_LABELS = {"k": "sharpness k", "B": "batch size B", "eta": "learning rate η"}


def _pyplot() -> Any:
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg") and not _interactive():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _interactive() -> bool:
    import sys

    return "ipykernel" in sys.modules


def plot_tau(
    noise: Any,
    wrt: str,
    values: Iterable[float],
    *,
    interpretation: str = "ito",
    **params: float,
) -> Any:
    """log τ (derived formula) against one variable; returns a matplotlib Figure.

    Parameters
    ----------
    noise
        ``"white"``, ``"sgd"``, ``"loss-dependent"``, or a 1-D
        [`Derivation`][flatminima.theory.Derivation].
    wrt
        ``"sharpness"`` (k multiplies H_a and H_b: L_k(θ) = L(√k θ)), ``"batch-size"`` or
        ``"lr"`` (``batch_size``, ``B``, ``eta`` are accepted too).
    values
        The values of that variable.
    interpretation
        When ``noise`` is a name: ``"ito"`` (default), ``"stratonovich"``, ``"anti-ito"``.
    **params
        The other parameters, by the formula's names (``H_a``, ``H_b``, ``Delta_L``, ``eta``,
        ``B``, ``s``, ``D``) or escape_time's (``barrier``, ``lr``, ``batch_size``,
        ``diffusion``).
    """
    from flatminima.theory import derive_escape_time
    from flatminima.theory._compile import ALIASES

    key = _WRT.get(str(wrt).lower()) if isinstance(wrt, str) else None
    if key is None:
        raise ParameterError("wrt", "one of 'sharpness', 'batch-size', 'lr'", wrt)
    derivation = (
        derive_escape_time(noise, dim=1, interpretation=interpretation)
        if isinstance(noise, str)
        else noise
    )
    x = np.asarray(list(values), dtype=float)
    if x.ndim != 1 or x.size < 2 or not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ParameterError("values", "at least two positive finite numbers", values)
    named = {ALIASES.get(k, k): v for k, v in params.items()}
    names = [p.name for p in derivation.parameters]
    if key != "k" and key not in names:
        raise ParameterError("wrt", f"a variable of this formula {names}", wrt)
    arguments: dict[str, np.ndarray] = {}
    for name in names:
        if name == key:
            arguments[name] = x
        elif name in named:
            arguments[name] = np.full_like(x, float(named[name]))
        else:
            raise ParameterError(name, f"a value for every parameter {names}", None)
    if key == "k":
        for name in names:
            if name.startswith("H_"):
                arguments[name] = arguments[name] * x
    log_tau = np.asarray(derivation.compile("numpy").log_tau(**arguments), dtype=float)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot(x, log_tau, "o-", label=f"{derivation.noise}, {derivation.interpretation}")
    ax.set_xlabel(_LABELS[key])
    ax.set_ylabel("log τ (τ in η·iterations)")
    if key in ("k", "eta"):
        ax.set_xscale("log")
    ax.set_title(f"derived escape time against {_LABELS[key]}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_comparison(results: str | Path | JSONRecord, *, case: int = 0) -> Any:
    """Measured rates (95% intervals) against the formula and the exact MFPT; returns a Figure.

    Parameters
    ----------
    results
        An experiment's ``results.json`` (path or loaded dict) from ``sharpness``,
        ``batch-size`` or ``learning-rate``.
    case
        Which case (index into ``results["cases"]``) to plot (default 0, the first).
    """
    data = results
    if isinstance(results, str | Path):
        try:
            data = json.loads(Path(results).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ParameterError(
                "results", "a readable results.json", str(results), str(exc)
            ) from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise ParameterError("results", "an experiment's results (with 'cases')", type(data))
    cases = [c for c in data["cases"] if isinstance(c, dict) and c.get("points")]
    if not 0 <= case < len(cases):
        raise ParameterError("case", f"an index in [0, {len(cases)})", case)
    chosen = cases[case]
    rows: Sequence[JSONRecord] = chosen["points"]
    key = next((k for k in ("k", "B", "eta") if k in rows[0]), None)
    if key is None or "rate" not in rows[0]:
        raise ParameterError("results", "points with a rate and k, B or eta", list(rows[0]))
    x = np.array([float(r[key]) for r in rows])
    xx, label = (1 / x, f"1/{key}") if key in ("k", "eta") else (x, key)
    rate = np.array([float(r["rate"]) for r in rows])
    low = np.array([max(float(r["rate_low" if "rate_low" in r else "rate"]), 1e-300) for r in rows])
    high = np.array([float(r["rate_high" if "rate_high" in r else "rate"]) for r in rows])
    y = np.log(np.maximum(rate, 1e-300))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.errorbar(xx, y, yerr=[y - np.log(low), np.log(high) - y], fmt="o", label="measured (95%)")
    if all(r.get("formula_rate") for r in rows):
        ax.plot(xx, np.log([float(r["formula_rate"]) for r in rows]), "--", label="formula")
    if all(r.get("exact_rate") for r in rows):
        ax.plot(xx, np.log([float(r["exact_rate"]) for r in rows]), "-", label="exact MFPT")
    where = "/".join(str(chosen[k]) for k in ("landscape", "model", "noise") if k in chosen)
    ax.set_title(f"{data.get('experiment', '')} {where}".strip(), fontsize=9)
    ax.set_xlabel(label)
    ax.set_ylabel("log γ per iteration")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(
    fig: Any, stem: str | Path, *, formats: Sequence[str] = ("png", "pdf", "svg"), dpi: int = 150
) -> list[Path]:
    """Write ``fig`` as ``stem.png``, ``stem.pdf`` and ``stem.svg`` (or ``formats``); returns
    the paths.

    Parameters
    ----------
    fig
        A matplotlib Figure.
    stem
        The path without suffix; missing folders are created.
    formats
        Any of ``"png"``, ``"pdf"``, ``"svg"`` (default all three).
    dpi
        Resolution of the PNG (default 150).
    """
    allowed = ("png", "pdf", "svg")
    if isinstance(formats, str) or not formats or any(f not in allowed for f in formats):
        raise ParameterError("formats", f"a sequence of {allowed}", formats)
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        fig.savefig(path, dpi=dpi)
        paths.append(path)
    return paths
