"""Escape engine, stepper piece: one update of every path at once (rows of a batch).

- `EulerMaruyama` (Itô): θ ← θ − c ∇L(θ) + F(θ) ξ with c = s·h (s the problem's
  ``drift_scale``), F F ᵀ = 2 h D(θ) (D at the start of the step), ξ ~ N(0, I); for an
  α-interpretation the drift gets + α h ∇·D. Weak order 1 in h (checked against the exact
  moments of a linear SDE in tests/numerics/test_engine.py). With h = η it *is* GD with
  injected white noise, and SGD when D = (η/2) C(θ).
- `DiscreteSGD`: θ ← θ − η g(θ, batch), with a fresh minibatch of indices per row and step
  (with replacement, or without: the problem's ``replace``).

numpy: updated in place in buffers of the stepper's own (``x`` is modified and returned);
torch: a new tensor per step. Both take any number of rows (paths may be removed between
steps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from flatminima.errors import ShapeError

from ._engine_backend import Ops
from ._engine_normals import BlockNormals, StepNormals, StreamNormals
from ._engine_problem import MinibatchProblem, SDEProblem, divergence_of, noise_factor

__all__ = ["DiscreteSGD", "EulerMaruyama"]


class EulerMaruyama:
    """Euler–Maruyama steps of an `SDEProblem` (see the module docstring)."""

    def __init__(
        self,
        problem: SDEProblem,
        ops: Ops,
        step: float,
        dim: int,
        *,
        normals: str = "block",
        drift_scale: float = 1.0,
    ) -> None:
        self.ops, self.grad, self.h = ops, problem.grad, float(step)
        self.c = self.h * drift_scale if drift_scale != 1.0 else self.h
        self.noise = noise_factor(ops, problem.diffusion, dim, self.h)
        self.alpha = problem.alpha
        self.divergence = (
            divergence_of(problem.diffusion, dim)
            if self.alpha and self.noise.kind == "field"
            else None
        )
        self._kind, self._constant = self.noise.kind, self.noise.constant
        # numpy, constant scalar noise: the normals come pre-multiplied by the factor (once per
        # chunk, in the generating threads), the same products as multiplying each step
        self._scaled = normals == "block" and ops.backend == "numpy" and self._kind == "scalar"
        self.normals: StreamNormals | BlockNormals | StepNormals
        if normals == "step":
            self.normals = StepNormals(ops, dim)
        elif ops.backend == "numpy":
            self.normals = StreamNormals(ops, dim, self._constant if self._scaled else None)
        else:
            self.normals = BlockNormals(ops, dim)
        self.scratch: Any = None
        self.step: Callable[[Any], Any] = (
            self._step_numpy if ops.backend == "numpy" else self._step_torch
        )

    def close(self) -> None:
        """The run is over: stop generating normals ahead."""
        if isinstance(self.normals, StreamNormals):
            self.normals.close()

    def describe(self) -> str:
        alpha = "" if self.divergence is None else f"; α = {self.alpha:g} as drift α∇·D"
        return f"Euler–Maruyama (Itô{alpha}), step {self.h:g}, {self.ops.backend}"

    def _drift(self, x: Any) -> Any:
        return self._checked(x, self.grad(x))

    def _checked(self, x: Any, g: Any) -> Any:
        """∇L of the batch's shape (else an error naming grad), plus the α-drift."""
        if tuple(g.shape) != tuple(x.shape):
            raise ShapeError(
                "grad", f"an array of the batch's shape {tuple(x.shape)}", f"shape {tuple(g.shape)}"
            )
        if self.divergence is not None:  # α-interpretation as Itô: drift −∇L + α∇·D
            g = g - self.alpha * self.divergence(x)
        return g

    def _step_numpy(self, x: np.ndarray) -> np.ndarray:
        """In place, into buffers of our own (the hot loop: attribute look-ups kept few)."""
        n = x.shape[0]
        noise = self.normals.next(n)
        g = self.grad(x)
        if g.shape != x.shape or self.divergence is not None:
            g = self._checked(x, g)
        kind = self._kind
        if kind == "field":
            factor = self.noise.field(x)  # type: ignore[misc]  # Itô: at the start of the step
        scratch = self.scratch
        if scratch is None or scratch.shape[0] < n:
            scratch = self.scratch = np.empty_like(x)
        x -= np.multiply(g, self.c, out=scratch[:n])
        if kind == "scalar":
            if not self._scaled:
                noise *= self._constant
            x += noise
        elif kind == "matrix":
            x += noise @ self._constant.T
        else:
            x += (factor @ noise[..., None])[..., 0] if factor.ndim == 3 else factor * noise
        return x

    def _step_torch(self, x: Any) -> Any:
        noise = self.normals.next(x.shape[0])
        g = self._drift(x)
        if self.noise.kind == "scalar":
            kick = self.noise.constant * noise
        elif self.noise.kind == "matrix":
            kick = noise @ self.noise.constant.T
        else:
            factor = self.noise.field(x)  # type: ignore[misc]
            kick = (factor @ noise[..., None])[..., 0] if factor.ndim == 3 else factor * noise
        return x - self.c * g + kick


class DiscreteSGD:
    """Minibatch SGD steps of a `MinibatchProblem`: one minibatch per row and step, from the
    backend's generator, indices drawn with replacement (``Ops.randint``) or without
    (``Ops.subsets``, when the problem's ``replace`` is False)."""

    def __init__(self, problem: MinibatchProblem, ops: Ops, lr: float) -> None:
        self.problem, self.ops, self.lr = problem, ops, lr

    def describe(self) -> str:
        return (
            f"minibatch SGD (batches of {self.problem.batch_size} of "
            f"{self.problem.dataset_size}, "
            f"{'with' if self.problem.replace else 'without'} replacement), step {self.lr:g}, {self.ops.backend}"
        )

    def step(self, x: Any) -> Any:
        n, size = self.problem.dataset_size, self.problem.batch_size
        if self.problem.replace:
            idx = self.ops.randint(n, (x.shape[0], size))
        else:
            idx = self.ops.subsets(n, x.shape[0], size)
        return x - self.lr * self.problem.grad(x, idx)
