"""Sweeps: many independent points, one executor, results on disk as soon as each point ends.

- A *point* is a JSON-able dict that says everything about one computation, its seed included
  (seeds are per point, never per worker), so any executor gives the same numbers.
- `run_point` turns a point into a JSON-able result; it is a module-level function, so
  local processes and Dask workers can import it.
- [`PointStore`][flatminima.validation.PointStore] appends each finished point to
  ``points.jsonl`` (one checksummed line, flushed and fsynced) and reads them back: a rerun
  skips finished points, and a sweep killed with SIGKILL loses at most the points in flight.
  Lines that fail their checks are set aside with a warning and their points recomputed.
- Each point is *claimed* (a lock file) while it is computed, so sweeps started at once on the
  same folder share the points instead of computing each twice.
- Executors: ``serial`` (in process), ``processes`` (concurrent.futures with the spawn
  context, one torch thread per worker, workers that die with the sweep; the default),
  ``dask`` (a ``distributed`` scheduler address, or a ``LocalCluster`` of N workers on
  loopback).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

from flatminima.errors import ParameterError

from ._store import Claim, PointStore, caller_stacklevel, point_key

__all__ = [
    "SCHEDULER_TIMEOUT",
    "Executor",
    "PointStore",
    "SchedulerError",
    "make_executor",
    "point_key",
    "run_point",
    "run_sweep",
]

SCHEDULER_TIMEOUT = 5.0
"""Seconds to wait for a Dask scheduler to answer before `SchedulerError`."""

_POLL = 0.2  # seconds between looks at points another sweep is computing

Fn = Callable[[dict[str, Any]], dict[str, Any]]


class SchedulerError(ParameterError):
    """A Dask scheduler that cannot be reached, or that was lost in the middle of a sweep (the
    finished points are kept: rerun to resume)."""


def _spawn_can_import_main() -> bool:
    """Whether spawned workers can re-import ``__main__``: not when it was read from stdin
    (``python -``, ``__file__ == '<stdin>'``). A REPL or notebook has no ``__file__``: fine."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    return path is None or os.path.exists(path)


# ---------------------------------------------------------------------- workers
def _die_with_parent(parent: int | None) -> None:
    """Make this worker process end when its parent does, even if the parent is SIGKILLed.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (immediate; only where the parent spawned us
    from a thread that lives as long as the pool, as ProcessPoolExecutor does). Everywhere: a
    daemon thread that polls the parent pid (reparenting changes it) and exits within 0.25 s.
    ``parent`` is the pid that must be our parent (None: whichever it is now).
    """
    if parent is not None and sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    expected = os.getppid() if parent is None else parent
    if os.getppid() != expected:  # the parent died before we got here
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.25)
            if os.getppid() != expected:
                os._exit(1)

    threading.Thread(target=watch, name="flatminima-parent-watch", daemon=True).start()


def _worker_init(parent: int | None = None, watch_parent: bool = False) -> None:
    import torch

    torch.set_num_threads(1)
    if parent is not None or watch_parent:
        _die_with_parent(parent)


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


# ---------------------------------------------------------------------- pools
class _Pool(Protocol):
    """Where submitted points run; ``capacity`` points at a time."""

    @property
    def capacity(self) -> int: ...

    def submit(self, point: dict[str, Any]) -> None: ...

    def wait(self, timeout: float | None) -> list[tuple[dict[str, Any], dict[str, Any]]]: ...

    def close(self, failed: bool) -> None: ...


