"""The measured escape of ``probe``: real minibatch SGD on many replicas of the probed
parameters at once (``vmap`` of ``grad`` of ``functional_call``), escapes counted by a loss level."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch

from flatminima.numerics._simulate import poisson_rate_interval

from ._persample import FunctionalModel
from ._probe_results import EscapeMeasurement, Prediction


def _subsets(rows: int, n: int, size: int, gen: torch.Generator, dev: torch.device) -> torch.Tensor:
    """``rows`` independent uniform random subsets of ``size`` indices from range(n) (without
    replacement), by Floyd's algorithm vectorized over the rows: O(rows·size²), not O(rows·n)."""
    sel = torch.empty((rows, size), dtype=torch.long, device=dev)
    for c, j in enumerate(range(n - size, n)):
        t = (torch.rand(rows, generator=gen, device=dev, dtype=torch.float64) * (j + 1)).long()
        t = t.clamp_max(j)
        if c:
            dup = (sel[:, :c] == t[:, None]).any(1)
            t = torch.where(dup, torch.full_like(t, j), t)
        sel[:, c] = t
    return sel


def _measure(
    fm: FunctionalModel,
    *,
    lr: float,
    batch: int,
    barrier: float,
    replicas: int,
    max_steps: int,
    check_every: int,
    burn_in: int,
    target_escapes: int,
    seed: int,
    progress: Callable[[str], None] | None,
) -> dict[str, Any]:
    """Minibatch SGD (batches without replacement) on ``replicas`` copies of θ at once."""
    start = time.perf_counter()
    dev = fm.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    theta_a = fm.theta0.detach()
    level = float(fm.loss(theta_a)) + barrier
    thetas = theta_a.expand(replicas, -1).clone()
    grad_b = torch.func.vmap(torch.func.grad(fm.batch_loss), in_dims=(0, 0, 0))
    full = torch.func.vmap(fm.loss)
    n = fm.samples
    escapes = 0
    exposure = 0.0
    step = 0
    last = start
    while step < max_steps:
        for _ in range(check_every):
            idx = _subsets(replicas, n, batch, gen, dev)
            g = grad_b(thetas, fm.x[idx], fm.y[idx])
            thetas = thetas - lr * g
        step += check_every
        with torch.no_grad():
            losses = full(thetas)
        out = losses > level
        if step > burn_in:
            escapes += int(out.sum())
            exposure += replicas * check_every
        if bool(out.any()):
            thetas[out] = theta_a
        if not bool(torch.isfinite(losses).all()):
            bad = ~torch.isfinite(losses)
            thetas[bad] = theta_a
        if escapes >= target_escapes:
            break
        now = time.perf_counter()
        if progress is not None and now - last > 10:
            last = now
            rate = step / (now - start)
            progress(
                f"measure: step {step}/{max_steps}, {escapes} escapes, "
                f"ETA ≤ {(max_steps - step) / rate:.0f} s"
            )
    low, high = poisson_rate_interval(escapes, exposure, 0.95) if exposure > 0 else (0.0, math.inf)
    return {
        "escapes": escapes,
        "exposure": exposure,
        "rate": escapes / exposure if exposure > 0 else 0.0,
        "rate_low": low,
        "rate_high": high,
        "steps": step,
        "seconds": time.perf_counter() - start,
        "level": level,
    }


def _measurement(
    ms: dict[str, Any], pred: Prediction, replicas: int, burn: int, check_every: int
) -> EscapeMeasurement:
    def ratio(log_rate: float) -> float:
        if not math.isfinite(log_rate) or ms["rate"] <= 0:
            return math.nan
        return ms["rate"] / math.exp(log_rate)

    def inside(log_rate: float) -> bool:
        if not math.isfinite(log_rate):
            return False
        r = math.exp(log_rate)
        return bool(ms["rate_low"] / 2 <= r <= ms["rate_high"] * 2)

    logs = {
        "kappa": pred.log_rate_kappa,
        "measured": pred.log_rate_measured,
        "level": pred.log_rate_level,
    }
    counted = ("escapes", "exposure", "rate", "rate_low", "rate_high", "steps", "seconds")
    return EscapeMeasurement(
        criterion=(
            f"full-data loss above L(a) + ΔL = {ms['level']:.6g} (ΔL = {pred.barrier:.4g}), "
            f"checked every {check_every} iterations; escaped replicas restart at the minimum"
        ),
        replicas=replicas,
        burn_in=burn,
        check_every=check_every,
        ratio_kappa=ratio(logs["kappa"]),
        ratio_measured=ratio(logs["measured"]),
        ratio_level=ratio(logs["level"]),
        agrees={name: inside(value) for name, value in logs.items()},
        **{name: ms[name] for name in counted},
    )
