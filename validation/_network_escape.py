"""Escape from a trained network's minimum under sharpness scaling, SGD against white noise.

Setting: a one-hidden-layer tanh MLP on two overlapping Gaussian blobs (cross-entropy + weight
decay, trained to ‖∇L‖ < 1e-7 by L-BFGS). Replicas start at the minimum θ*; each iteration is
either real minibatch SGD (B samples drawn with replacement, per replica) or full-batch GD with
injected white noise of diffusion D. All replicas run as one batched computation: the stacked
parameters (R, P) go through the network with batched einsums and one backward pass gives every
replica's gradient.

Escape (stated in the results): the training loss rises more than ``delta`` above L(θ*),
checked after every iteration (``check_every`` = 1: a first version checked every 5 iterations and
missed short excursions, more of them at large steps, which bent the white-noise power from 1 to
about 0.8); the replica is then counted and restarted at θ*
(renewal estimator after a burn-in of ten relaxation times of the top of the spectrum, as on
the landscapes). Gradients are hand-written backpropagation for the one-layer network, batched
over replicas (checked against autograd in the tests).

Sharpness k is run as step size (L_k(θ) = L(√kθ) with step η is L with step kη). Predictions:
SGD's rate falls exponentially in 1/k, γ ∝ k·exp(−E/k) — for a level-set escape with D = κH
the quasi-potential to the level δ is reached along the sharpest direction, E ≈ 2Bδ/(η λ_max);
white noise: γ ∝ k exactly in the continuous limit (the MFPT in the rescaled coordinates does
not depend on k; only the time unit does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from flatminima.numerics._simulate import poisson_rate_interval

from ._design import point_seed
from ._models import Model, load_dataset, make_model, train_to_minimum
from ._registry import Analysis, Point, Result, rows_of

if TYPE_CHECKING:
    from ._experiments import LawCase

__all__ = [
    "NetworkRatePoint",
    "NetworkRateResult",
    "measure_network_rate",
    "network_sharpness_analysis",
    "network_sharpness_points",
]


@dataclass(frozen=True)
class NetworkSetup:
    """A one-hidden-layer MLP and its data set: what a network escape point trains."""

    dataset: str
    size: int
    hidden: int
    weight_decay: float
    data_seed: int

    @property
    def name(self) -> str:
        return f"mlp({self.hidden})/{self.dataset}"


NETWORK = NetworkSetup("two-blobs", size=128, hidden=4, weight_decay=0.1, data_seed=3)


@dataclass
class NetworkRateResult(Result):
    """A network's escape rate (loss-jump criterion) with its Poisson interval."""

    escapes: int
    exposure: float
    rate: float
    rate_low: float
    rate_high: float
    steps: int
    burn_in: int
    loss_star: float
    lambda_max: float
    lambda_min: float
    parameters: int
    seconds: float = 0.0


@dataclass(frozen=True)
class NetworkRatePoint(Point):
    """Escape rate from a trained MLP's minimum (``measure_network_rate``): the data and model,
    the noise (``batch_size`` for SGD, ``diffusion`` for white noise), the loss jump ``delta``.
    The optional fields say where the point sits in its experiment."""

    TASK: ClassVar[str] = "network-rate"
    RESULT: ClassVar[type[Result]] = NetworkRateResult

    dataset: str
    size: int
    hidden: int
    weight_decay: float
    data_seed: int
    noise: str
    lr: float
    delta: float
    replicas: int
    target_escapes: int
    max_steps: int
    check_every: int
    seed: int
    experiment: str | None = None
    init_seed: int | None = None
    which: str | None = None
    k: float | None = None
    batch_size: int | None = None
    diffusion: float | None = None
    B_over_eta: float | None = None
    predicted_E: float | None = None
    predicted_slope: float | None = None
    device: str | None = None

    def run(self) -> NetworkRateResult:
        result: NetworkRateResult = NetworkRateResult.from_dict(
            measure_network_rate(self.to_dict())
        )
        return result


def _setup(point: dict[str, Any]) -> tuple[Model, Any, torch.Tensor, float, np.ndarray]:
    data = load_dataset(point["dataset"], seed=point["data_seed"], size=point["size"])
    model = make_model("mlp", data, hidden=point["hidden"], weight_decay=point["weight_decay"])
    theta, info = train_to_minimum(model, data, seed=point.get("init_seed", point["data_seed"]))
    hessian = torch.func.hessian(lambda t: model.loss(t, data.x, data.y))(theta)
    spectrum = torch.linalg.eigvalsh(0.5 * (hessian + hessian.T)).numpy()
    return model, data, theta, info["loss"], spectrum


def _batched_gradient(
    model: Model, theta: torch.Tensor, x: torch.Tensor, onehot: torch.Tensor
) -> torch.Tensor:
    """Per-replica gradient of the mean cross-entropy on the replica's own batch plus weight
    decay, by hand-written backpropagation (one tanh layer): θ (R, P), x (R, B, d),
    onehot (R, B, C) → (R, P). Checked against torch.autograd in the tests."""
    w1, b1, w2, b2 = model._unpack(theta)
    a = torch.tanh(torch.einsum("rbd,rdh->rbh", x, w1) + b1.unsqueeze(1))
    logits = torch.einsum("rbh,rhc->rbc", a, w2) + b2.unsqueeze(1)
    dlogits = (torch.softmax(logits, -1) - onehot) / x.shape[1]
    dw2 = torch.einsum("rbh,rbc->rhc", a, dlogits)
    db2 = dlogits.sum(1)
    dz = torch.einsum("rbc,rhc->rbh", dlogits, w2) * (1 - a**2)
    dw1 = torch.einsum("rbd,rbh->rdh", x, dz)
    db1 = dz.sum(1)
    grad = torch.cat([dw1.reshape(len(theta), -1), db1, dw2.reshape(len(theta), -1), db2], dim=1)
    return grad + model.weight_decay * theta


