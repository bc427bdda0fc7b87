"""Escape engine, backend piece: the few array operations the steppers need and their seeded
generators, for numpy or torch (torch imported only when asked for).

numpy: ``RNG_STREAMS`` SFC64 streams spawned from the seed (which step draws from which stream:
`_engine_normals`); torch: one ``torch.Generator``.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["RNG_STREAMS", "Ops", "finish_fills", "submit_fills", "to_numpy"]

#: Independent random streams per simulation (numpy backend). Fixed, not the core count, so
#: that a seed gives the same numbers on every machine; they are filled in parallel threads.
RNG_STREAMS = 2

_POOL: ThreadPoolExecutor | None = None
_NO_POOL = False
_POOL_LOCK = threading.Lock()


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _rng_pool() -> ThreadPoolExecutor | None:
    """The worker threads that fill random streams: one per stream beyond the caller's own core
    (the calling thread steps the paths, or fills a share itself), so that no more threads run
    than there are cores; None on one core (everything is filled in the calling thread).

    On 2 cores a third thread cost more than it saved: measured on this project's 2-core
    machine, with two workers beside the stepping thread a 10-D run took 1.2–1.35× as long as
    with one worker and the caller taking the fills it had not started (`finish_fills`).
    """
    global _POOL, _NO_POOL
    if _POOL is None and not _NO_POOL:
        with _POOL_LOCK:  # one pool even when several threads start simulations at once
            if _POOL is None and not _NO_POOL:
                workers = min(RNG_STREAMS, _usable_cores() - 1)
                if workers < 1:
                    _NO_POOL = True
                else:
                    _POOL = ThreadPoolExecutor(
                        max_workers=workers, thread_name_prefix="flatminima-rng"
                    )
    return _POOL


def submit_fills(
    pool: ThreadPoolExecutor, tasks: Sequence[Callable[[], object]]
) -> list[Future[Any]]:
    """Submit ``tasks`` to ``pool`` in order, one future each. A task the pool refuses (it is
    shut down, as in an ``atexit`` handler at interpreter exit) runs here, now, and gets a
    finished future, so that the caller never sees the pool's RuntimeError."""
    futures: list[Future[Any]] = []
    for task in tasks:
        try:
            futures.append(pool.submit(task))
        except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown"
            done: Future[Any] = Future()
            for earlier in futures:  # accepted before the shutdown: they still run, in order
                earlier.result()
            task()
            done.set_result(None)
            futures.append(done)
    return futures


def finish_fills(tasks: Sequence[Callable[[], object]], futures: Sequence[Future[Any]]) -> None:
    """Wait for ``futures`` (``tasks`` submitted to the pool, in order), doing in this thread,
    last first, each task no worker has started yet (a worker takes them first to last, so the
    caller and the workers meet in the middle; each task still runs exactly once). Call it once
    per submission. If a task run here raises, the fills not started are cancelled and the
    running ones waited for before the error propagates (nothing keeps writing afterwards)."""
    if len(tasks) != len(futures):
        raise ValueError(f"finish_fills: {len(tasks)} tasks but {len(futures)} futures")
    try:
        for task, future in zip(reversed(tasks), reversed(futures), strict=True):
            if future.cancel():
                task()
    except BaseException:
        for future in futures:
            future.cancel()
        for future in futures:
            if not future.cancelled():
                future.exception()  # wait; the caller's own error is the one reported
        raise
    for future in futures:
        if not future.cancelled():
            future.result()


