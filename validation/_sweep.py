"""Sweeps: many independent points, one executor, results on disk as soon as each point ends.

- A *point* is a typed, frozen [`Point`][flatminima.validation.Point] that says everything about
  one computation, its seed included (seeds are per point, never per worker), so any executor
  gives the same numbers; it is stored under its versioned key (``Point.key``).
- `run_point` runs a point and returns its result as a JSON-able record; it is a module-level
  function, so local processes and Dask workers can import it (a point pickles by its class,
  so a worker imports the module that defines it).
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
import dataclasses
import logging
import os
import signal
import socket
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

from flatminima.errors import ParameterError

from ._registry import JSONRecord, JSONValue, Point, point_from_dict
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

Fn = Callable[[Point], JSONRecord]


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


def run_point(point: Point) -> JSONRecord:
    """Compute one point (its ``run``); returns its result as the JSON record that is stored,
    with ``seconds``, the time it took."""
    start = time.perf_counter()
    result = point.run()
    return dataclasses.replace(result, seconds=time.perf_counter() - start).to_dict()  # type: ignore[type-var]


# ---------------------------------------------------------------------- pools
class _Pool(Protocol):
    """Where submitted points run; ``capacity`` points at a time."""

    @property
    def capacity(self) -> int: ...

    def submit(self, point: Point) -> None: ...

    def wait(self, timeout: float | None) -> list[tuple[Point, JSONRecord]]: ...

    def close(self, failed: bool) -> None: ...


class _SerialPool:
    capacity = 1

    def __init__(self, fn: Fn) -> None:
        self.fn = fn
        self.queue: deque[Point] = deque()

    def submit(self, point: Point) -> None:
        self.queue.append(point)

    def wait(self, timeout: float | None) -> list[tuple[Point, JSONRecord]]:
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
        self.pending: dict[Future[JSONRecord], Point] = {}
        self.fallback: _SerialPool | None = None

    def submit(self, point: Point) -> None:
        if self.fallback is not None:
            self.fallback.submit(point)
        else:
            self.pending[self.pool.submit(self.fn, point)] = point

    def wait(self, timeout: float | None) -> list[tuple[Point, JSONRecord]]:
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
        self.pending: dict[Any, Point] = {}
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

    def submit(self, point: Point) -> None:
        try:
            future = self.client.submit(self.fn, point, pure=False)
            future.add_done_callback(lambda _: self._news.set())
            self.pending[future] = point
        except Exception as exc:
            raise self._lost(exc) from None

    def wait(self, timeout: float | None) -> list[tuple[Point, JSONRecord]]:
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

    def map_unordered(self, fn: Fn, points: Sequence[Point]) -> Iterator[tuple[Point, JSONRecord]]:
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
def _typed(points: Sequence[Point | Mapping[str, JSONValue]]) -> list[Point]:
    """Typed points (a dict is read with ``point_from_dict``: dispatch on its ``"task"``)."""
    return [p if isinstance(p, Point) else point_from_dict(p) for p in points]


def run_sweep(
    points: Sequence[Point | Mapping[str, JSONValue]],
    store: PointStore,
    executor: Executor,
    *,
    label: str = "sweep",
    progress: bool = True,
) -> list[JSONRecord]:
    """Run the points not yet in ``store`` and return every point's result record, in
    ``points`` order (``point.result_from(record)`` types it again).

    Points are typed [`Point`][flatminima.validation.Point]s (or dicts with a registered
    ``"task"``); each is stored under ``point.key()``. Each point is claimed in ``store`` while
    it runs: another sweep on the same store (another process, now or later) skips it, and
    waits for its record instead of computing it again; a claim whose holder died is taken over.

    Parameters
    ----------
    points
        The points to run, typed or as dicts.
    store
        The JSON-lines store of finished records (the resume file).
    executor
        Where the points run (`make_executor()`).
    label
        Names the sweep in progress lines; default ``"sweep"``.
    progress
        Print how many points are already done and each one finished (a tqdm bar on a
        terminal, else lines); default True.

    Returns
    -------
    list
        Each point's result record, in ``points`` order.
    """
    typed = _typed(points)
    done = store.load()
    todo = list({p.key(): p for p in typed if p.key() not in done}.values())
    if progress:
        print(
            f"  {label}: {len(typed) - len(todo)} of {len(typed)} points already done; "
            f"running {len(todo)} on {executor.describe()}",
            flush=True,
        )
    if todo:
        _Sweep(todo, store, done, label, progress).run(executor)
    return [done[p.key()]["result"] for p in typed]


class _Sweep:
    """The points of one sweep still to compute, their claims, and the records written."""

    def __init__(
        self,
        todo: list[Point],
        store: PointStore,
        done: dict[str, JSONRecord],
        label: str,
        progress: bool,
    ) -> None:
        from ._progress import Progress

        self.queue: deque[Point] = deque(todo)
        self.points = {p.key(): p for p in todo}
        self.deferred: list[Point] = []  # claimed by another sweep
        self.claims: dict[str, Claim] = {}
        self.store, self.done, self.label, self.progress = store, done, label, progress
        self.told_waiting = False
        self.bar = Progress(len(todo), label) if progress else None

    def report(self, point: Point, result: JSONRecord, note: str = "") -> None:
        from ._progress import format_point

        if self.bar is not None:
            self.bar.update(format_point(point, result) + note)

    def take_news(self) -> None:
        """Records that other sweeps wrote meanwhile."""
        for key, record in self.store.refresh().items():
            if key not in self.done:
                self.done[key] = record
                if key in self.points and key not in self.claims:
                    self.report(self.points[key], record["result"], " (by another sweep)")

    def submit(self, pool: _Pool) -> None:
        """Claim and submit queued points while the pool has room."""
        while self.queue and len(self.claims) < pool.capacity:
            point = self.queue.popleft()
            key = point.key()
            if key in self.done:
                continue
            claim = self.store.try_claim(point.to_dict())
            if claim is None:
                self.deferred.append(point)
                continue
            self.take_news()  # it may have been finished just before we claimed it
            if key in self.done:
                claim.release()
                continue
            self.claims[key] = claim
            pool.submit(point)

    def collect(self, pool: _Pool) -> None:
        """Store what the pool finished, or wait for points another sweep holds."""
        if self.claims:
            for point, result in pool.wait(_POLL if self.deferred else None):
                key, record = point.key(), point.to_dict()
                self.store.append(record, result)
                self.claims.pop(key).release()
                self.done[key] = {"point": record, "result": result}
                self.report(point, result)
        elif self.deferred:
            if self.progress and not self.told_waiting:
                print(
                    f"  {self.label}: waiting for {len(self.deferred)} point(s) that another "
                    f"sweep is computing (claims in {self.store.claims_dir})",
                    flush=True,
                )
                self.told_waiting = True
            time.sleep(_POLL)
        if self.deferred:  # look again: finished by the other sweep, or its claim released
            self.take_news()
            self.queue.extend(p for p in self.deferred if p.key() not in self.done)
            self.deferred = []

    def run(self, executor: Executor) -> None:
        pool = executor._open(run_point, len(self.queue))
        failed = True
        try:
            while self.queue or self.deferred or self.claims:
                self.submit(pool)
                self.collect(pool)
            failed = False
        finally:
            pool.close(failed)
            if self.bar is not None:
                self.bar.close()
            for claim in self.claims.values():
                claim.release()
            self.store.tidy()
