"""Monte Carlo escape: many paths at once, numpy or torch.

The update is Euler–Maruyama for ``dθ = −∇L dt + √(2D(θ)) dW`` (Itô):

    θ ← θ − ∇L(θ) h + √(2 D(θ) h) ξ,   ξ ~ N(0, I).

With ``h = η`` this *is* the discrete update: SGD with gradient-noise covariance C(θ)
(``D = (η/2) C``) and GD with injected white noise (D constant; std σ per step ⇔ D = σ²/(2η)).
For the continuous SDE take h small and check that the answer does not move when h is halved.
Times are reported in continuous time (steps × h); iterations are steps.

Escape is the first step at which a path is beyond the escape surface (by default the plane
through ``saddle`` normal to ``direction``, moved ``margin`` further). Paths that escape stop
costing work (the arrays are compacted) unless ``restart=True``, where they restart at ``start``
and the rate is escapes over time at risk (renewal: 1/E[first-passage time]). Paths still in the
valley at ``max_steps`` are censored: counted and reported, never averaged as if they escaped.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np

from flatminima.errors import BudgetError, ParameterError, ShapeError

from ._checks import real, real_array
from ._engine import (
    Custom,
    EscapeCounts,
    EulerMaruyama,
    FirstPassage,
    Ops,
    Plane,
    Renewal,
    SDEProblem,
    mean_escape_time,
    rate_estimate,
    run_escape,
)
from ._engine import poisson_rate_interval as poisson_rate_interval
from ._engine_backend import RNG_STREAMS as RNG_STREAMS
from ._engine_backend import to_numpy
from ._engine_problem import check_start, divergence_of

__all__ = ["EscapeSimulation", "simulate_escape"]

# the engine's pieces under the names this module had before the engine (tests, benchmarks)
_Ops = Ops
_divergence = divergence_of


@dataclass(frozen=True)
class EscapeSimulation:
    """Escape times from a batch of paths.

    Attributes
    ----------
    times
        First-passage times of the paths that escaped (continuous time; without restart).
    final_positions
        Positions at the end of the run of the paths that were still inside (censored paths;
        with ``restart``, every path), shape (n, dim).
    n_paths, n_escaped, n_censored
        Paths simulated; escapes seen; paths still inside at the end (without restart).
    time_at_risk
        Total time the paths spent inside the valley.
    rate, rate_interval
        Escapes per unit time at risk and its ``confidence`` interval (exact Poisson, which is
        exact for exponential waiting times).
    mean_time, mean_time_interval
        Mean first-passage time: the sample mean with a normal interval when nothing was
        censored, otherwise 1/rate (exponential assumption, said in ``method``).
    """

    times: np.ndarray
    final_positions: np.ndarray
    n_paths: int
    n_escaped: int
    n_censored: int
    time_at_risk: float
    rate: float
    rate_interval: tuple[float, float]
    mean_time: float
    mean_time_interval: tuple[float, float]
    confidence: float
    step: float
    steps: int
    seed: int
    backend: str
    method: str

    def to_dict(self) -> dict[str, Any]:
        """The scalar fields (not the arrays), intervals as lists."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, np.ndarray):
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def __repr__(self) -> str:
        lo, hi = self.mean_time_interval
        return (
            f"EscapeSimulation(n_paths={self.n_paths}, escaped={self.n_escaped}, "
            f"censored={self.n_censored}, "
            f"mean_time={self.mean_time:.6g} [{lo:.6g}, {hi:.6g}], rate={self.rate:.6g})"
        )

    @property
    def log_rate(self) -> float:
        """log of the rate (−∞ when nothing escaped)."""
        return math.log(self.rate) if self.rate > 0 else -math.inf

    @property
    def tau(self) -> float:
        """τ, the mean escape time (the same number as ``mean_time``)."""
        return self.mean_time

    @property
    def tau_interval(self) -> tuple[float, float]:
        """The ``confidence`` interval of τ (the same as ``mean_time_interval``)."""
        return self.mean_time_interval

    @property
    def log_tau(self) -> float:
        """log τ (inf when no path escaped: τ = 1/rate = inf)."""
        return math.log(self.mean_time) if self.mean_time > 0 else -math.inf

    @property
    def iterations(self) -> float:
        """τ/step: the mean escape time in steps (SGD iterations when step = η)."""
        return self.mean_time / self.step


