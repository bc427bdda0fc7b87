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

import itertools
import math
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from flatminima.errors import BudgetError, DivergenceError, ParameterError, ShapeError
from flatminima.theory._conventions import numeric_alpha

from ._checks import real, real_array

__all__ = ["EscapeSimulation", "simulate_escape"]


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
    tau, tau_interval, log_tau
        ``mean_time`` and its interval under the name every escape-time result uses for the
        mean escape time (``EscapeTime.tau``, ``MFPTResult.tau``, ...), and log τ.
    iterations
        τ/step, the mean escape time in steps (SGD iterations when step = η).
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

    @property
    def log_rate(self) -> float:
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_paths": self.n_paths,
            "n_escaped": self.n_escaped,
            "n_censored": self.n_censored,
            "time_at_risk": self.time_at_risk,
            "rate": self.rate,
            "rate_interval": list(self.rate_interval),
            "mean_time": self.mean_time,
            "mean_time_interval": list(self.mean_time_interval),
            "confidence": self.confidence,
            "step": self.step,
            "steps": self.steps,
            "seed": self.seed,
            "backend": self.backend,
            "method": self.method,
        }

    def __repr__(self) -> str:
        lo, hi = self.mean_time_interval
        return (
            f"EscapeSimulation(n_paths={self.n_paths}, escaped={self.n_escaped}, "
            f"censored={self.n_censored}, "
            f"mean_time={self.mean_time:.6g} [{lo:.6g}, {hi:.6g}], rate={self.rate:.6g})"
        )


def poisson_rate_interval(count: int, exposure: float, confidence: float) -> tuple[float, float]:
    """Exact (Garwood) interval of a Poisson rate: count events in ``exposure`` time."""
    from scipy import special  # lazy: scipy.special costs ~0.4 s of import

    tail = (1 - confidence) / 2
    lower = 0.0 if count == 0 else 2 * special.gammaincinv(count, tail) / (2 * exposure)
    upper = 2 * special.gammaincinv(count + 1, 1 - tail) / (2 * exposure)
    return float(lower), float(upper)


#: Independent random streams per simulation (numpy backend). Fixed, not the core count, so
#: that a seed gives the same numbers on every machine; two fill a block twice as fast on 2 cores.
RNG_STREAMS = 2

_POOL: ThreadPoolExecutor | None = None


def _rng_pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=RNG_STREAMS, thread_name_prefix="flatminima-rng")
    return _POOL


class _Ops:
    """The few array operations the loop needs, for numpy or torch."""

    rng: Any
    dtype: Any

    def __init__(self, backend: str, seed: int, device: str, dtype: Any) -> None:
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
            if flat.size < 1 << 16:  # small: threads cost more than they save
                for rng, share in zip(self.rngs, shares, strict=True):
                    rng.standard_normal(out=share, dtype=self.dtype)
            else:
                futures = [
                    _rng_pool().submit(rng.standard_normal, out=share, dtype=self.dtype)
                    for rng, share in zip(self.rngs, shares, strict=True)
                ]
                for future in futures:
                    future.result()
            return out
        return self.torch.randn(shape, generator=self.rng, dtype=self.dtype, device=self.device)

    def to_numpy(self, value: Any) -> np.ndarray:
        if self.backend == "numpy":
            return np.asarray(value)
        return value.detach().cpu().numpy()

    def nonzero(self, mask: Any) -> np.ndarray:
        return np.flatnonzero(self.to_numpy(mask))

    def sqrt(self, value: Any) -> Any:
        return np.sqrt(value) if self.backend == "numpy" else self.torch.sqrt(value)

    def cholesky(self, value: Any) -> Any:
        return (
            np.linalg.cholesky(value)
            if self.backend == "numpy"
            else self.torch.linalg.cholesky(value)
        )


class _NoiseBlocks:
    """Standard normals generated a block of steps at a time (one RNG call per block, into a
    reused buffer); after compaction a step takes the first rows of its slice."""

    def __init__(self, ops: _Ops, dim: int, budget: int = 1 << 21) -> None:
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


