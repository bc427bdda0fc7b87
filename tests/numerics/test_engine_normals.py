"""The escape engine's random numbers (numpy): step k draws its normals from SFC64 stream
k mod 2 spawned from the seed, checked against those streams drawn by hand; the numbers do not
depend on how many steps are generated at once nor on the threads; compaction takes the first
rows; the constant noise factor is applied to exactly those numbers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from flatminima.numerics import _engine_backend, _engine_normals, simulate_escape
from flatminima.numerics._engine_backend import RNG_STREAMS, Ops
from flatminima.numerics._engine_normals import StreamNormals


def _by_hand(seed: int, rows: list[int], dim: int) -> list[np.ndarray]:
    """Step k: (rows at the first step, dim) normals from stream k mod 2, first rows[k] kept."""
    streams = [
        np.random.Generator(np.random.SFC64(s))
        for s in np.random.SeedSequence(seed).spawn(RNG_STREAMS)
    ]
    out = []
    for k, n in enumerate(rows):
        out.append(streams[k % RNG_STREAMS].standard_normal((rows[0], dim))[:n])
    return out


def _drawn(seed: int, rows: list[int], dim: int, scale=None) -> list[np.ndarray]:
    normals = StreamNormals(Ops("numpy", seed), dim, scale)
    return [normals.next(n).copy() for n in rows]


# rows per step: a batch of 3000 paths × 2 coordinates compacted twice (escapes)
ROWS = [3000] * 25 + [2200] * 30 + [7] * 20


@pytest.mark.parametrize(
    ("chunk", "threads_from"),
    [
        (_engine_normals.CHUNK, _engine_normals._THREADS_FROM),  # as shipped
        (1 << 10, 1 << 60),  # one step per chunk, all in the calling thread
        (1 << 15, 1),  # several steps per chunk, every chunk in the threads
    ],
)
def test_step_k_draws_from_stream_k_mod_2_whatever_the_chunks_and_threads(
    monkeypatch, chunk: int, threads_from: int
) -> None:
    monkeypatch.setattr(_engine_normals, "CHUNK", chunk)
    monkeypatch.setattr(_engine_normals, "_THREADS_FROM", threads_from)
    expected = _by_hand(11, ROWS, 2)
    got = _drawn(11, ROWS, 2)
    assert len(got) == len(expected)
    for k, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert a.shape == (ROWS[k], 2)
        assert np.array_equal(a, b), k


def test_one_worker_thread_gives_the_same_numbers(monkeypatch) -> None:
    monkeypatch.setattr(_engine_normals, "_THREADS_FROM", 1)
    pool = ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(_engine_backend, "_rng_pool", lambda: pool)
    got = _drawn(4, ROWS, 2)
    for a, b in zip(got, _by_hand(4, ROWS, 2), strict=True):
        assert np.array_equal(a, b)


def test_the_noise_factor_multiplies_exactly_these_numbers() -> None:
    scale = np.float64(np.sqrt(2 * 0.01 * 0.37))
    got = _drawn(2, ROWS[:30], 3, scale)
    for a, b in zip(got, _by_hand(2, ROWS[:30], 3), strict=True):
        assert np.array_equal(a, b * scale)


def test_a_step_larger_than_a_chunk_and_float32(monkeypatch) -> None:
    """One step per chunk, and one buffer (no chunk generated ahead) when a step is large."""
    monkeypatch.setattr(_engine_normals, "_OVERLAP", _engine_normals.CHUNK)
    rows = [_engine_normals.CHUNK // 3 + 5] * 5  # one step of 3 coordinates > a chunk
    ops = Ops("numpy", 9, dtype=np.float32)
    normals = StreamNormals(ops, 3)
    got = [normals.next(n).copy() for n in rows]
    assert len(normals.buffers) == 1
    streams = [np.random.Generator(np.random.SFC64(s)) for s in np.random.SeedSequence(9).spawn(2)]
    for k, a in enumerate(got):
        assert a.dtype == np.float32
        expected = streams[k % 2].standard_normal((rows[0], 3), dtype=np.float32)
        assert np.array_equal(a, expected)


def test_simulate_escape_gives_the_same_escapes_whatever_the_chunks(monkeypatch) -> None:
    """End to end (double well, paths removed as they escape): the same escape times and final
    positions with one-step chunks in the calling thread as with the shipped chunks."""

    def run():
        return simulate_escape(
            lambda z: z * (z * z - 1),
            start=[-1.0],
            diffusion=0.125,
            step=0.05,
            n_paths=3000,
            max_steps=600,
            saddle=[0.0],
            direction=[1.0],
            margin=0.3,
            seed=5,
        )

    shipped = run()
    monkeypatch.setattr(_engine_normals, "CHUNK", 1 << 10)
    monkeypatch.setattr(_engine_normals, "_THREADS_FROM", 1 << 60)
    small = run()
    assert 0 < shipped.n_escaped < 3000  # escapes and censored paths both present
    assert np.array_equal(shipped.times, small.times)
    assert np.array_equal(shipped.final_positions, small.final_positions)


def test_no_worker_threads_on_one_core_gives_the_same_numbers(monkeypatch) -> None:
    """One usable core: no pool, every chunk filled in the calling thread, same numbers."""
    monkeypatch.setattr(_engine_normals, "_THREADS_FROM", 1)
    monkeypatch.setattr(_engine_backend, "_rng_pool", lambda: None)
    for a, b in zip(_drawn(6, ROWS, 2), _by_hand(6, ROWS, 2), strict=True):
        assert np.array_equal(a, b)
    shares = np.random.SeedSequence(6).spawn(RNG_STREAMS)
    block = Ops("numpy", 6).normal((64, 1024, 4))  # the threaded size, filled here
    for half, s in zip(block.reshape(RNG_STREAMS, -1), shares, strict=True):
        assert np.array_equal(
            half, np.random.Generator(np.random.SFC64(s)).standard_normal(half.size)
        )


@pytest.mark.parametrize(("cores", "workers"), [(1, None), (2, 1), (3, 2), (64, 2)])
def test_worker_threads_leave_the_calling_thread_a_core(monkeypatch, cores, workers) -> None:
    monkeypatch.setattr(_engine_backend, "_usable_cores", lambda: cores)
    monkeypatch.setattr(_engine_backend, "_POOL", None)
    monkeypatch.setattr(_engine_backend, "_NO_POOL", False)
    pool = _engine_backend._rng_pool()
    try:
        assert (None if pool is None else pool._max_workers) == workers
        assert _engine_backend._rng_pool() is pool  # made once
    finally:
        if pool is not None:
            pool.shutdown()


def test_finish_fills_runs_each_task_once_the_caller_taking_the_unstarted_ones() -> None:
    """A worker held busy: the caller runs every queued task itself, last first; a free
    worker: each task still runs exactly once; a worker's error reaches the caller."""
    import threading

    from flatminima.numerics._engine_backend import finish_fills

    pool = ThreadPoolExecutor(max_workers=1)
    release = threading.Event()
    blocker = pool.submit(release.wait, 10)  # a caller that waited would fail, not hang
    ran: list[tuple[int, str]] = []
    tasks = [lambda i=i: ran.append((i, threading.current_thread().name)) for i in range(3)]
    futures = [pool.submit(task) for task in tasks]
    finish_fills(tasks, futures)
    here = threading.current_thread().name
    assert ran == [(2, here), (1, here), (0, here)]
    release.set()
    blocker.result()

    counts = [0] * 8

    def bump(i: int) -> None:
        counts[i] += 1

    for _ in range(50):
        tasks = [lambda i=i: bump(i) for i in range(8)]
        finish_fills(tasks, [pool.submit(task) for task in tasks])
    assert counts == [50] * 8

    def fail() -> None:
        raise ValueError("from a worker")

    release.clear()
    started = threading.Event()
    running = pool.submit(lambda: (started.set(), release.wait(), fail()))
    started.wait()
    release.set()
    with pytest.raises(ValueError, match="from a worker"):
        finish_fills([fail], [running])
    pool.shutdown()