def measure_network_rate(point: dict[str, Any]) -> dict[str, Any]:
    """One network escape-rate point (see the module docstring)."""
    model, data, theta_star, loss_star, spectrum = _setup(point)
    device = torch.device(point.get("device", "cpu"))
    generator = torch.Generator(device=device).manual_seed(point["seed"])
    replicas, lr = point["replicas"], point["lr"]
    x_all, y_all = data.x.to(device), data.y.to(device)
    onehot_all = torch.nn.functional.one_hot(y_all, data.classes).to(x_all.dtype)
    x_full = x_all.expand(replicas, *x_all.shape)
    onehot_full = onehot_all.expand(replicas, *onehot_all.shape)
    start = theta_star.to(device)
    theta = start.repeat(replicas, 1)
    # ten relaxation times of the top of the spectrum (the directions that carry the loss)
    burn_in = math.ceil(10 / (lr * float(np.mean(spectrum[-5:]))))
    check = point["check_every"]
    delta = point["delta"]
    escapes, steps = 0, 0
    kick = math.sqrt(2 * point.get("diffusion", 0.0) * lr)
    with torch.no_grad():
        while steps < point["max_steps"] + burn_in:
            steps += 1
            if point["noise"] == "sgd":
                idx = torch.randint(
                    data.size, (replicas, point["batch_size"]), generator=generator, device=device
                )
                grad = _batched_gradient(model, theta, x_all[idx], onehot_all[idx])
                theta = theta - lr * grad
            else:
                grad = _batched_gradient(model, theta, x_full, onehot_full)
                theta = (
                    theta
                    - lr * grad
                    + kick
                    * torch.randn(
                        theta.shape, generator=generator, dtype=theta.dtype, device=device
                    )
                )
            if steps % check == 0:
                jump = model.loss(theta, x_all, y_all) - loss_star
                hit = jump > delta
                count = int(hit.sum())
                if count:
                    if steps > burn_in:
                        escapes += count
                    theta[hit] = start
                    if escapes >= point["target_escapes"]:
                        break
    exposure = float(replicas) * max(steps - burn_in, 1)
    low, high = poisson_rate_interval(escapes, exposure, 0.95)
    return {
        "escapes": escapes,
        "exposure": exposure,
        "rate": escapes / exposure,
        "rate_low": low,
        "rate_high": high,
        "steps": steps,
        "burn_in": burn_in,
        "loss_star": loss_star,
        "lambda_max": float(spectrum[-1]),
        "lambda_min": float(spectrum[0]),
        "parameters": model.size,
    }


def network_sharpness_points(quick: bool, device: str) -> list[NetworkRatePoint]:
    # design from the trained network's spectrum: step bound ηλ_max·k_max = 0.1, E(k=1) target
    _, _, _, _, spectrum = _setup(dict(NETWORK.__dict__))
    lam_max = float(spectrum[-1])
    ks_sgd = [1.0, 1.5, 2.0, 3.0] if quick else [1.0, 1.25, 1.5, 2.0, 2.5, 3.0]
    ks_white = [1.0, 2.0, 4.0] if quick else [1.0, 1.5, 2.0, 3.0, 4.0]
    target = 150 if quick else 400
    batch = 4
    eta_sgd = 0.1 / (lam_max * max(ks_sgd))
    e_target = 4.0 if quick else 5.0
    delta = e_target * eta_sgd * lam_max / (2 * batch)
    eta_white = 0.1 / (lam_max * max(ks_white))

    def point(noise: str, k: float, lr: float, **extra: Any) -> NetworkRatePoint:
        return NetworkRatePoint(
            experiment="sharpness",
            **NETWORK.__dict__,
            noise=noise,
            k=k,
            lr=lr,
            delta=delta,
            replicas=256,
            target_escapes=target,
            max_steps=200_000,
            check_every=1,
            seed=point_seed("sharpness-network", noise, k),
            device=device,
            **extra,
        )

    return [
        *(
            point(
                "sgd",
                k,
                k * eta_sgd,
                batch_size=batch,
                predicted_E=2 * batch * delta / (eta_sgd * lam_max),
            )
            for k in ks_sgd
        ),
        *(point("white", k, k * eta_white, diffusion=delta / 20) for k in ks_white),
    ]


def network_sharpness_analysis(
    points: list[NetworkRatePoint], results: list[NetworkRateResult]
) -> Analysis[LawCase]:
    from ._experiments import sharpness_case

    rows = rows_of(points, results)
    cases = []
    for noise in ("sgd", "white"):
        group = sorted((r for r in rows if r.point.noise == noise), key=lambda r: r.point.k or 0)
        case = sharpness_case(
            np.array([r.point.k for r in group]),
            np.array([r.result.escapes for r in group]),
            np.array([r.result.exposure for r in group]),
            noise,
            model=NETWORK.name,
            points=group,
            network=True,
        )
        first = group[0].point
        case.predicted_E = first.predicted_E
        case.criterion = (
            f"training loss more than δ = {first.delta:.4g} above the minimum's, checked every "
            f"{first.check_every} iterations"
        )
        cases.append(case)
    return Analysis(cases=cases, rows=rows)
