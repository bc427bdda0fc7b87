"""Escape engine, problem piece: what is simulated.

- `SDEProblem`: dθ = −∇L dt + √(2D(θ)) dW in the α-interpretation (``"ito"``,
  ``"stratonovich"``, ``"anti-ito"`` or α ∈ [0, 1]); D a number, a matrix or a batch callable.
  The interpretation is run as the equivalent Itô SDE, drift −∇L + α∇·D (∇·D by central
  differences of the D callable), with α from theory's `numeric_alpha`.
- `MinibatchProblem`: discrete SGD, θ ← θ − η g(θ, batch), where ``g(x, idx)`` is each
  replica's gradient on its own minibatch of indices ``idx`` (rows × batch_size, drawn by the
  stepper from ``dataset_size`` samples, with replacement, or without when ``replace`` is
  False).

The checks at the start point (finite ∇L of the batch's shape, a stable Euler step, an
acceptable D) live here too: they are about the problem, not the loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from flatminima.errors import DivergenceError, ParameterError, ShapeError

from ._engine_backend import Ops

__all__ = ["MinibatchProblem", "NoiseFactor", "SDEProblem", "interpretation_alpha_value"]


def interpretation_alpha_value(interpretation: Any) -> float:
    """α ∈ [0, 1] of an interpretation as a float, by theory's `numeric_alpha` (a symbolic α
    is refused: a simulation needs a number)."""
    from flatminima.theory._conventions import numeric_alpha

    return float(numeric_alpha(interpretation))


@dataclass(frozen=True)
class SDEProblem:
    """dθ = −∇L dt + √(2D) dW in the α-interpretation (see the module docstring)."""

    grad: Callable[[Any], Any]
    diffusion: Any
    interpretation: Any = "ito"

    @property
    def alpha(self) -> float:
        return interpretation_alpha_value(self.interpretation)


@dataclass(frozen=True)
class MinibatchProblem:
    """Discrete SGD: ``grad(x, idx)`` is each row's gradient on its minibatch ``idx``
    (indices drawn with replacement, or without when ``replace`` is False)."""

    grad: Callable[[Any, Any], Any]
    dataset_size: int
    batch_size: int
    replace: bool = True


@dataclass(frozen=True)
class NoiseFactor:
    """The noise of one Euler–Maruyama step as factor · ξ: ``kind`` "scalar" (a constant
    number), "matrix" (a constant matrix: ξ @ factorᵀ) or "field" (``field(x)`` each step:
    (n, 1) or (n, dim) elementwise, (n, dim, dim) a matrix per row)."""

    kind: str
    constant: Any = None
    field: Callable[[Any], Any] | None = None


def noise_factor(ops: Ops, diffusion: Any, dim: int, step: float) -> NoiseFactor:
    """The factor √(2 h D) (a Cholesky factor for a matrix D), checked."""
    if callable(diffusion):
        return NoiseFactor("field", field=_field_factor(ops, diffusion, dim, step))
    value = np.asarray(diffusion, dtype=float)
    if value.ndim == 0:
        if not (math.isfinite(float(value)) and float(value) > 0):
            raise ParameterError(
                "diffusion", "a positive finite number, matrix or callable", diffusion
            )
        return NoiseFactor("scalar", ops.array(math.sqrt(2 * step * float(value))))
    if value.shape == (dim, dim):
        if not np.all(np.isfinite(value)) or np.any(
            np.linalg.eigvalsh(0.5 * (value + value.T)) <= 0
        ):
            raise ParameterError("diffusion", "a positive definite matrix", diffusion)
        return NoiseFactor("matrix", ops.array(np.linalg.cholesky(2 * step * value)))
    raise ShapeError(
        "diffusion", f"a number, a {dim}x{dim} matrix or a callable", f"shape {value.shape}"
    )


def _field_factor(
    ops: Ops, diffusion: Callable[[Any], Any], dim: int, step: float
) -> Callable[[Any], Any]:
    def factor(x: Any) -> Any:
        d = diffusion(x)
        shape = tuple(getattr(d, "shape", ()))
        n = x.shape[0]
        if shape in ((n,), (n, 1), (n, dim)):
            if not bool((d >= 0).all()):  # NaN fails too
                _bad_diffusion(x, d, "non-negative finite values")
            return ops.sqrt(2 * step * (d.reshape(n, 1) if len(shape) == 1 else d))
        if shape == (n, dim, dim):
            try:
                return ops.cholesky(2 * step * d)
            except Exception as exc:  # numpy LinAlgError, torch linalg error
                if "LinAlg" not in type(exc).__name__ and "linalg" not in str(exc).lower():
                    raise
                _bad_diffusion(x, d, "positive definite matrices")
        raise ShapeError(
            "diffusion",
            f"an array of shape ({n},), ({n}, {dim}) or ({n}, {dim}, {dim})",
            f"shape {shape}",
        )

    return factor


def _bad_diffusion(x: Any, d: Any, expected: str) -> None:
    """Raise naming ``diffusion`` and the first point where its value is not acceptable."""
    from ._engine_backend import to_numpy

    values = to_numpy(d)
    points = to_numpy(x)
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


def check_start(grad: Callable[[Any], Any], ops: Ops, start: np.ndarray, step: float) -> None:
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


def divergence_of(diffusion: Callable[[Any], Any], dim: int) -> Callable[[Any], Any]:
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