def _memory_budget(n_paths: int, start: Any) -> None:
    """The paths' arrays (state, scratch, escape test, the normals of two steps: about 5 float64
    per coordinate) must fit in half the memory available now."""
    from ._mfpt2d import _available_memory

    try:
        dim = max(1, int(np.size(start)))
    except (TypeError, ValueError):
        dim = 1
    estimate = 5.0 * 8 * min(n_paths, 10**18) * dim  # a float: 10**400 paths must not overflow
    budget = _available_memory() / 2
    if estimate > budget:
        raise BudgetError(
            "n_paths",
            f"a batch that fits the memory budget of {budget / 2**30:.3g} GiB",
            n_paths,
            f"{n_paths} paths × {dim} coordinates need about {estimate / 2**30:.3g} GiB; run "
            "fewer paths per call (several seeds) or use restart=True with fewer paths",
        )


def _integer(name: str, value: Any, low: int) -> int:
    """An integer ≥ low: int or numpy integer (not bool, not a float, not a string)."""
    import numbers

    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ParameterError(name, f"an integer ≥ {low}", value)
    if int(value) < low:
        raise ParameterError(name, f"an integer ≥ {low}", value)
    return int(value)


def simulate_escape(
    grad: Callable[[Any], Any],
    *,
    start: Any,
    diffusion: Any,
    step: float,
    n_paths: int = 1000,
    max_steps: int = 1_000_000,
    escaped: Callable[[Any], Any] | None = None,
    saddle: Any = None,
    direction: Any = None,
    margin: float | None = None,
    restart: bool = False,
    interpretation: Any = "ito",
    seed: int = 0,
    backend: str = "numpy",
    device: str = "cpu",
    dtype: Any = None,
    confidence: float = 0.95,
    check_every: int = 1,
    progress: bool = False,
) -> EscapeSimulation:
    """Simulate ``n_paths`` escapes at once and estimate the mean escape time and the rate.

    Parameters
    ----------
    grad
        ∇L on a batch: ``(n, dim)`` array (numpy, or torch tensor for ``backend="torch"``) →
        array of the same shape.
    start
        Starting point, shape ``(dim,)`` (a number in 1-D).
    diffusion
        D: a positive number, a ``dim × dim`` matrix, or a callable batch → ``(n,)``, ``(n, dim)``
        (diagonal) or ``(n, dim, dim)`` arrays (evaluated at the start of each step).
    step
        h: the time step of Euler–Maruyama; the learning rate η for discrete SGD / GD.
    n_paths, max_steps
        Batch size and the horizon in steps; paths not escaped by then are censored. Defaults
        1000 and 1_000_000.
    escaped
        Callable batch → boolean ``(n,)``: True where a path has escaped. Default: the plane
        through ``saddle`` normal to ``direction``, ``margin`` beyond it (margin default: a fifth
        of the distance from start to the saddle along ``direction``).
    restart
        Renewal estimator: escaped paths restart at ``start``; the rate is escapes per unit time
        at risk (cheapest when only the rate is needed).
    interpretation
        Of the noise when D depends on θ: ``"ito"`` (default; discrete SGD), ``"stratonovich"``,
        ``"anti-ito"`` or α ∈ [0, 1] — the SDE whose Fokker–Planck current is
        J = −P∇L − D^α∇(D^(1−α)P), as in `mfpt_1d` and the escape-time formulas. It is run as
        the equivalent Itô SDE, drift −∇L + α∇·D, with ∇·D by central differences of the
        ``diffusion`` callable (2·dim extra calls per step): D must be differentiable — a
        switch-model D with a jump has no divergence there, use Itô or ``mfpt_1d``. A
        constant D makes every interpretation the same.
    seed, backend, device, dtype
        Explicit seed (numpy: two SFC64 streams spawned from it, step k drawing its normals
        from stream k mod 2, generated ahead in worker threads, one per stream beyond the
        calling thread's core; torch: torch.Generator): the same
        seed gives the same numbers on the CPU, whatever the core count or the threads.
        ``backend="torch"`` runs on ``device`` (CUDA where there is one). Defaults: ``seed=0``,
        ``backend="numpy"``, ``device="cpu"``, ``dtype`` float64.
    confidence
        Level of the reported intervals; default 0.95.
    check_every
        Check the escape surface every this many steps (escape times are then rounded up);
        default 1.
    progress
        Print progress to stderr about once a second.

    Examples
    --------
    White noise D = 1/8 on the double well L = x⁴/4 − x²/2 (ΔL/D = 2), escape past x = 0.3,
    against the exact mean first-passage time:

    >>> import sympy as sp
    >>> from flatminima.numerics import mfpt_1d
    >>> x = sp.Symbol("x")
    >>> exact = mfpt_1d(x**4 / 4 - x**2 / 2, sp.Rational(1, 8), start=-1, end="0.3", dps=15)
    >>> sim = simulate_escape(
    ...     lambda z: z * (z * z - 1), start=[-1.0], diffusion=0.125, step=0.01,
    ...     n_paths=1000, max_steps=100_000, saddle=[0.0], direction=[1.0], margin=0.3, seed=1)
    >>> sim.n_censored
    0
    >>> lo, hi = sim.mean_time_interval
    >>> bool(lo < exact.value < hi)  # 95% interval around 31.4; exact 29.94
    True

    Write the gradient with products, as above: ``lambda z: z**3 - z`` gives the same paths,
    but numpy's ``power`` made the simulation 8× slower here. And the time step is part of the
    model: at ``step = η`` the result is the discrete update's escape time, which moves with η
    (docs/numerics.md); for the SDE, halve ``step`` and check that the answer does not move.
    """
    options = _options(grad, backend, n_paths, max_steps, check_every, seed, step, confidence)
    n_paths, max_steps, check_every, seed, step, confidence = options
    _memory_budget(n_paths, start)
    start_arr = np.atleast_1d(real_array("start", start))
    if start_arr.ndim != 1:
        raise ShapeError("start", "a finite point of shape (dim,)", start)
    dim = start_arr.size
    ops = Ops(backend, seed, device, dtype)
    if not callable(diffusion):
        diffusion = real_array("diffusion", diffusion)
    stepper = EulerMaruyama(SDEProblem(grad, diffusion, interpretation), ops, step, dim)
    check_start(grad, ops, start_arr, step)
    if stepper.noise.field is not None:  # a bad D at start: an error naming it now
        stepper.noise.field(ops.array(start_arr[None, :]))
    event = _escape_event(ops, escaped, start_arr, saddle, direction, margin)
    x = ops.array(np.broadcast_to(start_arr, (n_paths, dim)).copy())
    estimator = (
        Renewal(ops, n_paths, ops.array(start_arr), step)
        if restart
        else FirstPassage(ops, n_paths, step)
    )
    try:
        counts = run_escape(
            x,
            stepper.step,
            event,
            estimator,
            max_steps=max_steps,
            check_every=check_every,
            unit=step,
            progress=_Progress(max_steps) if progress else None,
        )
    finally:
        stepper.close()
    if progress:
        print(file=sys.stderr)
    return _summary(counts, options, restart, backend, stepper.describe())


