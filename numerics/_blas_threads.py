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
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["SINGLE_THREAD_UP_TO", "one_blas_thread"]

#: Largest dimension n whose block operations run in one BLAS thread.
SINGLE_THREAD_UP_TO = 256

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
