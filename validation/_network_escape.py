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

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from flatminima.numerics._engine import (
    DiscreteSGD,
    EulerMaruyama,
    LossJump,
    MinibatchProblem,
    Ops,
    RateEstimate,
    SDEProblem,
)
from flatminima.theory._formulas import compiled_formula

from ._design import kappa as sgd_kappa
from ._design import point_seed
from ._models import Model, load_dataset, make_model, train_to_minimum
from ._registry import Analysis, Point, Result, SweepLabels, label, point_type, rows_of
from ._renewal import renewal_rate

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
    """A one-hidden-layer MLP and its data set: what a network escape point trains (the
    point's first fields: a `NetworkRatePoint` is a setup plus its noise and run)."""

    dataset: str
    size: int
    hidden: int
    weight_decay: float
    data_seed: int

    @property
    def name(self) -> str:
        return f"mlp({self.hidden})/{self.dataset}"


NETWORK = NetworkSetup("two-blobs", size=128, hidden=4, weight_decay=0.1, data_seed=3)


@dataclass(frozen=True)
class NetworkRateResult(RateEstimate, Result):
    """A network's escape rate (loss-jump criterion): the engine's ``RateEstimate``
    (``escapes``, ``exposure``, ``rate`` and its Poisson interval) and how it was run."""

    steps: int
    burn_in: int
    loss_star: float
    lambda_max: float
    lambda_min: float
    parameters: int
    seconds: float = 0.0


@point_type("network-rate", NetworkRateResult)
class NetworkRatePoint(NetworkSetup, SweepLabels, Point):
    """Escape rate from a trained MLP's minimum (``measure_network_rate``): the data and model
    (the `NetworkSetup` fields), the noise (``batch_size`` for SGD, ``diffusion`` for white
    noise), the loss jump ``delta``. The optional labels (`SweepLabels`' ``k``,
    ``B_over_eta``, ``which``, and the prediction the analysis compares with,
    ``predicted_E`` or ``predicted_slope``) say where the point sits in its experiment."""

    noise: str
    lr: float
    delta: float
    replicas: int
    target_escapes: int
    max_steps: int
    check_every: int
    init_seed: int | None = None
    batch_size: int | None = None
    diffusion: float | None = None
    predicted_E: float | None = label()
    predicted_slope: float | None = label()

    def run(self) -> NetworkRateResult:
        return measure_network_rate(self)


def _setup(
    network: NetworkSetup, init_seed: int | None = None
) -> tuple[Model, Any, torch.Tensor, float, np.ndarray]:
    """The trained network (initialised from ``init_seed``, default the data seed), cached in
    the process: every point of a sweep trains the same network; the result is only read."""
    n = network
    seed = n.data_seed if init_seed is None else init_seed
    return _trained(n.dataset, n.data_seed, n.size, n.hidden, n.weight_decay, seed)


@functools.lru_cache(maxsize=4)
def _trained(
    dataset: str, data_seed: int, size: int, hidden: int, weight_decay: float, init_seed: int
) -> tuple[Model, Any, torch.Tensor, float, np.ndarray]:
    data = load_dataset(dataset, seed=data_seed, size=size)
    model = make_model("mlp", data, hidden=hidden, weight_decay=weight_decay)
    theta, info = train_to_minimum(model, data, seed=init_seed)
    hessian = torch.func.hessian(lambda t: model.loss(t, data.x, data.y))(theta)
    spectrum = torch.linalg.eigvalsh(0.5 * (hessian + hessian.T)).numpy()
    return model, data, theta, info["loss"], spectrum