class _Options(NamedTuple):
    """``simulate_escape``'s scalar options, checked."""

    n_paths: int
    max_steps: int
    check_every: int
    seed: int
    step: float
    confidence: float


def _options(
    grad: Any,
    backend: str,
    n_paths: Any,
    max_steps: Any,
    check_every: Any,
    seed: Any,
    step: Any,
    confidence: Any,
) -> _Options:
    """The scalar options, checked: counts as integers, step > 0, confidence in (0, 1)."""
    if backend not in ("numpy", "torch"):
        raise ParameterError("backend", "'numpy' or 'torch'", backend)
    counts = [
        _integer(name, value, low)
        for name, value, low in (
            ("n_paths", n_paths, 1),
            ("max_steps", max_steps, 1),
            ("check_every", check_every, 1),
            ("seed", seed, 0),
        )
    ]
    h = float(real("step", step))
    if h <= 0:
        raise ParameterError(
            "step", "a positive finite time step (the learning rate for discrete SGD)", step
        )
    level = float(real("confidence", confidence))
    if not 0 < level < 1:
        raise ParameterError("confidence", "a level in (0, 1)", confidence)
    if not callable(grad):
        raise ParameterError("grad", "a callable returning ∇L on a batch of points", grad)
    return _Options(counts[0], counts[1], counts[2], counts[3], h, level)


