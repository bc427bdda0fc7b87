"""Small models and data sets, as functions of a flat parameter vector (one model or a batch of
replicas at once).

Data (nothing is downloaded): ``two-blobs`` (two overlapping Gaussian classes in 2-D, seeded),
``xor`` (four noisy clusters at (±1, ±1) labelled by XOR, seeded: small MLPs have several
distinct minima on it), and the data sets scikit-learn ships inside its package: ``breast-cancer``, ``wine``, ``iris``,
``digits``. Features are standardised.

Models: ``logistic`` (a linear softmax classifier) and ``mlp`` (one tanh hidden layer). The loss
is the mean cross-entropy plus ``½ weight_decay ‖θ‖²``; the weight decay makes the minimum
isolated (without it a separable problem drifts to zero loss, docs/conventions.md §6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from flatminima.errors import ConvergenceError, ParameterError

__all__ = ["DATASETS", "Dataset", "Model", "load_dataset", "make_model", "train_to_minimum"]

DATASETS = ("two-blobs", "xor", "breast-cancer", "wine", "iris", "digits")
"""Data sets [`load_dataset`][flatminima.validation.load_dataset] knows: two synthetic ones and the
scikit-learn sets that ship inside its package (nothing is downloaded)."""


@dataclass(frozen=True)
class Dataset:
    """A classification data set: inputs ``x`` (N, d), integer labels ``y`` (N,).

    What [`load_dataset`][flatminima.validation.load_dataset] returns, and one of the forms
    [`probe`][flatminima.validation.probe] accepts as ``data`` (any object with ``.x`` and
    ``.y`` does). Build one from your own arrays::

        Dataset("mine", torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y), classes)

    Attributes
    ----------
    name
        A label for reports.
    x, y
        float64 inputs (the shipped sets standardised per feature) and int64 labels in
        0 … classes − 1.
    classes
        Number of classes.
    """

    name: str
    x: torch.Tensor  # (N, d) float64, standardised
    y: torch.Tensor  # (N,) int64 class labels
    classes: int

    @property
    def size(self) -> int:
        return int(self.x.shape[0])


def load_dataset(name: str, *, seed: int = 0, size: int = 256) -> Dataset:
    """A data set by name (see :data:`DATASETS`).

    Parameters
    ----------
    name
        One of ``DATASETS``.
    seed, size
        For the synthetic sets (``two-blobs``, ``xor``): the seed (default 0) and the number of
        examples (default 256).
    """
    if name == "two-blobs":
        rng = np.random.default_rng(seed)
        half = size // 2
        x = np.concatenate(
            [
                rng.normal([-0.75, 0.0], 1.0, (half, 2)),
                rng.normal([0.75, 0.0], 1.0, (size - half, 2)),
            ]
        )
        y = np.concatenate([np.zeros(half, dtype=np.int64), np.ones(size - half, dtype=np.int64)])
    elif name == "xor":
        rng = np.random.default_rng(seed)
        corners = rng.integers(0, 2, (size, 2))
        x = (2 * corners - 1) + 0.5 * rng.normal(size=(size, 2))
        y = (corners[:, 0] ^ corners[:, 1]).astype(np.int64)
    elif name in ("breast-cancer", "wine", "iris", "digits"):
        from sklearn import datasets

        loader = {
            "breast-cancer": datasets.load_breast_cancer,
            "wine": datasets.load_wine,
            "iris": datasets.load_iris,
            "digits": datasets.load_digits,
        }[name]
        bunch = loader()
        x, y = np.asarray(bunch.data, dtype=float), np.asarray(bunch.target, dtype=np.int64)
    else:
        raise ParameterError("dataset", f"one of {DATASETS}", name)
    scale = x.std(0)
    scale[scale == 0] = 1.0
    x = (x - x.mean(0)) / scale
    cpu = torch.device("cpu")
    return Dataset(
        name,
        torch.tensor(x, dtype=torch.float64, device=cpu),
        torch.tensor(y, device=cpu),
        int(y.max()) + 1,
    )


@dataclass(frozen=True)
class Model:
    """A classifier θ ↦ logits, with θ a flat vector (or a batch of them)."""

    kind: str  # "logistic" | "mlp"
    inputs: int
    classes: int
    hidden: int = 0
    weight_decay: float = 1e-2
    shapes: tuple[tuple[int, ...], ...] = field(default=())

    @property
    def size(self) -> int:
        return sum(math.prod(s) for s in self.shapes)

    def _unpack(self, theta: torch.Tensor) -> list[torch.Tensor]:
        """Split (..., P) into the weight tensors (..., *shape)."""
        out, start = [], 0
        for shape in self.shapes:
            n = math.prod(shape)
            out.append(theta[..., start : start + n].reshape(*theta.shape[:-1], *shape))
            start += n
        return out

    def logits(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """θ of shape (P,) or (R, P); x of shape (N, d) → logits (N, C) or (R, N, C)."""
        parts = self._unpack(theta)
        if self.kind == "logistic":
            w, b = parts
            return torch.einsum("nd,...dc->...nc", x, w) + b.unsqueeze(-2)
        w1, b1, w2, b2 = parts
        h = torch.tanh(torch.einsum("nd,...dh->...nh", x, w1) + b1.unsqueeze(-2))
        return torch.einsum("...nh,...hc->...nc", h, w2) + b2.unsqueeze(-2)

    def per_sample_loss(
        self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """Cross-entropy of each sample (no weight decay): (N,) or (R, N)."""
        logits = self.logits(theta, x)
        return torch.logsumexp(logits, -1) - torch.gather(
            logits, -1, y.expand(*logits.shape[:-1]).unsqueeze(-1)
        ).squeeze(-1)

    def data_loss(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.per_sample_loss(theta, x, y).mean(-1)

    def loss(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Training loss: mean cross-entropy + ½ weight_decay ‖θ‖²."""
        return self.data_loss(theta, x, y) + 0.5 * self.weight_decay * (theta**2).sum(-1)

    def init(self, seed: int) -> torch.Tensor:
        """Random initialisation (Glorot-uniform weights, zero biases), float64."""
        generator = torch.Generator(device="cpu").manual_seed(seed)
        parts = []
        for shape in self.shapes:
            if len(shape) == 2:
                bound = math.sqrt(6 / (shape[0] + shape[1]))
                parts.append(
                    (
                        torch.rand(shape, generator=generator, dtype=torch.float64, device="cpu")
                        * 2
                        - 1
                    )
                    * bound
                )
            else:
                parts.append(torch.zeros(shape, dtype=torch.float64, device="cpu"))
        return torch.cat([p.reshape(-1) for p in parts])