def _forward(
    model: Model, theta: torch.Tensor, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden activations a (R, B, H) and logits (R, B, C) of each replica on its own batch."""
    w1, b1, w2, b2 = model._unpack(theta)
    a = torch.tanh(torch.einsum("rbd,rdh->rbh", x, w1) + b1.unsqueeze(1))
    return a, torch.einsum("rbh,rhc->rbc", a, w2) + b2.unsqueeze(1)


def _backward(
    model: Model,
    theta: torch.Tensor,
    x: torch.Tensor,
    onehot: torch.Tensor,
    a: torch.Tensor,
    logits: torch.Tensor,
) -> torch.Tensor:
    """Backpropagation of the mean cross-entropy plus weight decay from `_forward`'s a, logits."""
    _, _, w2, _ = model._unpack(theta)
    dlogits = (torch.softmax(logits, -1) - onehot) / x.shape[1]
    dw2 = torch.einsum("rbh,rbc->rhc", a, dlogits)
    db2 = dlogits.sum(1)
    dz = torch.einsum("rbc,rhc->rbh", dlogits, w2) * (1 - a**2)
    dw1 = torch.einsum("rbd,rbh->rdh", x, dz)
    db1 = dz.sum(1)
    grad = torch.cat([dw1.reshape(len(theta), -1), db1, dw2.reshape(len(theta), -1), db2], dim=1)
    return grad + model.weight_decay * theta


def _batched_gradient(
    model: Model, theta: torch.Tensor, x: torch.Tensor, onehot: torch.Tensor
) -> torch.Tensor:
    """Per-replica gradient of the mean cross-entropy on the replica's own batch plus weight
    decay, by hand-written backpropagation (one tanh layer): θ (R, P), x (R, B, d),
    onehot (R, B, C) → (R, P). Checked against torch.autograd in the tests."""
    a, logits = _forward(model, theta, x)
    return _backward(model, theta, x, onehot, a, logits)


class _FullBatch:
    """Full-data loss and gradient of every replica sharing one forward pass (white noise):
    the escape check after step k computes the forward at θ_k, and step k + 1's gradient reuses
    it unless the batch was changed in place since (a restart after an escape)."""

    def __init__(self, model: Model, x: torch.Tensor, y: torch.Tensor, replicas: int) -> None:
        self.model, self.y = model, y
        onehot = torch.nn.functional.one_hot(y, int(y.max()) + 1).to(x.dtype)
        self.x = x.expand(replicas, *x.shape)
        self.onehot = onehot.expand(replicas, *onehot.shape)
        self.key: tuple[int, int] | None = None
        self.cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def _pass(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (id(theta), theta._version)
        if self.key != key or self.cache is None:
            self.cache = _forward(self.model, theta, self.x[: len(theta)])
            self.key = key
        return self.cache

    def gradient(self, theta: torch.Tensor) -> torch.Tensor:
        a, logits = self._pass(theta)
        n = len(theta)
        return _backward(self.model, theta, self.x[:n], self.onehot[:n], a, logits)

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy + ½ weight_decay ‖θ‖² (as `Model.loss`) from the shared pass."""
        _, logits = self._pass(theta)
        picked = torch.gather(logits, -1, self.y.expand(*logits.shape[:-1]).unsqueeze(-1))
        data = (torch.logsumexp(logits, -1) - picked.squeeze(-1)).mean(-1)
        return data + 0.5 * self.model.weight_decay * (theta**2).sum(-1)


#: |float32 screen − float64 loss| allowed for the SGD escape check (the float32 loss of this
#: network is within ~1e-6 of the float64 one: 24-bit mantissas, O(1) values, 128-sample means).
SCREEN_BAND = 1e-4


def _float32_loss(model: Model, x: torch.Tensor, y: torch.Tensor) -> Any:
    """θ ↦ the full-data loss in float32 (the cheap screen of the SGD escape check). Two
    classes: cross-entropy is softplus(±(z₁ − z₀)), one logit difference per sample."""
    x32 = x.to(torch.float32)
    sign = (1 - 2 * y).to(torch.float32)  # z_other − z_y = sign · (z₁ − z₀)
    decay = 0.5 * model.weight_decay

    def screen(theta: torch.Tensor) -> torch.Tensor:
        t32 = theta.to(torch.float32)
        if model.kind != "mlp" or model.classes != 2:
            return model.loss(t32, x32, y).to(theta.dtype)
        w1, b1, w2, b2 = model._unpack(t32)
        a = torch.tanh(torch.matmul(x32, w1) + b1.unsqueeze(1))
        diff = torch.matmul(a, (w2[..., 1] - w2[..., 0]).unsqueeze(-1)).squeeze(-1)
        diff = diff + (b2[:, 1] - b2[:, 0]).unsqueeze(1)
        data = torch.nn.functional.softplus(sign * diff).mean(-1)
        return (data + decay * (t32 * t32).sum(-1)).to(theta.dtype)

    return screen


def _network_run(
    model: Model,
    data: Any,
    point: NetworkRatePoint,
    ops: Ops,
    loss_star: float,
    screened: bool,
) -> tuple[DiscreteSGD | EulerMaruyama, LossJump]:
    """The stepper and the loss-jump event of a network point: minibatch SGD (B samples with
    replacement per replica) with a float32-screened full-data loss check, or full-batch GD
    with white noise of diffusion D whose loss check shares the gradient's forward pass
    (``screened`` False: the exact full-data loss on every row, for the tests)."""
    x_all, y_all = data.x.to(ops.device), data.y.to(ops.device)
    if point.noise == "sgd":
        assert point.batch_size is not None
        onehot_all = torch.nn.functional.one_hot(y_all, data.classes).to(x_all.dtype)
        problem = MinibatchProblem(
            lambda theta, idx: _batched_gradient(model, theta, x_all[idx], onehot_all[idx]),
            data.size,
            point.batch_size,
        )
        event = LossJump(
            lambda theta: model.loss(theta, x_all, y_all),
            loss_star,
            point.delta,
            screen=_float32_loss(model, x_all, y_all) if screened else None,
            band=SCREEN_BAND,
        )
        return DiscreteSGD(problem, ops, point.lr), event
    full = _FullBatch(model, x_all, y_all, point.replicas)
    sde = SDEProblem(full.gradient, point.diffusion)
    stepper = EulerMaruyama(sde, ops, point.lr, model.size, normals="step")
    loss = full.loss if screened else (lambda theta: model.loss(theta, x_all, y_all))
    return stepper, LossJump(loss, loss_star, point.delta)


def measure_network_rate(point: NetworkRatePoint, *, screened: bool = True) -> NetworkRateResult:
    """One network escape-rate point (see the module docstring): the escape engine with the
    network's stepper, a loss-jump event and the renewal estimator after a burn-in.
    ``screened`` False checks the exact full-data loss on every row (the tests' reference)."""
    model, data, theta_star, loss_star, spectrum = _setup(point, point.init_seed)
    ops = Ops("torch", point.seed, point.device or "cpu", torch.float64)
    replicas, lr = point.replicas, point.lr
    start = theta_star.to(ops.device)
    # ten relaxation times of the top of the spectrum (the directions that carry the loss)
    burn_in = math.ceil(10 / (lr * float(np.mean(spectrum[-5:]))))
    stepper, event = _network_run(model, data, point, ops, loss_star, screened)
    with torch.no_grad():
        rate, counts = renewal_rate(
            stepper,
            event,
            start.repeat(replicas, 1),
            restart=start,
            burn_in=burn_in,
            target=point.target_escapes,
            max_steps=point.max_steps,
            check_every=point.check_every,
        )
    return NetworkRateResult(
        **dataclasses.asdict(rate),  # escapes, exposure, rate, rate_low, rate_high
        steps=counts.steps,
        burn_in=burn_in,
        loss_star=loss_star,
        lambda_max=float(spectrum[-1]),
        lambda_min=float(spectrum[0]),
        parameters=model.size,
    )


def network_sharpness_points(quick: bool, device: str) -> list[NetworkRatePoint]:
    # design from the trained network's spectrum: step bound ηλ_max·k_max = 0.1, E(k=1) target
    _, _, _, _, spectrum = _setup(NETWORK)
    lam_max = float(spectrum[-1])
    ks_sgd = [1.0, 1.5, 2.0, 3.0] if quick else [1.0, 1.25, 1.5, 2.0, 2.5, 3.0]
    ks_white = [1.0, 2.0, 4.0] if quick else [1.0, 1.5, 2.0, 3.0, 4.0]
    target = 150 if quick else 400
    batch = 4
    eta_sgd = 0.1 / (lam_max * max(ks_sgd))
    e_target = 4.0 if quick else 5.0
    kappa = sgd_kappa(eta_sgd, batch)  # D = κH
    delta = e_target * kappa * lam_max  # E = δ/(κλ_max): the level set's quasi-potential
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
                predicted_E=float(
                    compiled_formula("quasi_potential_white").value(
                        Delta_L=delta, D=kappa * lam_max
                    )
                ),
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