class _SerialPool:
    capacity = 1

    def __init__(self, fn: Fn) -> None:
        self.fn = fn
        self.queue: deque[dict[str, Any]] = deque()

    def submit(self, point: dict[str, Any]) -> None:
        self.queue.append(point)

    def wait(self, timeout: float | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        if not self.queue:
            return []
        point = self.queue.popleft()
        return [(point, self.fn(point))]

    def close(self, failed: bool) -> None:
        self.queue.clear()


class _ProcessPool:
    def __init__(self, fn: Fn, workers: int) -> None:
        import multiprocessing

        if getattr(multiprocessing.current_process(), "_inheriting", False):
            # A spawned worker re-importing a script without `if __name__ == "__main__":` has
            # reached the script's sweep. Leave quietly instead of multiprocessing's traceback;
            # the parent sees its workers die and finishes in process, with the explanation.
            raise SystemExit(1)
        self.fn = fn
        self.capacity = workers
        self.pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
            initargs=(os.getpid(),),
        )
        self.pending: dict[Future[dict[str, Any]], dict[str, Any]] = {}
        self.fallback: _SerialPool | None = None

    def submit(self, point: dict[str, Any]) -> None:
        if self.fallback is not None:
            self.fallback.submit(point)
        else:
            self.pending[self.pool.submit(self.fn, point)] = point

    def wait(self, timeout: float | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        if self.fallback is not None:
            return self.fallback.wait(timeout)
        finished, _ = wait(self.pending, timeout=timeout, return_when=FIRST_COMPLETED)
        out = []
        try:
            for future in finished:
                result = future.result()
                out.append((self.pending.pop(future), result))
        except BrokenProcessPool as exc:
            warnings.warn(
                f"the worker processes died ({exc}); running the remaining points in this "
                "process. If you call flatminima from a script, put the call under "
                "`if __name__ == '__main__':` (spawned workers re-import the script), or pass "
                "executor=make_executor(workers=1)",
                RuntimeWarning,
                stacklevel=caller_stacklevel(),
            )
            self.fallback = _SerialPool(self.fn)
            for point in self.pending.values():
                self.fallback.submit(point)
            self.pending.clear()
            self.pool.shutdown(wait=False, cancel_futures=True)
        return out

    def close(self, failed: bool) -> None:
        if failed:  # an error or an interrupt: stop the workers, their points are abandoned
            for process in list(getattr(self.pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    process.kill()
            self.pool.shutdown(wait=False, cancel_futures=True)
        else:
            self.pool.shutdown(wait=True)


class _DaskPool:
    def __init__(self, fn: Fn, scheduler: str | None, local_cluster: int | None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise ParameterError(
                "scheduler", "the 'distributed' package installed", scheduler
            ) from exc
        self.fn = fn
        self.cluster: Any = None
        if scheduler:
            self.address = scheduler
            try:
                self.client = Client(scheduler, timeout=SCHEDULER_TIMEOUT, set_as_default=False)
            except Exception as exc:  # OSError, TimeoutError, ValueError from the address parser
                raise SchedulerError(
                    "scheduler",
                    "the address of a running Dask scheduler, such as tcp://host:8786",
                    scheduler,
                    f"no answer within {SCHEDULER_TIMEOUT:g} s: {_one_line(exc)}",
                ) from None
            init: tuple[Any, ...] = ()
        else:
            self.cluster = LocalCluster(
                n_workers=local_cluster or 2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
            self.client = Client(self.cluster, set_as_default=False)
            self.address = self.cluster.scheduler_address
            init = (None, True)  # our own workers: they end with this process
        self.pending: dict[Any, dict[str, Any]] = {}
        self._news = threading.Event()
        self._capacity = (0.0, 1)
        try:
            self.client.run(_worker_init, *init)
        except Exception as exc:
            self.close(failed=True)
            raise self._lost(exc) from None

    def _lost(self, exc: BaseException) -> SchedulerError:
        return SchedulerError(
            "scheduler",
            "a Dask scheduler that stays reachable for the whole sweep",
            self.address,
            f"lost it: {_one_line(exc)}; the finished points are saved, rerun to resume",
        )

    @property
    def capacity(self) -> int:
        checked, value = self._capacity
        if time.monotonic() - checked > 2.0:
            try:
                value = max(1, sum(self.client.nthreads().values()))
            except Exception as exc:
                raise self._lost(exc) from None
            self._capacity = (time.monotonic(), value)
        return value

    def submit(self, point: dict[str, Any]) -> None:
        try:
            future = self.client.submit(self.fn, point, pure=False)
            future.add_done_callback(lambda _: self._news.set())
            self.pending[future] = point
        except Exception as exc:
            raise self._lost(exc) from None

    def wait(self, timeout: float | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._news.clear()
            finished = [f for f in self.pending if f.done()]
            left = None if deadline is None else deadline - time.monotonic()
            if finished or (left is not None and left <= 0):
                break
            # a done-callback wakes us; look again at least twice a second regardless
            self._news.wait(0.5 if left is None else min(left, 0.5))
        out = []
        for future in finished:
            if future.status == "error":
                future.result()  # the point's own error, raised as it is
            if future.status != "finished":  # cancelled: the scheduler went away
                raise self._lost(RuntimeError(f"the connection closed, tasks {future.status}"))
            try:
                result = future.result()
            except Exception as exc:
                raise self._lost(exc) from None
            out.append((self.pending.pop(future), result))
        return out

    def close(self, failed: bool) -> None:
        # after a failure (a lost scheduler, an error, an interrupt) the client's cancelled
        # reconnect attempts log tracebacks while it closes; the error raised says it all
        timeout = 2.0 if failed else SCHEDULER_TIMEOUT  # nothing left to wait for
        with _logging_off() if failed else contextlib.nullcontext():
            with contextlib.suppress(Exception):
                self.client.close(timeout=timeout)
            if self.cluster is not None:
                with contextlib.suppress(Exception):
                    self.cluster.close(timeout=timeout)


@contextlib.contextmanager
def _logging_off() -> Iterator[None]:
    """No log records at all (any logger) for the duration."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# ---------------------------------------------------------------------- executors
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

    def _open(self, fn: Fn, count: int) -> _Pool:
        """A pool for ``count`` points (serial where processes would not help or cannot
        start)."""
        if self.kind == "dask":
            return _DaskPool(fn, self.scheduler, self.local_cluster)
        workers = min(self.workers or _default_workers(), count)
        if self.kind == "serial" or workers <= 1 or not _spawn_can_import_main():
            # spawned workers re-import __main__; code read from stdin cannot be re-read
            return _SerialPool(fn)
        return _ProcessPool(fn, workers)

    def map_unordered(
        self, fn: Fn, points: list[dict[str, Any]]
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """``(point, fn(point))`` for every point, in the order they finish (no store, no
        claims)."""
        if not points:
            return
        pool = self._open(fn, len(points))
        failed = True
        try:
            queue, running = deque(points), 0
            while queue or running:
                while queue and running < pool.capacity:
                    pool.submit(queue.popleft())
                    running += 1
                for pair in pool.wait(None):
                    running -= 1
                    yield pair
            failed = False
        finally:
            pool.close(failed)


def _probe_scheduler(address: str) -> None:
    """Check that ``address`` parses as a Dask address and, for tcp/tls/ws/wss, that something
    accepts a connection there within `SCHEDULER_TIMEOUT` seconds (a bare TCP connect)."""
    try:
        from distributed.comm.addressing import parse_address, parse_host_port
        from distributed.comm.registry import backends
    except ImportError:  # the pool says the package is missing
        return
    expected = "the address of a running Dask scheduler, such as tcp://host:8786"
    try:
        scheme, location = parse_address(address)
        if scheme not in backends:
            raise ValueError(f"unknown scheme {scheme!r}: one of {', '.join(sorted(backends))}")
        if scheme in {"tcp", "tls", "ws", "wss"}:
            host, port = parse_host_port(location, default_port=8786)
            socket.create_connection((host, port), timeout=SCHEDULER_TIMEOUT).close()
    except (OSError, ValueError, TypeError) as exc:
        detail = _one_line(exc)
        if isinstance(exc, OSError):
            detail = f"nothing answers there within {SCHEDULER_TIMEOUT:g} s: {detail}"
        raise SchedulerError("scheduler", expected, address, detail) from None


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 2))


def make_executor(
    *, workers: int | None = None, scheduler: str | None = None, local_cluster: int | None = None
) -> Executor:
    """The executor the options ask for: Dask when ``scheduler`` or ``local_cluster`` is given,
    otherwise local processes (``workers`` = 0 or 1: serial).

    Parameters
    ----------
    workers
        Local processes (default None: the number of cores, at most 2, and no more than the
        points to run).
    scheduler
        Address of a running Dask scheduler (``"tcp://host:8786"``); default None.
    local_cluster
        Workers of a Dask LocalCluster started here; default None.
    """
    if scheduler is not None and local_cluster is not None:
        raise ParameterError(
            "scheduler", "either a scheduler address or a local cluster, not both", scheduler
        )
    if scheduler is not None:
        if (
            not isinstance(scheduler, str)
            or not scheduler.strip()
            or any(c.isspace() for c in scheduler)
        ):
            raise SchedulerError("scheduler", "an address such as tcp://host:8786", scheduler)
        _probe_scheduler(scheduler)
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


# ---------------------------------------------------------------------- the sweep
def run_sweep(
    points: list[dict[str, Any]],
    store: PointStore,
    executor: Executor,
    *,
    label: str = "sweep",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run the points not yet in ``store`` and return every point's result, in ``points`` order.

    Each point is claimed in ``store`` while it runs: another sweep on the same store (another
    process, now or later) skips it, and waits for its record instead of computing it again;
    a claim whose holder died is taken over.
    """
    done = store.load()
    todo = list({point_key(p): p for p in points if point_key(p) not in done}.values())
    if progress:
        print(
            f"  {label}: {len(points) - len(todo)} of {len(points)} points already done; "
            f"running {len(todo)} on {executor.describe()}",
            flush=True,
        )
    if todo:
        _run(todo, store, executor, done, label, progress)
    return [done[point_key(p)]["result"] for p in points]


def _run(
    todo: list[dict[str, Any]],
    store: PointStore,
    executor: Executor,
    done: dict[str, dict[str, Any]],
    label: str,
    progress: bool,
) -> None:
    queue: deque[dict[str, Any]] = deque(todo)
    deferred: list[dict[str, Any]] = []  # claimed by another sweep
    claims: dict[str, Claim] = {}
    told_waiting = False
    from ._progress import Progress, format_point

    bar = Progress(len(todo), label) if progress else None

    def report(point: dict[str, Any], result: dict[str, Any], note: str = "") -> None:
        if bar is not None:
            bar.update(format_point(point, result) + note)

    def take_news() -> None:  # records that other sweeps wrote meanwhile
        for key, record in store.refresh().items():
            if key not in done:
                done[key] = record
                if key in keys_todo and key not in claims:
                    report(record["point"], record["result"], " (by another sweep)")

    keys_todo = {point_key(p) for p in todo}
    pool = executor._open(run_point, len(todo))
    failed = True
    try:
        while queue or deferred or claims:
            while queue and len(claims) < pool.capacity:
                point = queue.popleft()
                key = point_key(point)
                if key in done:
                    continue
                claim = store.try_claim(point)
                if claim is None:
                    deferred.append(point)
                    continue
                take_news()  # it may have been finished just before we claimed it
                if key in done:
                    claim.release()
                    continue
                claims[key] = claim
                pool.submit(point)
            if claims:
                for point, result in pool.wait(_POLL if deferred else None):
                    key = point_key(point)
                    store.append(point, result)
                    claims.pop(key).release()
                    done[key] = {"point": point, "result": result}
                    report(point, result)
            elif deferred:
                if progress and not told_waiting:
                    print(
                        f"  {label}: waiting for {len(deferred)} point(s) that another sweep "
                        f"is computing (claims in {store.claims_dir})",
                        flush=True,
                    )
                    told_waiting = True
                time.sleep(_POLL)
            if deferred:  # look again: finished by the other sweep, or its claim released
                take_news()
                queue.extend(p for p in deferred if point_key(p) not in done)
                deferred = []
        failed = False
    finally:
        pool.close(failed)
        if bar is not None:
            bar.close()
        for claim in claims.values():
            claim.release()
        store.tidy()
