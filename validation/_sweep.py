"""Sweeps: many independent points, one executor, results on disk as soon as each point ends.

- A *point* is a JSON-able dict that says everything about one computation, its seed included
  (seeds are per point, never per worker), so any executor gives the same numbers.
- `run_point` turns a point into a JSON-able result; it is a module-level function, so
  local processes and Dask workers can import it.
- [`PointStore`][flatminima.validation.PointStore] appends each finished point to ``points.jsonl`` (one line, flushed and
  fsynced) and reads them back: a rerun skips finished points, and a sweep killed with SIGKILL
  loses at most the points in flight. A torn last line (killed mid-write) is ignored.
- Executors: ``serial`` (in process), ``processes`` (concurrent.futures with the spawn
  context, one torch thread per worker; the default), ``dask`` (a ``distributed`` scheduler
  address, or a ``LocalCluster`` of N workers on loopback).
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flatminima.errors import ParameterError

__all__ = ["Executor", "PointStore", "make_executor", "point_key", "run_point", "run_sweep"]


def point_key(point: dict[str, Any]) -> str:
    """Canonical text of a point: the identity under which its result is stored."""
    return json.dumps(point, sort_keys=True, separators=(",", ":"))


class PointStore:
    """Append-only JSONL of finished points: ``{"key": ..., "point": ..., "result": ...}``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def load(self) -> dict[str, dict[str, Any]]:
        done: dict[str, dict[str, Any]] = {}
        if not self.path.exists():
            return done
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line torn by a kill: the point reruns
                    continue
                done[record["key"]] = record
        return done

    def append(self, point: dict[str, Any], result: dict[str, Any]) -> None:
        line = json.dumps(
            {"key": point_key(point), "point": point, "result": result}, sort_keys=True
        )
        data = (line + "\n").encode("utf-8")
        with self.path.open("a+b") as handle:
            # a line torn by a kill has no newline: end it, or this record would be glued to it
            if handle.seek(0, os.SEEK_END) > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    data = b"\n" + data
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def _spawn_can_import_main() -> bool:
    """Whether spawned workers can re-import ``__main__``: not when it was read from stdin
    (``python -``, ``__file__ == '<stdin>'``). A REPL or notebook has no ``__file__``: fine."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    return path is None or os.path.exists(path)


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside flatminima (the
    user's call), however deep the generators and experiment code in between."""
    files = [
        getattr(module, "__file__", None)
        for name, module in list(sys.modules.items())
        if name.split(".")[0] == "flatminima"
    ]
    ours = {Path(f).resolve().parent for f in files if f}
    frame: Any = sys._getframe(1)
    level = 1
    while frame is not None and Path(frame.f_code.co_filename).resolve().parent in ours:
        frame, level = frame.f_back, level + 1
    return level


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def run_point(point: dict[str, Any]) -> dict[str, Any]:
    """Compute one point (dispatch on ``point["task"]``)."""
    from ._tasks import TASKS

    task = point.get("task")
    if task not in TASKS:
        raise ParameterError("task", f"one of {sorted(TASKS)}", task)
    start = time.perf_counter()
    result = TASKS[task](point)
    result["seconds"] = time.perf_counter() - start
    return result