def _noise_factor(
    ops: _Ops, diffusion: Any, dim: int, step: float
) -> tuple[Callable[[Any], Any] | None, Any, str]:
    """Returns (callable x -> factor, constant factor, kind) so that the noise is
    factor * ξ (scalar or diagonal: elementwise; 'matrix': factor @ ξ)."""
    if callable(diffusion):

        def factor(x: Any) -> Any:
            d = diffusion(x)
            shape = tuple(getattr(d, "shape", ()))
            n = x.shape[0]
            if shape in ((n,), (n, 1), (n, dim)):
                if not bool((d >= 0).all()):  # NaN fails too
                    _bad_diffusion(ops, x, d, "non-negative finite values")
                return ops.sqrt(2 * step * (d.reshape(n, 1) if len(shape) == 1 else d))
            if shape == (n, dim, dim):
                try:
                    return ops.cholesky(2 * step * d)
                except Exception as exc:  # numpy LinAlgError, torch linalg error
                    if "LinAlg" not in type(exc).__name__ and "linalg" not in str(exc).lower():
                        raise
                    _bad_diffusion(ops, x, d, "positive definite matrices")
            raise ShapeError(
                "diffusion",
                f"an array of shape ({n},), ({n}, {dim}) or ({n}, {dim}, {dim})",
                f"shape {shape}",
            )

        return factor, None, "field"
    value = np.asarray(diffusion, dtype=float)
    if value.ndim == 0:
        if not (math.isfinite(float(value)) and float(value) > 0):
            raise ParameterError(
                "diffusion", "a positive finite number, matrix or callable", diffusion
            )
        return None, ops.array(math.sqrt(2 * step * float(value))), "scalar"
    if value.shape == (dim, dim):
        if not np.all(np.isfinite(value)) or np.any(
            np.linalg.eigvalsh(0.5 * (value + value.T)) <= 0
        ):
            raise ParameterError("diffusion", "a positive definite matrix", diffusion)
        return None, ops.array(np.linalg.cholesky(2 * step * value)), "matrix"
    raise ShapeError(
        "diffusion", f"a number, a {dim}x{dim} matrix or a callable", f"shape {value.shape}"
    )


def _bad_diffusion(ops: _Ops, x: Any, d: Any, expected: str) -> None:
    """Raise naming ``diffusion`` and the first point where its value is not acceptable."""
    values = ops.to_numpy(d)
    points = ops.to_numpy(x)
    n = values.shape[0]
    flat = values.reshape(n, -1)
    if values.ndim == 3:
        ok = np.array(
            [np.all(np.isfinite(m)) and np.all(np.linalg.eigvalsh(m) > 0) for m in values]
        )
    else:
        ok = np.all(np.isfinite(flat) & (flat >= 0), axis=1)
    i = int(np.argmin(ok))
    raise ParameterError(
        "diffusion",
        f"a callable returning {expected} (D is a diffusion coefficient)",
        f"{flat[i].tolist()} at the point {points[i].tolist()}",
    )


def _check_start(grad: Callable[[Any], Any], ops: _Ops, start: np.ndarray, step: float) -> None:
    """∇L at start must be finite and of the batch's shape, and one Euler step must be stable
    there: step × (largest curvature at start) < 2, else the discrete iteration moves away
    from the minimum by itself, growing without bound (no escape time exists)."""
    dim = start.size
    spread = 1e-4 * (1 + np.abs(start))
    points = np.vstack([start, start + np.diag(spread), start - np.diag(spread)])
    g = ops.to_numpy(grad(ops.array(points)))
    if tuple(g.shape) != points.shape:
        raise ShapeError(
            "grad", f"an array of the batch's shape {points.shape}", f"shape {tuple(g.shape)}"
        )
    if not np.all(np.isfinite(g)):
        i = int(np.argmin(np.all(np.isfinite(g), axis=1)))
        raise ParameterError(
            "grad",
            "a callable returning finite gradients",
            f"{g[i].tolist()} at the point {points[i].tolist()}",
        )
    jacobian = (g[1 : dim + 1] - g[dim + 1 :]).T / (2 * spread)  # column j: ∂∇L/∂θ_j
    curvature = float(np.max(np.linalg.eigvalsh(0.5 * (jacobian + jacobian.T))))
    if step * curvature > 2:
        raise DivergenceError(
            "step",
            f"a step below 2/curvature = {2 / curvature:.4g} (the Euler update is unstable "
            "at start otherwise)",
            step,
            f"the largest curvature of the loss at start is {curvature:.4g}, so "
            f"step × curvature = {step * curvature:.4g} > 2: paths leave the minimum by "
            "overshooting and grow without bound, not by escaping",
        )


