"""Run an experiment end to end: points → sweep (resumable) → analysis → files and a verdict.

Output folder ``out/<experiment>/``: ``points.jsonl`` (every finished point, appended as it
ends), ``results.json`` (analysis, fits, verdict), ``results.csv`` (one row per point),
``figures/*.png``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict, Unpack

from flatminima.errors import ParameterError

from ._registry import (
    Analysis,
    Experiment,
    JSONValue,
    Point,
    Record,
    experiment_names,
    get_experiment,
)
from ._store import OutputError, PointStore
from ._sweep import Executor, make_executor, run_sweep

__all__ = ["EXPERIMENT_NAMES", "run_experiment", "validate"]

EXPERIMENT_NAMES = experiment_names()
"""The experiments shipped with flatminima, in report order (``flatminima validate all`` and
[`validate`][flatminima.validation.validate] with ``"all"`` run every registered one)."""


def _jsonable(value: JSONValue) -> JSONValue:
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


def _write_csv(path: Path, rows: Sequence[Record]) -> None:
    records = [row.to_dict() for row in rows]
    columns: list[str] = []
    for record in records:
        for key, value in record.items():
            if key not in columns and not isinstance(value, dict | list):
                columns.append(key)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow({k: record.get(k) for k in columns})
    os.replace(tmp, path)


def _check_arguments(device: str, out: str | Path) -> None:
    _check_device(device)
    if not isinstance(out, str | Path) or not str(out):
        raise ParameterError("out", "a folder path", out)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            "out", "a folder that can be created and written", str(folder), _reason(exc)
        ) from None


def _points(experiment: Experiment[Any, Any], quick: bool, device: str, seed: int) -> list[Point]:
    """The experiment's points; with ``seed`` > 0 every point seed re-drawn from it."""
    points = experiment.points(quick, device)
    if seed:
        from ._design import point_seed

        points = [
            dataclasses.replace(p, seed=point_seed(seed, p.seed)) if hasattr(p, "seed") else p
            for p in points
        ]
    return points


def _write_results(folder: Path, analysis: Analysis[Any]) -> None:
    try:
        _write_atomic(
            folder / "results.json",
            json.dumps(_jsonable(analysis.to_dict()), indent=2, ensure_ascii=False),
        )
        _write_csv(folder / "results.csv", analysis.rows)
    except OSError as exc:
        raise OutputError("out", "a writable folder", str(folder), _reason(exc)) from None


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
) -> Analysis[Any]:
    """Run one registered experiment (resuming from ``out/<name>/points.jsonl``) and write its
    results.

    Parameters
    ----------
    name
        A registered experiment's name (`experiment_names()`).
    out
        Output folder: the experiment writes ``out/<name>/`` (points, results, figures).
    quick
        The experiment's quick version (fewer, smaller points).
    device
        Torch device of the points that run torch: ``"cpu"`` (the default) or ``"cuda"``.
    executor
        Where the points run (default None: `make_executor()`, local processes).
    progress
        Print the prediction, the sweep's progress (a tqdm bar on a terminal, else lines) and
        the verdict; default True.
    seed
        0 (the default) reproduces the recorded results; any other integer re-draws every
        point's seed (data, initialisation, noise) from it, so a rerun with another seed is an
        independent repetition.
    label
        Names the experiment in progress lines (default None: its name).

    Returns
    -------
    Analysis
        The experiment's typed [`Analysis`][flatminima.validation.Analysis]: its cases,
        ``held`` and ``summary`` (the verdict), ``figures`` and ``seconds``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError("seed", "a non-negative integer", seed)
    experiment = get_experiment(name)
    name = experiment.name
    _check_arguments(device, out)
    folder = Path(out) / name
    _make_folder(folder)
    started = time.perf_counter()
    if progress:
        print(f"[{name}] {experiment.prediction}", flush=True)
    points = _points(experiment, quick, device, seed)
    records = run_sweep(
        points,
        PointStore(folder / "points.jsonl"),
        executor or make_executor(),
        label=label or name,
        progress=progress,
    )
    analysis = experiment.analyse(
        points, [p.result_from(r) for p, r in zip(points, records, strict=True)]
    )
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    figures = experiment.figures(analysis, folder / "figures")
    analysis.experiment, analysis.prediction, analysis.quick = name, experiment.prediction, quick
    analysis.figures = [str(p.relative_to(folder)) for p in figures]
    analysis.seconds = time.perf_counter() - started
    _write_results(folder, analysis)
    if progress:
        verdict = "HELD" if analysis.held else "NOT HELD"
        print(f"[{name}] prediction {verdict}: {analysis.summary}", flush=True)
        print(f"[{name}] results: {folder / 'results.json'}", flush=True)
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


class RunOptions(TypedDict, total=False):
    """The options `validate` passes on to every `run_experiment`."""

    quick: bool
    device: str
    executor: Executor | None
    progress: bool
    seed: int


def validate(
    experiment: str, out: str | Path, **options: Unpack[RunOptions]
) -> dict[str, Analysis[Any]]:
    """Run one registered experiment or ``"all"``; returns the analyses by experiment name.

    ``options``: ``quick``, ``device``, ``executor``, ``progress``, ``seed``, as
    [`run_experiment`][flatminima.validation.run_experiment] takes them (same defaults).
    """
    names = experiment_names() if experiment == "all" else (get_experiment(experiment).name,)
    return {
        n: run_experiment(n, out, **options, label=f"{n} {i}/{len(names)}" if len(names) > 1 else n)
        for i, n in enumerate(names, 1)
    }
