"""Escape engine, random-number piece: the standard normals ξ of each Euler–Maruyama step.

- `StreamNormals` (numpy, ``normals="block"``, what `simulate_escape` uses): step k of a run
  (k = 0, 1, …) draws its (rows, dim) normals from SFC64 stream k mod ``RNG_STREAMS``, each
  stream in order. Which number a step gets depends only on the seed, the rows at the start
  and dim: not on how many steps are generated at once, nor on the threads. The normals are
  generated a chunk of steps at a time (at most ``CHUNK`` per stream, so a chunk stays in the
  processor's cache). A large chunk is generated in worker threads (one per stream beyond the
  calling thread's core, `_engine_backend._rng_pool`) while the current chunk is used; when
  the caller reaches a chunk whose streams no worker has started, it fills them itself.
- `BlockNormals` (torch, ``normals="block"``): one ``randn`` of many steps at a time into a
  reused buffer.
- `StepNormals` (``normals="step"``, the validation layer's measurements): one
  ``randn(x.shape)`` per step, the draws its recorded experiments were made with.

After compaction (escaped paths removed) a step takes the first rows of its normals.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

from . import _engine_backend
from ._engine_backend import RNG_STREAMS, Ops, finish_fills, submit_fills

__all__ = ["CHUNK", "BlockNormals", "StepNormals", "StreamNormals"]

#: Normals per stream in one chunk, at most (unless one step needs more): 1 MiB of float64, so
#: a chunk and the one generated behind it (2 streams each) stay in the L3 cache.
CHUNK = 1 << 17
#: Below this many normals per stream a chunk is generated in the calling thread (threads
#: would cost more than they save); the numbers are the same either way.
_THREADS_FROM = 1 << 14
#: Up to this many normals per step the next chunk is generated while the current one is used
#: (two buffers); above it, one buffer (4 float64 per coordinate would be too much memory).
_OVERLAP = 1 << 20


def _fill(rng: np.random.Generator, out: np.ndarray, scale: Any) -> None:
    """Standard normals into ``out`` (in the stream's order), times ``scale`` unless None."""
    rng.standard_normal(out=out, dtype=out.dtype)
    if scale is not None:
        np.multiply(out, scale, out=out)


class StreamNormals:
    """numpy: step k's normals from stream k mod ``RNG_STREAMS`` (see the module docstring),
    multiplied by ``scale`` (the constant noise factor) when given.

    A chunk of m steps per stream is an array (streams, m, rows, dim); step j of the chunk is
    ``chunk[j % streams, j // streams]``. The chunk sizes grow 1, 2, 4, … steps per stream up
    to ``CHUNK`` normals (a short run does not generate far beyond its end).
    """

    def __init__(self, ops: Ops, dim: int, scale: Any = None) -> None:
        self.rngs, self.dtype = ops.rngs, ops.dtype
        self.dim, self.scale = dim, scale
        self.rows = 0  # rows of every step's normals (the batch at the first step)
        self.slabs: list[np.ndarray] = []  # the current chunk's steps, in order
        self.position = 0
        self.steps = 1  # steps per stream of the next chunk
        self.most = 1  # … and at most
        self.buffers: list[np.ndarray] = []
        self.pending: tuple[np.ndarray, list[Callable[[], None]], list[Future[None]]] | None
        self.pending = None

    def next(self, rows: int) -> np.ndarray:
        if self.position == len(self.slabs):
            self._advance(rows)
        slab = self.slabs[self.position]
        self.position += 1
        return slab if rows == self.rows else slab[:rows]

    def _advance(self, rows: int) -> None:
        if not self.rows:
            self.rows = rows
            width = rows * self.dim
            self.most = max(1, CHUNK // width)
            # two buffers, the next chunk generated into one while the other is used; one
            # when a step alone is large (memory; the two streams still fill it in parallel)
            shape = (RNG_STREAMS, self.most, rows, self.dim)
            count = 1 if width > _OVERLAP else 2
            self.buffers = [np.empty(shape, self.dtype) for _ in range(count)]
        elif rows > self.rows:
            raise RuntimeError("StreamNormals: more rows than at the first step")
        if self.pending is None:
            self.pending = self._start()
        chunk, tasks, futures = self.pending
        if not futures:  # small, or one core: generated here, now
            for task in tasks:
                task()
        else:  # the streams no worker has started yet are filled here
            finish_fills(tasks, futures)
        self.slabs = [chunk[s, i] for i in range(chunk.shape[1]) for s in range(RNG_STREAMS)]
        self.position = 0
        # with two buffers, the next chunk is generated into the other one now (each
        # stream's previous fill has finished, so every stream stays in order)
        self.buffers.reverse()
        self.pending = self._start() if len(self.buffers) > 1 else None

    def close(self) -> None:
        """Stop generating ahead: the chunk not started yet is dropped (the run is over)."""
        if self.pending is not None:
            for future in self.pending[2]:
                future.cancel()
        self.pending = None

    def _start(self) -> tuple[np.ndarray, list[Callable[[], None]], list[Future[None]]]:
        """Begin generating the next chunk (in the worker threads when it is large)."""
        m = self.steps
        self.steps = min(2 * m, self.most)
        chunk = self.buffers[0][:, :m]
        tasks: list[Callable[[], None]] = [
            functools.partial(_fill, rng, share, self.scale)
            for rng, share in zip(self.rngs, chunk, strict=True)
        ]
        pool = _engine_backend._rng_pool()
        if m * self.rows * self.dim < _THREADS_FROM or pool is None:
            return chunk, tasks, []
        return chunk, tasks, submit_fills(pool, tasks)


class BlockNormals:
    """Standard normals generated a block of steps at a time (one RNG call per block, into a
    reused buffer); after compaction a step takes the first rows of its slice."""

    def __init__(self, ops: Ops, dim: int, budget: int = 1 << 21) -> None:
        self.ops, self.dim, self.budget = ops, dim, budget
        self.buffer: Any = None
        self.position = 0

    def next(self, rows: int) -> Any:
        if (
            self.buffer is None
            or self.position == self.buffer.shape[0]
            or rows > self.buffer.shape[1]
        ):
            steps = max(1, self.budget // max(1, rows * self.dim))
            self.buffer = self.ops.normal((steps, rows, self.dim))
            self.position = 0
        slab = self.buffer[self.position, :rows]
        self.position += 1
        return slab


class StepNormals:
    """Standard normals drawn one step at a time, ``normal((rows, dim))`` per step."""

    def __init__(self, ops: Ops, dim: int) -> None:
        self.ops, self.dim = ops, dim

    def next(self, rows: int) -> Any:
        return self.ops.normal((rows, self.dim))