def test_finish_fills_after_an_error_here_leaves_nothing_running_and_checks_lengths() -> None:
    """A task run in the caller raises: the queued fills are cancelled and the running one
    waited for before the error propagates; mismatched lists are refused up front."""
    import threading
    import time

    from flatminima.numerics._engine_backend import finish_fills

    pool = ThreadPoolExecutor(max_workers=1)
    started, finished = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.2)
        finished.set()

    def fail() -> None:
        raise ValueError("here")

    ran: list[str] = []
    tasks = [slow, lambda: ran.append("queued"), fail]
    futures = [pool.submit(task) for task in tasks[:2]]
    started.wait()
    futures.append(pool.submit(fail))
    with pytest.raises(ValueError, match="here"):
        finish_fills(tasks, futures)
    assert finished.is_set()  # the running fill ended before the error reached us
    assert ran == []  # the queued one was cancelled, not run later
    pool.shutdown()
    with pytest.raises(ValueError, match="2 tasks but 1 futures"):
        finish_fills([slow, slow], [futures[0]])


def test_a_shut_down_pool_fills_in_the_calling_thread(monkeypatch) -> None:
    """As in an atexit handler at interpreter exit: the pool refuses new work; the normals are
    generated here instead, the same numbers, no RuntimeError."""
    pool = ThreadPoolExecutor(max_workers=1)
    pool.shutdown()
    monkeypatch.setattr(_engine_normals, "_THREADS_FROM", 1)
    monkeypatch.setattr(_engine_backend, "_rng_pool", lambda: pool)
    for a, b in zip(_drawn(8, ROWS, 2), _by_hand(8, ROWS, 2), strict=True):
        assert np.array_equal(a, b)
    block = Ops("numpy", 8).normal((64, 1024, 4))
    shares = np.random.SeedSequence(8).spawn(RNG_STREAMS)
    for half, s in zip(block.reshape(RNG_STREAMS, -1), shares, strict=True):
        expected = np.random.Generator(np.random.SFC64(s)).standard_normal(half.size)
        assert np.array_equal(half, expected)
