"""Run an experiment end to end: points → sweep (resumable) → analysis → files and a verdict.

Output folder ``out/<experiment>/``: ``points.jsonl`` (every finished point, appended as it
ends), ``results.json`` (analysis, fits, verdict), ``results.csv`` (one row per point),
``figures/*.png``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from flatminima.errors import ParameterError

from ._store import OutputError, PointStore
from ._sweep import Executor, make_executor, run_sweep

__all__ = ["EXPERIMENT_NAMES", "run_experiment", "validate"]

EXPERIMENT_NAMES = (
    "covariance",
    "sharpness",
    "batch-size",
    "learning-rate",
    "selection",
)
"""The experiments that ``flatminima validate`` and [`validate`][flatminima.validation.validate]
run, in report order."""


def _registry() -> dict[str, Any]:
    from ._covariance import COVARIANCE
    from ._experiments import EXPERIMENTS

    return {**EXPERIMENTS, "covariance": COVARIANCE}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return _jsonable(value.item())
    return value


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in columns and not isinstance(value, dict | list):
                columns.append(key)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k) for k in columns})
    os.replace(tmp, path)


def run_experiment(
    name: str,
    out: str | Path,
    *,
    quick: bool = False,
    device: str = "cpu",
    executor: Executor | None = None,
    progress: bool = True,
    seed: int = 0,
    label: str | None = None,
) -> dict[str, Any]:
    """Run one experiment (resuming from ``out/<name>/points.jsonl``) and write its results.

    ``seed`` = 0 (the default) reproduces the recorded results; any other integer re-draws every
    point's seed (data, initialisation, noise) from it, so a rerun with another seed is an
    independent repetition. ``label`` names the experiment in progress lines.

    Returns the analysis with ``verdict`` = {"prediction", "held", "summary"}.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError("seed", "a non-negative integer", seed)
    registry = _registry()
    if name not in registry:
        raise ParameterError("experiment", f"one of {sorted(registry)}", name)
    _check_device(device)
    if not isinstance(out, str | Path) or not str(out):
        raise ParameterError("out", "a folder path", out)
    experiment = registry[name]
    folder = Path(out) / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            "out", "a folder that can be created and written", str(folder), _reason(exc)
        ) from None
    started = time.perf_counter()
    if progress:
        print(f"[{name}] {experiment.prediction}", flush=True)
    points = experiment.build(quick, device)
    if seed:
        from ._design import point_seed

        for point in points:
            if "seed" in point:
                point["seed"] = point_seed(seed, point["seed"])
    results = run_sweep(
        points,
        PointStore(folder / "points.jsonl"),
        executor or make_executor(),
        label=label or name,
        progress=progress,
    )
    analysis = experiment.analyse(points, results)
    from ._plots import plot_experiment

    figures = plot_experiment(name, analysis, folder / "figures")
    held = bool(analysis["held"])
    summary = "; ".join(_case_summary(case) for case in analysis.get("cases", []))
    analysis["verdict"] = {"prediction": experiment.prediction, "held": held, "summary": summary}
    analysis["figures"] = [str(p.relative_to(folder)) for p in figures]
    analysis["experiment"] = name
    analysis["quick"] = quick
    analysis["seconds"] = time.perf_counter() - started
    rows = analysis.pop("rows", [])
    try:
        _write_atomic(
            folder / "results.json", json.dumps(_jsonable(analysis), indent=2, ensure_ascii=False)
        )
        _write_csv(folder / "results.csv", rows)
    except OSError as exc:
        raise OutputError("out", "a writable folder", str(folder), _reason(exc)) from None
    if progress:
        print(f"[{name}] prediction {'HELD' if held else 'NOT HELD'}: {summary}", flush=True)
        print(f"[{name}] results: {folder / 'results.json'}", flush=True)
    analysis["rows"] = rows
    return analysis


def _check_device(device: Any) -> None:
    """A torch device string that names a device this machine has."""
    if not isinstance(device, str) or not device:
        raise ParameterError("device", "a torch device such as 'cpu' or 'cuda'", device)
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError("device", "an available device (no CUDA on this machine)", device)
    try:
        torch.empty(0, device=torch.device(device))
    except (RuntimeError, ValueError, TypeError, AssertionError) as exc:
        raise ParameterError(
            "device", "an available torch device such as 'cpu' or 'cuda:0'", device, _reason(exc)
        ) from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


def _case_summary(case: dict[str, Any]) -> str:
    where = "/".join(str(case[k]) for k in ("landscape", "model", "dataset", "noise") if k in case)
    verdict = "as predicted" if case.get("held") else "NOT as predicted"
    detail = case.get("preferred") or (
        f"slope {case['slope']:.3g} ± {case['slope_se']:.2g}" if "slope" in case else ""
    )
    return f"{where}: {detail} ({verdict})"


def validate(
    experiment: str,
    out: str | Path,
    *,
    quick: bool = False,
    device: str = "cpu",
    executor: Executor | None = None,
    progress: bool = True,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Run one experiment or ``"all"``; returns the analyses by experiment name.

    ``seed``: see [`run_experiment`][flatminima.validation.run_experiment].
    """
    names = EXPERIMENT_NAMES if experiment == "all" else (experiment,)
    return {
        n: run_experiment(
            n,
            out,
            quick=quick,
            device=device,
            executor=executor,
            progress=progress,
            seed=seed,
            label=f"{n} {i}/{len(names)}" if len(names) > 1 else n,
        )
        for i, n in enumerate(names, 1)
    }
