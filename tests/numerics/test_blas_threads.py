"""The one-BLAS-thread limit of the string relaxation: applied inside, restored after, left
alone for large n, and the relaxation gives the same path with or without it."""

from __future__ import annotations

import numpy as np
import pytest

from flatminima.numerics._blas_threads import SINGLE_THREAD_UP_TO, one_blas_thread

threadpoolctl = pytest.importorskip("threadpoolctl")


def _threads() -> list[int]:
    return [
        int(i["num_threads"]) for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"
    ]


def test_limit_applies_inside_and_is_restored() -> None:
    import scipy.linalg  # noqa: F401  (its BLAS loaded, as in the relaxation)

    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = _threads()
        assert before and max(before) == 2
        with one_blas_thread(10):
            assert set(_threads()) == {1}
        assert _threads() == before
        with one_blas_thread(SINGLE_THREAD_UP_TO + 1):
            assert _threads() == before


def test_limit_is_restored_when_the_body_raises() -> None:
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = _threads()
        with pytest.raises(RuntimeError), one_blas_thread(3):
            raise RuntimeError("inside")
        assert _threads() == before


def test_relaxation_is_the_same_in_one_thread_and_in_two() -> None:
    """The limit changes how BLAS runs, not what the string converges to."""
    from flatminima.numerics import minimum_action_path

    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))

    def loss(x: np.ndarray) -> np.ndarray:
        u = x @ q.T
        return (u[:, 0] ** 2 - 1) ** 2 + 3 * ((u[:, 1:] - 0.2 * u[:, :1] ** 2) ** 2).sum(axis=1)

    def gradient(x: np.ndarray) -> np.ndarray:
        u = x @ q.T
        r = u[:, 1:] - 0.2 * u[:, :1] ** 2
        g0 = 4 * u[:, 0] * (u[:, 0] ** 2 - 1) - 6 * 0.4 * u[:, 0] * r.sum(axis=1)
        return np.column_stack([g0, 6 * r]) @ q

    def hessian(x: np.ndarray) -> np.ndarray:
        u = x @ q.T
        r = u[:, 1:] - 0.2 * u[:, :1] ** 2
        h = np.zeros((x.shape[0], 6, 6))
        h[:, 0, 0] = 12 * u[:, 0] ** 2 - 4 - 2.4 * r.sum(axis=1) + 6 * 0.16 * 5 * u[:, 0] ** 2
        h[:, 0, 1:] = h[:, 1:, 0] = -2.4 * u[:, :1]
        h[:, 1:, 1:] += 6 * np.eye(5)
        return q.T @ h @ q

    a = q.T @ np.r_[-1.0, np.full(5, 0.2)]
    kwargs = {"minimum": a, "saddle": np.zeros(6), "diffusion": 0.2, "points": 8}
    one = minimum_action_path(loss, "white", gradient=gradient, hessian=hessian, **kwargs)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        import flatminima.numerics._blas_threads as bt

        saved = bt.SINGLE_THREAD_UP_TO
        bt.SINGLE_THREAD_UP_TO = 0  # the limit off: two threads
        try:
            two = minimum_action_path(loss, "white", gradient=gradient, hessian=hessian, **kwargs)
        finally:
            bt.SINGLE_THREAD_UP_TO = saved
    assert abs(one.barrier / 5 - 1) < 1e-4  # ΔL/d = 1/0.2
    assert abs(one.barrier - two.barrier) < 1e-9 * one.barrier
    assert np.max(np.abs(one.path - two.path)) < 1e-7


def test_in_pair_runs_side_by_side_with_one_blas_thread_each_and_restores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From `PAIR_FROM` on: two pool threads, one BLAS thread inside each, the caller's count
    afterwards, results in argument order; below it: the caller's thread, one after the other."""
    import threading
    import time

    import flatminima.numerics._blas_threads as bt

    monkeypatch.setattr(bt, "_cores", lambda: 2)

    def work(x: float) -> tuple[float, str, list[int]]:
        time.sleep(
            x
        )  # the first finishes last: the order of the results is not the order of finishing
        return x, threading.current_thread().name, _threads()

    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = _threads()
        first, second = bt.in_pair(work, 0.05, 0.0, bt.PAIR_FROM)
        assert (first[0], second[0]) == (0.05, 0.0)
        assert first[1] != second[1] and all(
            r[1].startswith("flatminima-pair") for r in (first, second)
        )
        assert set(first[2]) == set(second[2]) == {1}
        assert _threads() == before
        small = bt.in_pair(work, 0.0, 0.0, bt.PAIR_FROM - 1)
        assert {r[1] for r in small} == {threading.current_thread().name}
        assert all(r[2] == before for r in small)


def test_in_pair_raises_the_first_error_after_both_finished(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    import flatminima.numerics._blas_threads as bt

    monkeypatch.setattr(bt, "_cores", lambda: 2)
    finished: list[str] = []

    def work(name: str) -> str:
        if name == "slow":
            time.sleep(0.05)
            finished.append(name)
            return name
        raise ValueError(name)

    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = _threads()
        with pytest.raises(ValueError, match="fast"):
            bt.in_pair(work, "slow", "fast", bt.PAIR_FROM)
        assert finished == ["slow"] and _threads() == before
        with pytest.raises(ValueError, match="first"):
            bt.in_pair(work, "first", "second", bt.PAIR_FROM)
        assert _threads() == before