@dataclass
class Executor:
    """Where points run: ``kind`` is "serial", "processes" or "dask"."""

    kind: str = "processes"
    workers: int | None = None
    scheduler: str | None = None
    local_cluster: int | None = None

    def describe(self) -> str:
        if self.kind == "dask":
            return f"dask ({self.scheduler or f'LocalCluster({self.local_cluster})'})"
        if self.kind == "processes":
            return f"local processes ({self.workers or _default_workers()})"
        return "serial"

    def map_unordered(
        self, fn: Callable[[dict[str, Any]], dict[str, Any]], points: list[dict[str, Any]]
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        if not points:
            return
        if (
            self.kind == "serial"
            or (self.kind == "processes" and (self.workers or _default_workers()) <= 1)
            or (len(points) == 1 and self.kind == "processes")
        ):
            for point in points:
                yield point, fn(point)
            return
        if self.kind == "processes":
            if not _spawn_can_import_main():
                # spawned workers re-import __main__; code read from stdin cannot be re-read
                for point in points:
                    yield point, fn(point)
                return
            yield from self._processes(fn, points)
            return
        yield from self._dask(fn, points)

    def _processes(
        self, fn: Callable[[dict[str, Any]], dict[str, Any]], points: list[dict[str, Any]]
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        import multiprocessing

        if getattr(multiprocessing.current_process(), "_inheriting", False):
            # A spawned worker re-importing a script without `if __name__ == "__main__":` has
            # reached the script's sweep. Leave quietly instead of multiprocessing's traceback;
            # the parent sees its workers die and finishes in process, with the explanation.
            raise SystemExit(1)
        workers = min(self.workers or _default_workers(), len(points))
        context = multiprocessing.get_context("spawn")
        left = {point_key(p): p for p in points}
        try:
            with ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=_worker_init
            ) as pool:
                pending = {pool.submit(fn, point): point for point in points}
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        point = pending.pop(future)
                        result = future.result()
                        left.pop(point_key(point), None)
                        yield point, result
        except BrokenProcessPool as exc:
            warnings.warn(
                f"the worker processes died ({exc}); running the {len(left)} remaining points "
                "in this process. If you call flatminima from a script, put the call under "
                "`if __name__ == '__main__':` (spawned workers re-import the script), or pass "
                "executor=make_executor(workers=1)",
                RuntimeWarning,
                stacklevel=_caller_stacklevel(),
            )
            for point in left.values():
                yield point, fn(point)

    def _dask(
        self, fn: Callable[[dict[str, Any]], dict[str, Any]], points: list[dict[str, Any]]
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        try:
            from distributed import Client, LocalCluster, as_completed
        except ImportError as exc:
            raise ParameterError(
                "scheduler", "the 'distributed' package installed", self.scheduler
            ) from exc
        cluster = None
        if self.scheduler:
            client = Client(self.scheduler)
        else:
            cluster = LocalCluster(
                n_workers=self.local_cluster or 2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
            client = Client(cluster)
        try:
            client.run(_worker_init)
            futures = {client.submit(fn, point, pure=False): point for point in points}
            for future in as_completed(list(futures)):
                yield futures[future], future.result()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 2))


def make_executor(
    workers: int | None = None, scheduler: str | None = None, local_cluster: int | None = None
) -> Executor:
    """The executor the options ask for: Dask when ``scheduler`` or ``local_cluster`` is given,
    otherwise local processes (``workers`` = 0 or 1: serial)."""
    if scheduler is not None and local_cluster is not None:
        raise ParameterError(
            "scheduler", "either a scheduler address or a local cluster, not both", scheduler
        )
    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler:
            raise ParameterError("scheduler", "an address such as tcp://host:8786", scheduler)
        return Executor("dask", scheduler=scheduler)
    if local_cluster is not None:
        if (
            isinstance(local_cluster, bool)
            or not isinstance(local_cluster, int)
            or local_cluster < 1
        ):
            raise ParameterError("local_cluster", "a positive number of workers", local_cluster)
        return Executor("dask", local_cluster=local_cluster)
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 0
    ):
        raise ParameterError("workers", "a non-negative integer", workers)
    if workers is not None and workers <= 1:
        return Executor("serial")
    return Executor("processes", workers=workers)


def run_sweep(
    points: list[dict[str, Any]],
    store: PointStore,
    executor: Executor,
    *,
    label: str = "sweep",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run the points not yet in ``store`` and return every point's result, in ``points`` order."""
    done = store.load()
    todo = [p for p in points if point_key(p) not in done]
    if progress:
        print(
            f"  {label}: {len(points) - len(todo)} of {len(points)} points already done; "
            f"running {len(todo)} on {executor.describe()}",
            flush=True,
        )
    from ._progress import Progress, format_point

    bar = Progress(len(todo), label) if progress else None
    try:
        for point, result in executor.map_unordered(run_point, todo):
            store.append(point, result)
            done[point_key(point)] = {"point": point, "result": result}
            if bar is not None:
                bar.update(format_point(point, result))
    finally:
        if bar is not None:
            bar.close()
    return [done[point_key(p)]["result"] for p in points]