def make_model(kind: str, data: Dataset, *, hidden: int = 8, weight_decay: float = 1e-2) -> Model:
    """``logistic`` or ``mlp`` for ``data`` (binary problems keep two logits).

    Parameters
    ----------
    kind
        ``"logistic"`` or ``"mlp"`` (one tanh hidden layer).
    data
        The data set the model is for (input width, classes).
    hidden
        Hidden units of the MLP (default 8).
    weight_decay
        L2 coefficient added to the loss (default 0.01).
    """
    d, c = int(data.x.shape[1]), data.classes
    if kind == "logistic":
        shapes: tuple[tuple[int, ...], ...] = ((d, c), (c,))
    elif kind == "mlp":
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ParameterError("hidden", "a positive number of hidden units", hidden)
        shapes = ((d, hidden), (hidden,), (hidden, c), (c,))
    else:
        raise ParameterError("model", "'logistic' or 'mlp'", kind)
    if not (
        isinstance(weight_decay, int | float) and weight_decay >= 0 and math.isfinite(weight_decay)
    ):
        raise ParameterError("weight_decay", "a non-negative number", weight_decay)
    return Model(kind, d, c, hidden if kind == "mlp" else 0, float(weight_decay), shapes)


def train_to_minimum(
    model: Model, data: Dataset, *, seed: int, tolerance: float = 1e-7, max_rounds: int = 50
) -> tuple[torch.Tensor, dict[str, float]]:
    """Full-batch L-BFGS (float64) from ``init(seed)`` until ‖∇L‖ < ``tolerance``.

    Parameters
    ----------
    model, data
        The model and the data set whose full-batch loss is minimised.
    seed
        Seed of the initial parameters.
    tolerance
        Gradient norm to reach (default 1e-07).
    max_rounds
        L-BFGS rounds of up to 500 iterations each before giving up (default 50).

    Returns
    -------
    tuple
        θ* (a detached float64 tensor) and the training record
        ``{"loss": L(θ*), "grad_norm": ‖∇L(θ*)‖}``.
    """
    theta = model.init(seed).clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [theta],
        lr=1.0,
        max_iter=500,
        tolerance_grad=tolerance / 10,
        tolerance_change=0.0,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = model.loss(theta, data.x, data.y)
        value.backward()
        return value

    grad_norm = math.inf
    for _ in range(max_rounds):
        optimizer.step(closure)
        with torch.no_grad():
            theta_d = theta.detach()
        g = torch.func.grad(lambda t: model.loss(t, data.x, data.y))(theta_d)
        grad_norm = float(g.norm())
        if grad_norm < tolerance:
            break
    if grad_norm >= tolerance:
        raise ConvergenceError(
            f"training did not reach ‖∇L‖ < {tolerance} (got {grad_norm:.2e}); raise weight_decay"
        )
    final = theta.detach().clone()
    return final, {"loss": float(model.loss(final, data.x, data.y)), "grad_norm": grad_norm}
