"""A user's model as a function of one flat parameter vector: loss, gradient, Hessian-vector
products and per-sample gradients projected on a subspace (torch.func).

The model is never modified: its parameters and buffers are copied (detached, converted to the
working dtype and device) and passed to ``torch.func.functional_call``. The loss of the theory is

    L(θ) = loss_fn(model(x; θ), y) + ½ wd ‖θ‖²,

with ``loss_fn`` a mean over the samples; it is evaluated in chunks of ``chunk_size`` samples
(L = Σ_c (n_c/N) loss_fn(chunk c), exact for a mean reduction).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["Batched", "FunctionalModel"]


class Batched:
    """``fn`` mapped over the leading dimension of its arguments whose ``in_dims`` entry is 0:
    ``torch.func.vmap``, or a loop over that dimension when vmap cannot batch the user's model.

    vmap fails on forwards that call ``.item()``, branch in Python on a tensor's value, or use
    an op without a batching rule. Then the same calls are made one at a time and stacked
    (the same numbers, slower), with one ``RuntimeWarning`` that names the model and vmap's
    reason. If the loop fails too, its error (the model's own) is raised.
    """

    def __init__(self, fn: Callable[..., Any], in_dims: Sequence[int | None], what: str) -> None:
        self.fn, self.in_dims, self.what = fn, tuple(in_dims), what
        self.vmapped = torch.func.vmap(fn, in_dims=self.in_dims)
        self.looping = False

    def __call__(self, *args: Any) -> Any:
        if self.looping:
            return self.looped(*args)
        try:
            return self.vmapped(*args)
        except RuntimeError as error:  # NotImplementedError (no batching rule) included
            out = self.looped(*args)
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            reason = reason.split(". ")[0][:160]
            warnings.warn(
                f"model: torch.func.vmap cannot batch {self.what} ({reason}); they are "
                "computed one at a time instead (the same numbers, slower)",
                RuntimeWarning,
                stacklevel=2,
            )
            self.looping = True
            return out

    def looped(self, *args: Any) -> Any:
        n = next(a.shape[0] for a, d in zip(args, self.in_dims, strict=True) if d == 0)
        return torch.stack(
            [
                self.fn(
                    *(a if d is None else a[i] for a, d in zip(args, self.in_dims, strict=True))
                )
                for i in range(n)
            ]
        )


class FunctionalModel:
    """``model`` and ``loss_fn`` on data (x, y) as functions of a flat θ (1-D tensor)."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        dtype: torch.dtype,
        device: torch.device,
        weight_decay: float = 0.0,
        chunk_size: int = 512,
    ) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.device = device
        self.dtype = dtype
        self.weight_decay = float(weight_decay)
        self.chunk_size = int(chunk_size)
        self.x = x.to(device=device, dtype=dtype) if x.is_floating_point() else x.to(device)
        self.y = y.to(device=device, dtype=dtype) if y.is_floating_point() else y.to(device)
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in params]
        self.shapes = [p.shape for _, p in params]
        self.numels = [p.numel() for _, p in params]
        self.theta0 = torch.cat(
            [p.detach().reshape(-1).to(device=device, dtype=dtype) for _, p in params]
        )
        self.frozen = {
            n: p.detach().to(device=device, dtype=dtype)
            for n, p in model.named_parameters()
            if not p.requires_grad
        }
        self.buffers = {
            n: (
                b.detach().to(device=device, dtype=dtype) if b.is_floating_point() else b.to(device)
            )
            for n, b in model.named_buffers()
        }
        self._sample_losses = Batched(self.per_sample_loss, (None, 0, 0), "the per-sample losses")

    @property
    def size(self) -> int:
        return int(self.theta0.numel())

    @property
    def samples(self) -> int:
        return int(self.x.shape[0])

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name, piece, shape in zip(
            self.names, torch.split(theta, self.numels), self.shapes, strict=True
        ):
            out[name] = piece.reshape(shape)
        return out

    def output(self, theta: torch.Tensor, x: torch.Tensor) -> Any:
        state = {**self.unflatten(theta), **self.frozen, **self.buffers}
        return torch.func.functional_call(self.model, state, (x,))

    def data_loss(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``loss_fn`` on one batch (no weight decay)."""
        return self.loss_fn(self.output(theta, x), y)

    def batch_loss(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The minibatch loss SGD differentiates: ``loss_fn`` on the batch + ½wd‖θ‖²."""
        loss = self.data_loss(theta, x, y)
        if self.weight_decay:
            loss = loss + 0.5 * self.weight_decay * (theta * theta).sum()
        return loss

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        """L(θ) on the whole data set, chunked."""
        n = self.samples
        total = theta.new_zeros(())
        for start in range(0, n, self.chunk_size):
            xs = self.x[start : start + self.chunk_size]
            ys = self.y[start : start + self.chunk_size]
            total = total + self.data_loss(theta, xs, ys) * (xs.shape[0] / n)
        if self.weight_decay:
            total = total + 0.5 * self.weight_decay * (theta * theta).sum()
        return total

    def gradient(self, theta: torch.Tensor | None = None) -> torch.Tensor:
        point = self.theta0 if theta is None else theta
        return torch.func.grad(self.loss)(point)

    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        """H v at θ₀ (forward-over-reverse: ``torch.func.jvp`` of ``torch.func.grad``)."""
        out = torch.func.jvp(torch.func.grad(self.loss), (self.theta0,), (v,))
        product: torch.Tensor = out[1]
        return product

    def hvp_operator(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """v ↦ H v at θ₀, reverse-over-reverse with the gradient's graph kept: the forward and
        backward passes are done once, each product is one more backward pass through that
        graph (measured 40× faster than ``hvp`` on a 207-parameter MLP on the CPU; the graph,
        about the activations of one forward-backward pass over the data, stays in memory)."""
        point = self.theta0.detach().clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(self.loss(point), point, create_graph=True)

        def product(v: torch.Tensor) -> torch.Tensor:
            (out,) = torch.autograd.grad(gradient, point, grad_outputs=v, retain_graph=True)
            return out.detach()

        return product

    def per_sample_loss(self, theta: torch.Tensor, xi: torch.Tensor, yi: torch.Tensor) -> Any:
        return self.loss_fn(self.output(theta, xi.unsqueeze(0)), yi.unsqueeze(0))

    def sample_losses(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> Any:
        """The (n,) vector of per-sample losses ℓ_i(θ) of a batch (``vmap`` over samples, or a
        loop where vmap cannot batch the model: see `Batched`)."""
        return self._sample_losses(theta, x, y)

    def projected_sample_gradients(self, basis: torch.Tensor) -> torch.Tensor:
        """Per-sample gradients of ``loss_fn`` (no weight decay) projected on ``basis`` (P×k):
        the (N, k) matrix G V, without forming G (N×P).

        G V = J V with J the Jacobian of the per-sample losses ℓ(θ) ∈ ℝ^N: per chunk, the
        vector-Jacobian product u ↦ Jᵀu is built once with its graph (one backward pass, kept),
        and J v_j is the derivative of the linear map u ↦ (Jᵀu)·v_j, i.e. one more backward
        pass through that graph per column ("double backward"; the k columns in one batched
        pass for small models, one after another for large ones). The largest thing held is the
        chunk's graph (about its activations), not chunk_size × P gradients. Exact: the same
        numbers as projecting ``vmap(grad)`` to rounding.
        """
        point = self.theta0.detach().clone().requires_grad_(True)
        batched = basis.shape[0] * basis.shape[1] <= BATCHED_LIMIT
        rows = []
        for start in range(0, self.samples, self.chunk_size):
            xs = self.x[start : start + self.chunk_size]
            ys = self.y[start : start + self.chunk_size]
            with torch.enable_grad():
                losses = self.sample_losses(point, xs, ys)
                weights = torch.zeros_like(losses, requires_grad=True)
                (pulled,) = torch.autograd.grad(losses, point, weights, create_graph=True)
                rows.append(_jacobian_columns(pulled, weights, basis, batched))
        return torch.cat(rows).detach()


#: Largest P·k for which the k double-backward passes run as one batched pass
#: (``is_grads_batched``): measured 1.8× faster at P = 2110, k = 20, but 2.4× slower than a
#: loop at P = 112 510 (vmapped backward kernels are not GEMMs), on the CPU.
BATCHED_LIMIT = 1_000_000


def _jacobian_columns(
    pulled: torch.Tensor, weights: torch.Tensor, basis: torch.Tensor, batched: bool
) -> torch.Tensor:
    """J V (n×k) from ``pulled`` = Jᵀu (graph kept) and u = ``weights``: column j is
    ∂((Jᵀu)·v_j)/∂u."""
    if batched:
        try:
            (out,) = torch.autograd.grad(
                pulled, weights, basis.T.contiguous(), retain_graph=True, is_grads_batched=True
            )
            return out.T
        except RuntimeError:  # an op without a batching rule in the user's model: loop
            pass
    columns = [
        torch.autograd.grad(pulled, weights, basis[:, j], retain_graph=True)[0]
        for j in range(basis.shape[1])
    ]
    return torch.stack(columns, 1)
