"""The measured escape of ``probe``: real minibatch SGD on many replicas of the probed
parameters at once (``vmap`` of ``grad`` of ``functional_call``), escapes counted by a loss level,
run by the escape engine (numerics ``_engine``: stepper, level-set event, renewal estimator)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

import torch

from flatminima.errors import DivergenceError
from flatminima.numerics._engine import (
    DiscreteSGD,
    LevelSet,
    MinibatchProblem,
    Ops,
    RateEstimate,
    Renewal,
    rate_estimate,
    run_escape,
)

from ._persample import Batched, FunctionalModel
from ._probe_results import EscapeMeasurement, Prediction


@dataclass(frozen=True)
class _Measured(RateEstimate):
    """The replica run of ``_measure`` (what the probe's stage store keeps): escapes and
    exposure after the burn-in, the rate per iteration with its exact 95% interval, the
    iterations run, the seconds it took and the loss level L(a) + ΔL of the criterion."""

    steps: int
    seconds: float
    level: float


def _subsets(rows: int, n: int, size: int, gen: torch.Generator, dev: torch.device) -> torch.Tensor:
    """``rows`` independent uniform random subsets of ``size`` indices from range(n) (without
    replacement) from the generator ``gen``: the engine's `Ops.subsets` (Floyd's algorithm)."""
    ops = Ops("torch", 0, dev)
    ops.rng = gen
    out: torch.Tensor = ops.subsets(n, rows, size)
    return out


def _every_ten_seconds(
    function: Callable[[torch.Tensor], torch.Tensor],
    say: Callable[[str], None],
    message: Callable[[int, float], str],
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``function`` that, at most every ~10 s, says ``message(calls so far, seconds so far)``."""
    start = last = time.perf_counter()
    calls = 0

    def reported(value: torch.Tensor) -> torch.Tensor:
        nonlocal calls, last
        out = function(value)
        calls += 1
        now = time.perf_counter()
        if now - last > 10:
            last = now
            say(message(calls, now - start))
        return out

    return reported


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
) -> _Measured:
    """Minibatch SGD (batches without replacement) on ``replicas`` copies of θ at once, run by
    the escape engine: `DiscreteSGD` on a `MinibatchProblem`, the `LevelSet` event
    L(θ) > L(a) + ΔL checked every ``check_every`` iterations, `Renewal` counting (escaped
    replicas restart at the minimum) and `rate_estimate`. Escapes are seen per check window,
    so the burn-in is counted in whole windows (rounded down to a check): a window's escapes
    and its exposure are counted together. The value is what the probe's stage store keeps."""
    start = time.perf_counter()
    ops = Ops("torch", seed, fm.device)
    theta_a = fm.theta0.detach()
    level = float(fm.loss(theta_a)) + barrier
    grad_b = Batched(torch.func.grad(fm.batch_loss), (0, 0, 0), "the replicas' gradients")
    problem = MinibatchProblem(
        lambda thetas, idx: grad_b(thetas, fm.x[idx], fm.y[idx]), fm.samples, batch, replace=False
    )
    event = LevelSet(Batched(fm.loss, (0,), "the replicas' losses"), level, guard=True)
    windows = check_every * (burn_in // check_every)
    estimator = Renewal(ops, replicas, theta_a, 1.0, windows, target_escapes)
    step: Callable[[torch.Tensor], torch.Tensor] = DiscreteSGD(problem, ops, lr).step
    if progress is not None:
        step = _every_ten_seconds(
            step,
            progress,
            lambda done, seconds: (
                f"measure: step {done}/{max_steps}, {estimator.escapes} escapes, "
                f"ETA ≤ {(max_steps - done) * seconds / done:.0f} s"
            ),
        )
    try:
        with torch.no_grad():
            counts = run_escape(
                theta_a.expand(replicas, -1).clone(),
                step,
                event,
                estimator,
                max_steps=max_steps,
                check_every=check_every,
            )
    except DivergenceError as exc:
        raise DivergenceError(
            "lr", "a step size at which the SGD replicas stay finite", lr, str(exc.got)
        ) from exc
    rate = rate_estimate(counts.escapes, counts.exposure, 0.95, horizon="burn_in")
    seconds = time.perf_counter() - start
    return _Measured(**asdict(rate), steps=counts.steps, seconds=seconds, level=level)


def _measurement(
    ms: _Measured, pred: Prediction, replicas: int, burn: int, check_every: int
) -> EscapeMeasurement:
    def ratio(log_rate: float) -> float:
        if not math.isfinite(log_rate) or ms.rate <= 0:
            return math.nan
        return ms.rate / math.exp(log_rate)

    def inside(log_rate: float) -> bool:
        if not math.isfinite(log_rate):
            return False
        r = math.exp(log_rate)
        return bool(ms.rate_low / 2 <= r <= ms.rate_high * 2)

    logs = {
        "kappa": pred.log_rate_kappa,
        "measured": pred.log_rate_measured,
        "level": pred.log_rate_level,
        "full": pred.log_rate_full,
    }
    return EscapeMeasurement(
        criterion=(
            f"full-data loss above L(a) + ΔL = {ms.level:.6g} (ΔL = {pred.barrier:.4g}), "
            f"checked every {check_every} iterations; escaped replicas restart at the minimum"
        ),
        **{f.name: getattr(ms, f.name) for f in fields(RateEstimate)},
        replicas=replicas,
        steps=ms.steps,
        burn_in=burn,
        check_every=check_every,
        seconds=ms.seconds,
        ratio_kappa=ratio(logs["kappa"]),
        ratio_measured=ratio(logs["measured"]),
        ratio_level=ratio(logs["level"]),
        ratio_full=ratio(logs["full"]),
        agrees={name: inside(value) for name, value in logs.items()},
    )