def _diverged(ops: _Ops, x: Any, k: int, step: float, where: str) -> None:
    points = ops.to_numpy(x)
    bad = ~np.all(np.isfinite(points), axis=1)
    raise DivergenceError(
        "step",
        "paths that stay finite (a smaller step, a finite gradient and diffusion)",
        f"{int(bad.sum())} of {points.shape[0]} paths non-finite {where} at step {k} "
        f"(time {k * step:g})",
        "a path reached NaN or ±inf: the step is too large for the loss's curvature there, or "
        "grad or diffusion returned NaN/inf; no escape time is reported from such paths",
    )


def _memory_budget(n_paths: int, start: Any) -> None:
    """The paths' arrays (state, scratch, escape test: about 4 float64 per coordinate) must fit
    in half the memory available now."""
    from ._mfpt2d import _available_memory

    try:
        dim = max(1, int(np.size(start)))
    except (TypeError, ValueError):
        dim = 1
    estimate = 4.0 * 8 * min(n_paths, 10**18) * dim  # a float: 10**400 paths must not overflow
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


def _divergence(diffusion: Callable[[Any], Any], dim: int) -> Callable[[Any], Any]:
    """x ↦ (∇·D)(x), (∇·D)_i = Σ_j ∂_j D_ij, by central differences of the D callable (step
    ε = 6·10⁻⁶·(1 + |x_j|), relative error ~1e-10 for a smooth D). A scalar D(x) is D·I, a
    diagonal d(x) is diag(d)."""

    def divergence(x: Any) -> Any:
        n = x.shape[0]
        out = x * 0
        for j in range(dim):
            eps = 6e-6 * (1 + abs(x[:, j : j + 1]))
            shift = x * 0
            shift[:, j : j + 1] = eps
            up, down = diffusion(x + shift), diffusion(x - shift)
            diff = (up - down) / (2 * eps.reshape((n,) + (1,) * (up.ndim - 1)))
            if tuple(up.shape) in ((n,), (n, 1)):  # D·I: column j of the divergence is ∂_j D
                out[:, j] = diff.reshape(n)
            elif tuple(up.shape) == (n, dim):  # diag(d): ∂_j d_j
                out[:, j] = diff[:, j]
            else:  # full: Σ_i ∂_j D_ij adds to every row i
                out = out + diff[:, :, j]
        return out

    return divergence


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
        Batch size and the horizon in steps; paths not escaped by then are censored.
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
        Explicit seed (numpy: two SFC64 streams spawned from it, filling each block of normals
        in parallel threads; torch: torch.Generator): the same seed gives the same numbers on
        the CPU, whatever the core count. ``backend="torch"`` runs on ``device`` (CUDA where there is one).
    confidence
        Level of the reported intervals.
    check_every
        Check the escape surface every this many steps (escape times are then rounded up).
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
    >>> bool(lo < exact.value < hi)  # 95% interval around 30.3; exact 29.94
    True

    Write the gradient with products, as above: ``lambda z: z**3 - z`` gives the same paths,
    but numpy's ``power`` made the simulation 8× slower here. And the time step is part of the
    model: at ``step = η`` the result is the discrete update's escape time, which moves with η
    (docs/numerics.md); for the SDE, halve ``step`` and check that the answer does not move.
    """
    if backend not in ("numpy", "torch"):
        raise ParameterError("backend", "'numpy' or 'torch'", backend)
    n_paths, max_steps, check_every, seed = (
        _integer(name, value, low)
        for name, value, low in (
            ("n_paths", n_paths, 1),
            ("max_steps", max_steps, 1),
            ("check_every", check_every, 1),
            ("seed", seed, 0),
        )
    )
    _memory_budget(n_paths, start)
    step = float(real("step", step))
    if step <= 0:
        raise ParameterError(
            "step", "a positive finite time step (the learning rate for discrete SGD)", step
        )
    level = float(real("confidence", confidence))
    if not 0 < level < 1:
        raise ParameterError("confidence", "a level in (0, 1)", confidence)
    confidence = level
    if not callable(grad):
        raise ParameterError("grad", "a callable returning ∇L on a batch of points", grad)
    start_arr = np.atleast_1d(real_array("start", start))
    if start_arr.ndim != 1:
        raise ShapeError("start", "a finite point of shape (dim,)", start)
    dim = start_arr.size
    ops = _Ops(backend, seed, device, dtype)
    if not callable(diffusion):
        diffusion = real_array("diffusion", diffusion)
    factor_fn, factor_const, kind = _noise_factor(ops, diffusion, dim, float(step))
    _check_start(grad, ops, start_arr, float(step))
    if factor_fn is not None:
        factor_fn(ops.array(start_arr[None, :]))  # a bad D at start: an error naming it now
    alpha = float(numeric_alpha(interpretation))
    divergence = _divergence(diffusion, dim) if alpha and kind == "field" else None
    if escaped is None:
        if saddle is None:
            raise ParameterError(
                "escaped", "a callable, or saddle= and direction= for the default surface", None
            )
        saddle_arr = np.atleast_1d(real_array("saddle", saddle))
        direction_arr = np.atleast_1d(
            real_array("direction", direction)
            if direction is not None
            else np.sign(saddle_arr - start_arr)
        )
        if saddle_arr.shape != (dim,) or direction_arr.shape != (dim,) or not np.any(direction_arr):
            raise ShapeError(
                "saddle", f"a point and a non-zero direction of shape ({dim},)", (saddle, direction)
            )
        direction_arr = direction_arr / np.linalg.norm(direction_arr)
        distance = float((saddle_arr - start_arr) @ direction_arr)
        if distance <= 0:
            raise ParameterError(
                "direction", "a direction pointing from start towards the saddle", direction
            )
        m = 0.2 * distance if margin is None else float(real("margin", margin))
        if m < 0:
            raise ParameterError("margin", "a non-negative distance", margin)
        s_t, e_t = ops.array(saddle_arr), ops.array(direction_arr)

        def crossing(x: Any) -> Any:
            # the projection is NaN or ±inf exactly when a coordinate is (inf·0 is NaN)
            projection = (x - s_t) @ e_t
            if backend == "numpy":
                if not np.isfinite(projection.sum()):
                    _diverged(ops, x, k, step_f, "before the escape check")
            elif not bool(ops.torch.isfinite(projection).all()):
                _diverged(ops, x, k, step_f, "before the escape check")
            return projection > m

        escaped = crossing
    else:
        user_escaped = escaped

        def checked(x: Any) -> Any:
            finite = np.isfinite(x).all() if backend == "numpy" else ops.torch.isfinite(x).all()
            if not bool(finite):
                _diverged(ops, x, k, step_f, "before the escape check")
            return user_escaped(x)

        escaped = checked

    x = ops.array(np.broadcast_to(start_arr, (n_paths, dim)).copy())
    start_t = ops.array(start_arr)
    ids = np.arange(n_paths)  # which original path each active row is
    steps_done = np.zeros(n_paths, dtype=np.int64)
    times: list[float] = []
    escapes = 0
    clock = time.monotonic()
    step_f = float(step)
    block = _NoiseBlocks(ops, dim)
    scratch = np.empty_like(x) if backend == "numpy" else None
    for k in range(1, max_steps + 1):
        n = x.shape[0]
        noise = block.next(n)
        g = grad(x)
        if tuple(g.shape) != tuple(x.shape):
            raise ShapeError(
                "grad", f"an array of the batch's shape {tuple(x.shape)}", f"shape {tuple(g.shape)}"
            )
        if divergence is not None:  # α-interpretation as Itô: drift −∇L + α∇·D
            g = g - alpha * divergence(x)
        if scratch is not None:  # numpy: in place, into buffers of our own
            if kind == "field":
                factor = factor_fn(x)  # type: ignore[misc]  # Itô: at the start of the step
            drift = np.multiply(g, step_f, out=scratch[:n])
            x -= drift
            if kind == "scalar":
                noise *= factor_const
                x += noise
            elif kind == "matrix":
                x += noise @ factor_const.T
            else:
                x += (factor @ noise[..., None])[..., 0] if factor.ndim == 3 else factor * noise
        else:
            if kind == "scalar":
                kick = factor_const * noise
            elif kind == "matrix":
                kick = noise @ factor_const.T
            else:
                factor = factor_fn(x)  # type: ignore[misc]
                kick = (factor @ noise[..., None])[..., 0] if factor.ndim == 3 else factor * noise
            x = x - step_f * g + kick
        if k % check_every and k != max_steps:
            continue
        mask = escaped(x)
        if not bool(mask.any()):
            continue
        hit = ops.nonzero(mask)
        if hit.size:
            escapes += hit.size
            if restart:
                x[hit] = start_t
            else:
                times.extend(k * step_f for _ in range(hit.size))
                steps_done[ids[hit]] = k
                keep = np.ones(x.shape[0], dtype=bool)
                keep[hit] = False
                ids = ids[keep]
                x = x[keep] if backend == "numpy" else x[ops.torch.as_tensor(keep, device=x.device)]
                if x.shape[0] == 0:
                    break
        if progress and time.monotonic() - clock > 1.0:
            clock = time.monotonic()
            print(
                f"\rsimulate_escape: step {k}/{max_steps}, escaped {escapes}",
                end="",
                file=sys.stderr,
                flush=True,
            )
    if progress:
        print(file=sys.stderr)
    last = k
    if restart:
        time_at_risk = n_paths * last * step_f
        censored = 0
    else:
        steps_done[ids] = last
        time_at_risk = float(steps_done.sum()) * step_f
        censored = int(ids.size)
    rate = escapes / time_at_risk
    rate_interval = poisson_rate_interval(escapes, time_at_risk, confidence)
    times_arr = np.asarray(times)
    from scipy import special

    z = float(special.ndtri(0.5 + confidence / 2))
    if not restart and censored == 0 and times_arr.size > 1:
        mean = float(times_arr.mean())
        half = z * float(times_arr.std(ddof=1)) / math.sqrt(times_arr.size)
        mean_interval = (mean - half, mean + half)
        how = "sample mean of the escape times (nothing censored), normal interval"
    else:
        mean = 1 / rate if rate > 0 else math.inf
        mean_interval = (
            1 / rate_interval[1],
            1 / rate_interval[0] if rate_interval[0] > 0 else math.inf,
        )
        how = "1/rate, rate = escapes / time at risk" + (
            " (renewal with restart)"
            if restart
            else f" ({censored} censored paths; exponential waiting times assumed)"
        )
    return EscapeSimulation(
        times=times_arr,
        final_positions=ops.to_numpy(x).copy(),
        n_paths=n_paths,
        n_escaped=escapes,
        n_censored=censored,
        time_at_risk=time_at_risk,
        rate=rate,
        rate_interval=rate_interval,
        mean_time=mean,
        mean_time_interval=mean_interval,
        confidence=confidence,
        step=step_f,
        steps=last,
        seed=seed,
        backend=backend,
        method=(
            f"Euler–Maruyama (Itô{'' if divergence is None else f'; α = {alpha:g} as drift α∇·D'}"
            f"), step {step_f:g}, {backend}; mean time: {how}"
        ),
    )
