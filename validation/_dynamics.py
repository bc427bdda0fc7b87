"""Escape rates of minibatch SGD and of GD with white noise on test landscapes: many replicas as
one batched torch computation.

Updates (one per iteration, every replica at once):

- SGD: θ ← θ − η·(1/B)Σ_{i∈batch} ∇ℓ_i(θ), batches of B indices drawn with replacement from the
  landscape's data set (`minibatch_noise_table`);
- white: θ ← θ − η λ∇L(θ) + √(2Dη) ξ, ξ ~ N(0, I).

Estimator (renewal, docs/conventions.md §6): a replica that passes the escape surface is counted and
restarted at the minimum; the rate per iteration is escapes / (replicas × iterations), the mean
first-passage time from the minimum in iterations is its inverse (renewal theorem), and the
interval is the exact Poisson (Garwood) one. All replicas start together at the minimum, so the
first iterations see no escapes (the paths first relax into the valley): counting from step 0
biases the rate low by about (relaxation time)/(run length) — 26% and 47% at ΔΦ = 3 and 2 in a
first version of this code. Escapes and exposure are therefore counted only after ``burn_in``
iterations (default: ten relaxation times 1/(ηλh_min) of the valley), when the replicas'
renewal phases have spread out. A run stops at ``target_escapes`` or at ``max_steps``; with no
escape at all the rate is an upper bound (interval from 0).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from flatminima.errors import ParameterError
from flatminima.numerics._engine import (
    Custom,
    DiscreteSGD,
    EulerMaruyama,
    MinibatchProblem,
    Ops,
    RateEstimate,
    SDEProblem,
)

from ._landscapes import Landscape, minibatch_noise_table
from ._renewal import renewal_rate

__all__ = ["RateMeasurement", "measure_rate"]


@dataclass(frozen=True)
class RateMeasurement(RateEstimate):
    """An escape rate per iteration with its exact Poisson interval (``escapes``, ``exposure``:
    replica-iterations at risk after the burn-in, ``rate``, ``rate_low``, ``rate_high``), and
    how it was run; ``stopped`` is "escapes" or "max_steps".

    ``iterations``/``log_iterations`` are the mean escape time in iterations, 1/rate, the name
    ``EscapeTime.iterations`` uses (``tau`` is continuous time, η·iterations, elsewhere).
    """

    replicas: int
    steps: int
    burn_in: int
    stopped: str

    @property
    def iterations(self) -> float:
        """Mean escape time in iterations, 1/rate (inf when nothing escaped)."""
        return 1 / self.rate if self.rate > 0 else math.inf

    @property
    def log_iterations(self) -> float:
        """log of the mean escape time in iterations, −log rate."""
        return -self.log_rate

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


@dataclass(frozen=True)
class Occupation:
    """Where the replicas of ``measure_occupation`` ended: ``in_start_valley`` of ``replicas``
    (``fraction``) after ``steps`` iterations."""

    in_start_valley: int
    replicas: int
    steps: int
    fraction: float


def _device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError("device", "a torch device such as 'cpu' or 'cuda'", device) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device", "an available device (no CUDA here)", device)
    return dev


@dataclass(frozen=True)
class _Update:
    """One iteration of minibatch SGD or of white-noise GD on ``loss_scale · L``, batched: the
    escape engine's problem and stepper for a test landscape."""

    noise: str
    lr: float
    loss_scale: float
    batch_size: int | None
    diffusion: float | None
    dataset_size: int
    seed: int

    def stepper(self, land: Landscape, ops: Ops) -> DiscreteSGD | EulerMaruyama:
        lam = float(self.loss_scale)
        if self.noise == "sgd":
            table = minibatch_noise_table(
                self.dataset_size, land.dim, self.seed + 1_000_003, ops.dtype
            ).to(ops.device)
            assert self.batch_size is not None

            def minibatch_grad(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
                if land.noise_factor_fn is not None:  # a user's S(x): covariance λ S Sᵀ / B
                    factor, mean = land.noise_factor_fn(x), table[idx].mean(1)
                    noise = (
                        factor * mean if factor.dim() == 2 else (factor @ mean[..., None])[..., 0]
                    )
                    return lam * land.grad(x) + math.sqrt(lam) * noise
                noise = table[idx].mean(1) * torch.sqrt(lam * land.noise_curvature(x))
                return lam * land.grad(x) + noise

            problem = MinibatchProblem(minibatch_grad, self.dataset_size, self.batch_size)
            return DiscreteSGD(problem, ops, self.lr)
        return EulerMaruyama(
            SDEProblem(land.grad, float(self.diffusion)),  # type: ignore[arg-type]
            ops,
            self.lr,
            land.dim,
            normals="step",
            drift_scale=lam,
        )


def _stepper(
    land: Landscape,
    noise: str,
    lr: float,
    loss_scale: float,
    batch_size: int | None,
    diffusion: float | None,
    dataset_size: int,
    seed: int,
    generator: torch.Generator,
    dtype: torch.dtype,
    dev: torch.device,
) -> Any:
    """x ↦ one iteration (the engine's stepper) drawing from ``generator``."""
    ops = Ops("torch", 0, dev, dtype)
    ops.rng = generator
    update = _Update(noise, lr, loss_scale, batch_size, diffusion, dataset_size, seed)
    return update.stepper(land, ops).step


def _check_options(
    noise: str,
    lr: object,
    loss_scale: object,
    batch_size: object,
    diffusion: object,
    counts: dict[str, object],
) -> None:
    if noise not in ("sgd", "white"):
        raise ParameterError("noise", "'sgd' or 'white'", noise)
    for name, value in (("lr", lr), ("loss_scale", loss_scale)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ParameterError(name, "a positive finite number", value)
    if noise == "sgd" and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ParameterError("batch_size", "a positive integer (minibatch SGD)", batch_size)
    if noise == "white" and not (
        isinstance(diffusion, int | float) and math.isfinite(diffusion) and diffusion > 0
    ):
        raise ParameterError("diffusion", "a positive finite number (white noise)", diffusion)
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParameterError(name, "a positive integer", value)


def measure_rate(
    land: Landscape,
    *,
    noise: str,
    lr: float,
    loss_scale: float = 1.0,
    batch_size: int | None = None,
    diffusion: float | None = None,
    replicas: int = 2048,
    target_escapes: int = 400,
    max_steps: int = 1_000_000,
    seed: int = 0,
    dataset_size: int = 4096,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    start: Any = None,
    burn_in: int | None = None,
) -> RateMeasurement:
    """Measure the escape rate per iteration of ``noise`` ("sgd" or "white") from the minimum of
    ``land``, with learning rate ``lr`` on the loss ``loss_scale · L`` (the escape engine:
    renewal estimator with burn-in, escape surface ``land.escaped``).

    Parameters
    ----------
    land
        The test landscape (its minimum, escape surface and, for SGD, its per-sample noise).
    noise
        ``"sgd"`` (minibatch SGD, needs ``batch_size``) or ``"white"`` (GD plus white noise,
        needs ``diffusion``).
    lr
        η, the learning rate (the time step of one iteration).
    loss_scale
        λ: the update descends λ·L (and SGD's per-sample noise scales with √λ); default 1.0.
    batch_size
        B, the minibatch size (SGD only).
    diffusion
        D of the white noise: θ ← θ − ηλ∇L(θ) + √(2Dη) ξ (white only).
    replicas
        Replicas run together as one batch; default 2048.
    target_escapes
        Escapes (counted after the burn-in) that end the run; default 400.
    max_steps
        Iterations after the burn-in at most; the run then stops with fewer escapes (with none,
        the rate is an upper bound). Default 1_000_000.
    seed
        Seed of the replicas' noise and of the SGD data set; default 0.
    dataset_size
        Samples of the SGD data set that batches are drawn from (with replacement); default
        4096.
    device, dtype
        Torch device and dtype of the replicas; default ``"cpu"`` and ``torch.float64``.
    start
        Restart point of an escaped replica and the start of all (default: the minimum).
    burn_in
        Iterations before escapes and exposure are counted (default: ten relaxation times
        1/(ηλh_min) of the valley, h_min the smallest curvature at the minimum).

    Returns
    -------
    RateMeasurement
        Escapes, exposure, the rate per iteration with its exact 95 % Poisson interval, and
        ``iterations`` = 1/rate.
    """
    counts: dict[str, object] = {
        "replicas": replicas,
        "target_escapes": target_escapes,
        "max_steps": max_steps,
    }
    _check_options(noise, lr, loss_scale, batch_size, diffusion, counts)
    if (
        noise == "sgd"
        and land.noise_factor_fn is None
        and land.noise_fn is None
        and not land.switch
    ):
        raise ParameterError(
            "landscape",
            "a landscape with a minibatch noise model for SGD (custom_landscape(..., noise=))",
            land.name,
        )
    ops = Ops("torch", seed, _device(device), dtype)
    x = land.start(replicas, dtype=dtype, device=ops.device)
    restart = (
        x[0].clone() if start is None else torch.as_tensor(start, dtype=dtype, device=ops.device)
    )
    x[:] = restart
    update = _Update(noise, lr, loss_scale, batch_size, diffusion, dataset_size, seed)
    stepper = update.stepper(land, ops)
    if burn_in is None:
        slowest = float(np.linalg.eigvalsh(land.hess_min).min())
        burn_in = math.ceil(10 / (lr * float(loss_scale) * slowest))
    rate, result = renewal_rate(
        stepper,
        Custom(land.escaped),
        x,
        restart=restart,
        burn_in=burn_in,
        target=target_escapes,
        max_steps=max_steps,
    )
    return RateMeasurement(
        **asdict(rate),
        replicas=replicas,
        steps=result.steps,
        burn_in=burn_in,
        stopped=result.stopped,
    )


def measure_occupation(
    land: Landscape,
    *,
    noise: str,
    lr: float,
    loss_scale: float,
    steps: int = 100_000,
    replicas: int = 2048,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    batch_size: int | None = None,
    diffusion: float | None = None,
    dataset_size: int = 4096,
) -> Occupation:
    """Start half the replicas in each valley of a two-valley landscape, run ``steps``
    iterations, and count where they end (left of the saddle: the landscape's own valley)."""
    if land.other_minimum is None:
        raise ParameterError("landscape", "a landscape with two valleys", land.name)
    ops = Ops("torch", seed, _device(device), dtype)
    x = land.start(replicas, dtype=dtype, device=ops.device)
    x[replicas // 2 :] = torch.as_tensor(land.other_minimum, dtype=dtype, device=ops.device)
    update = _Update(noise, lr, loss_scale, batch_size, diffusion, dataset_size, seed)
    step = update.stepper(land, ops).step
    for _ in range(steps):
        x = step(x)
    saddle = land.saddles[0][0]
    own_side = (x[:, 0] - saddle) * (land.minimum[0] - saddle) > 0
    count = int(own_side.sum())
    return Occupation(
        in_start_valley=count, replicas=replicas, steps=steps, fraction=count / replicas
    )