def _escape_event(
    ops: Ops, escaped: Any, start: np.ndarray, saddle: Any, direction: Any, margin: Any
) -> Callable[[Any], Any]:
    """The user's ``escaped`` callable, or the plane through ``saddle`` normal to
    ``direction``, ``margin`` beyond it; both refuse non-finite paths."""
    if escaped is not None:
        return Custom(escaped, guard=True)
    if saddle is None:
        raise ParameterError(
            "escaped", "a callable, or saddle= and direction= for the default surface", None
        )
    dim = start.size
    saddle_arr = np.atleast_1d(real_array("saddle", saddle))
    direction_arr = np.atleast_1d(
        real_array("direction", direction) if direction is not None else np.sign(saddle_arr - start)
    )
    if saddle_arr.shape != (dim,) or direction_arr.shape != (dim,) or not np.any(direction_arr):
        raise ShapeError(
            "saddle", f"a point and a non-zero direction of shape ({dim},)", (saddle, direction)
        )
    direction_arr = direction_arr / np.max(
        np.abs(direction_arr)
    )  # 1e-308 or 1e308: no under/overflow
    direction_arr = direction_arr / np.linalg.norm(direction_arr)
    distance = float((saddle_arr - start) @ direction_arr)
    if distance <= 0:
        raise ParameterError(
            "direction", "a direction pointing from start towards the saddle", direction
        )
    m = 0.2 * distance if margin is None else float(real("margin", margin))
    if m < 0:
        raise ParameterError("margin", "a non-negative distance", margin)
    return Plane(ops.array(saddle_arr), ops.array(direction_arr), m, guard=True)


class _Progress:
    """Prints the step and the escapes to stderr about once a second."""

    def __init__(self, max_steps: int) -> None:
        self.max_steps, self.clock = max_steps, time.monotonic()

    def __call__(self, k: int, escapes: int) -> None:
        if time.monotonic() - self.clock > 1.0:
            self.clock = time.monotonic()
            print(
                f"\rsimulate_escape: step {k}/{self.max_steps}, escaped {escapes}",
                end="",
                file=sys.stderr,
                flush=True,
            )


def _summary(
    counts: EscapeCounts, options: _Options, restart: bool, backend: str, stepper: str
) -> EscapeSimulation:
    confidence = options.confidence
    rate = rate_estimate(counts.escapes, counts.exposure, confidence)
    mean, mean_interval, how = mean_escape_time(counts, rate, confidence, restart)
    return EscapeSimulation(
        times=counts.times,
        final_positions=to_numpy(counts.x).copy(),
        n_paths=options.n_paths,
        n_escaped=counts.escapes,
        n_censored=counts.censored,
        time_at_risk=counts.exposure,
        rate=rate.rate,
        rate_interval=(rate.rate_low, rate.rate_high),
        mean_time=mean,
        mean_time_interval=mean_interval,
        confidence=confidence,
        step=options.step,
        steps=counts.steps,
        seed=options.seed,
        backend=backend,
        method=f"{stepper}; mean time: {how}",
    )