def to_numpy(value: Any) -> np.ndarray:
    """A numpy array of a numpy array or a torch tensor (detached, on the CPU)."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


class Ops:
    """The array operations of one backend ("numpy" or "torch") with its seeded generator(s)."""

    rng: Any
    dtype: Any

    def __init__(self, backend: str, seed: int, device: Any = "cpu", dtype: Any = None) -> None:
        self.backend = backend
        if backend == "numpy":
            # SFC64: a fast, well-tested generator (about 1.3× PCG64's normals here), in
            # RNG_STREAMS independent streams (SeedSequence.spawn) that fill their share of each
            # block in parallel threads (numpy releases the GIL while it fills)
            self.rngs = [
                np.random.Generator(np.random.SFC64(s))
                for s in np.random.SeedSequence(seed).spawn(RNG_STREAMS)
            ]
            self.dtype = np.float64 if dtype is None else dtype
        else:
            import torch

            self.torch = torch
            self.device = torch.device(device)
            self.dtype = torch.float64 if dtype is None else dtype
            self.rng = torch.Generator(device=self.device)
            self.rng.manual_seed(seed)

    def array(self, value: Any) -> Any:
        if self.backend == "numpy":
            return np.array(value, dtype=self.dtype)
        return self.torch.as_tensor(
            np.asarray(value, dtype=np.float64), dtype=self.dtype, device=self.device
        )

    def normal(self, shape: tuple[int, ...]) -> Any:
        if self.backend == "numpy":
            out = np.empty(shape, dtype=self.dtype)
            flat = out.reshape(-1)
            cut = np.linspace(0, flat.size, RNG_STREAMS + 1).astype(int)
            shares = [flat[a:b] for a, b in itertools.pairwise(cut)]
            tasks = [
                functools.partial(rng.standard_normal, out=share, dtype=self.dtype)
                for rng, share in zip(self.rngs, shares, strict=True)
            ]
            pool = _rng_pool()
            if flat.size < 1 << 16 or pool is None:  # small: threads cost more than they save
                for task in tasks:
                    task()
            else:  # the workers take shares first to last, this thread the unstarted ones
                finish_fills(tasks, submit_fills(pool, tasks))
            return out
        return self.torch.randn(shape, generator=self.rng, dtype=self.dtype, device=self.device)

    def randint(self, high: int, shape: tuple[int, ...]) -> Any:
        """Uniform integers in [0, high) (minibatch indices, drawn with replacement)."""
        if self.backend == "numpy":
            return self.rngs[0].integers(high, size=shape)
        return self.torch.randint(high, shape, generator=self.rng, device=self.device)

    def subsets(self, high: int, rows: int, size: int) -> Any:
        """``rows`` independent uniform random subsets of ``size`` indices from range(high),
        without replacement (minibatches drawn without replacement), by Floyd's algorithm
        vectorized over the rows: O(rows·size²) work, not O(rows·high)."""
        if self.backend == "numpy":
            rng = self.rngs[0]
            return _floyd(rows, high, size, lambda: rng.random(rows), np)
        torch = self.torch

        def uniform() -> Any:
            return torch.rand(rows, generator=self.rng, device=self.device, dtype=torch.float64)

        return _floyd(rows, high, size, uniform, torch, self.device)

    def to_numpy(self, value: Any) -> np.ndarray:
        return to_numpy(value)

    def nonzero(self, mask: Any) -> np.ndarray:
        return np.flatnonzero(self.to_numpy(mask))

    def count(self, mask: Any) -> int:
        return int(mask.sum())

    def all_finite(self, value: Any) -> bool:
        if self.backend == "numpy":
            return bool(np.isfinite(value).all())
        return bool(self.torch.isfinite(value).all())

    def sqrt(self, value: Any) -> Any:
        return np.sqrt(value) if self.backend == "numpy" else self.torch.sqrt(value)

    def cholesky(self, value: Any) -> Any:
        return (
            np.linalg.cholesky(value)
            if self.backend == "numpy"
            else self.torch.linalg.cholesky(value)
        )

    def keep_rows(self, x: Any, keep: np.ndarray) -> Any:
        """The rows of x where the boolean numpy array ``keep`` is True."""
        if self.backend == "numpy":
            return x[keep]
        return x[self.torch.as_tensor(keep, device=x.device)]


def _floyd(rows: int, high: int, size: int, uniform: Any, xp: Any, device: Any = None) -> Any:
    """Floyd's algorithm for ``rows`` subsets at once (``xp`` numpy or torch; ``uniform()``
    gives ``rows`` uniforms in [0, 1)): for j = high − size … high − 1 draw t uniform in
    [0, j] and take t, or j when t is already in the row's subset."""
    if xp is np:
        sel = np.empty((rows, size), dtype=np.int64)
    else:
        sel = xp.empty((rows, size), dtype=xp.long, device=device)
    for c, j in enumerate(range(high - size, high)):
        t = (uniform() * (j + 1)).astype(np.int64) if xp is np else (uniform() * (j + 1)).long()
        t = np.minimum(t, j) if xp is np else t.clamp_max(j)
        if c:
            dup = (sel[:, :c] == t[:, None]).any(1)
            t = xp.where(dup, j, t) if xp is np else xp.where(dup, xp.full_like(t, j), t)
        sel[:, c] = t
    return sel
