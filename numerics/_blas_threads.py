"""One BLAS thread for work made of many small matrix operations.

The minimum-action string and the Riccati flow of the prefactor issue thousands of LAPACK/BLAS
calls on n × n blocks (n the landscape's dimension). OpenBLAS runs each of them in all its
threads; on a machine whose other cores are busy, every threaded call then waits for its
threads to be scheduled. Measured on a shared 2-core machine (load average 4–7), n = 100: the
banded Cholesky factorizations of the string's preconditioner took 0.8–3.1 s in two threads
and 0.06 s in one; 31 triangular solves of 100 × 100 took 23 ms each against 0.26 ms; the whole
`minimum_action_path` call 1.1–4.4 s against 0.23 s. Blocks this small gain nothing from a
second thread on an idle machine either, so below `SINGLE_THREAD_UP_TO` these calls run with
one BLAS thread (`threadpoolctl`, when it is installed: it comes with scikit-learn; without it
nothing changes). The limit is process-wide while the call runs and is restored afterwards.

`in_pair` is the other use of the limit: two independent pieces of work on large matrices (the
refinement of a minimum's and a saddle's n × n Hessians in `escape_time`) run side by side in
two Python threads, each with one BLAS thread. Their BLAS calls then take one core each, as the
threaded calls of a serial run would, and their element-wise numpy passes (memory-bound, one
core in a serial run) take both: measured at n = 1000 on an idle 2-core machine, the two
float64 ``eigh`` in 0.17–0.22 s against 0.22–0.30 s one after the other, the whole
`escape_time` call in 0.85 s against 1.13 s. The work must release the GIL to gain anything:
numpy's ufuncs, matmul and linalg do; scipy's BLAS wrappers (``scipy.linalg.blas.dsyrk``) do
not, and two of them in two threads run one after the other.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["PAIR_FROM", "SINGLE_THREAD_UP_TO", "in_pair", "one_blas_thread"]

#: Largest dimension n whose block operations run in one BLAS thread.
SINGLE_THREAD_UP_TO = 256

#: Smallest dimension n whose two Hessians `in_pair` refines side by side (the whole
#: `escape_time` call, best of 9, side by side against one after the other: 292 against
#: 369 ms at n = 600, 143 against 139 ms at n = 400, 67 against 57 ms at n = 250).
PAIR_FROM = 500

T = TypeVar("T")
U = TypeVar("U")

_CONTROLLER: list[Any] = []


def _controller() -> Any:
    """A threadpoolctl controller of the BLAS libraries numpy and scipy load (built once, after
    scipy.linalg is imported so that its OpenBLAS is among them), or None without threadpoolctl."""
    if not _CONTROLLER:
        import scipy.linalg  # noqa: F401  (loads scipy's BLAS before the controller looks)

        try:
            module = importlib.import_module("threadpoolctl")
        except ImportError:
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(module.ThreadpoolController())
    return _CONTROLLER[0]


@contextmanager
def one_blas_thread(dim: int) -> Iterator[None]:
    """Run the body with one BLAS thread when ``dim`` ≤ `SINGLE_THREAD_UP_TO` (and threadpoolctl
    is installed); otherwise leave the thread count alone."""
    controller = _controller() if dim <= SINGLE_THREAD_UP_TO else None
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def in_pair(work: Callable[[T], U], first: T, second: T, dim: int) -> tuple[U, U]:
    """``(work(first), work(second))``: side by side in two threads with one BLAS thread each
    when ``dim`` ≥ `PAIR_FROM`, the process may use two cores or more and threadpoolctl is
    installed; otherwise one after the other. An exception of either call is raised here
    (the first's when both raise).

    ``work`` must not change process-wide state (mpmath's precision is one: ``mp.prec`` is a
    global of the process, so a ``workprec`` inside ``work`` would race with the other call);
    set such state before, around the call. The BLAS limit is process-wide too: two calls
    that overlap in two of the user's threads restore each other's saved count, and can leave
    the process at one BLAS thread (as `one_blas_thread` can; such calls were never safe with
    mpmath's global precision anyway)."""
    controller = _controller() if dim >= PAIR_FROM and _cores() >= 2 else None
    if controller is None:
        return work(first), work(second)
    # a pool per call (two thread starts, ~0.1 ms): nothing left behind for a fork to copy
    with (
        controller.limit(limits=1, user_api="blas"),
        ThreadPoolExecutor(2, thread_name_prefix="flatminima-pair") as pool,
    ):
        futures = [pool.submit(work, x) for x in (first, second)]
        wait(futures)  # both finished (the limit still on) before either result or error
    return futures[0].result(), futures[1].result()
