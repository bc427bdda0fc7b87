"""A user's landscape for the validation layer's escape measurement (`measure_rate`).

`custom_landscape` builds a `Landscape` from a loss, a minimum and its saddles: Hessians,
barriers and the escape surfaces are computed (autograd, float64), the points are checked,
and the minibatch noise is the user's — any per-sample noise factor S(x), diagonal or not, or
the paper's C(x) = |H(x)|/B — instead of the shipped landscapes' per-coordinate harmonic switch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from flatminima.errors import ParameterError, ShapeError

from ._landscapes import Landscape

__all__ = ["custom_landscape"]

Tensor = torch.Tensor
_CPU = torch.device("cpu")


def _point(name: str, value: Any, dim: int | None) -> tuple[float, ...]:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(name, "a point: a sequence of finite numbers", value) from None
    if arr.ndim != 1 or arr.size == 0 or (dim is not None and arr.size != dim):
        want = (
            "a point (a 1-D sequence of numbers)"
            if dim is None
            else f"a point with the minimum's {dim} coordinates"
        )
        raise ShapeError(name, want, value)
    if not np.isfinite(arr).all():
        raise ParameterError(name, "a point of finite numbers", value)
    return tuple(float(v) for v in arr)


def _single(loss: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """L at one point (a (dim,) tensor) from the batched loss."""

    def value(z: Tensor) -> Tensor:
        return loss(z[None, :])[0]

    return value


def _autograd(loss: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """∇L on a batch, (R, dim) → (R, dim), by autograd of Σ_r L(x_r)."""

    def grad(x: Tensor) -> Tensor:
        with torch.enable_grad():
            z = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(loss(z).sum(), z)
        return g

    return grad


def _critical(
    name: str, point: tuple[float, ...], loss: Callable[[Tensor], Tensor], grad: Any
) -> tuple[float, np.ndarray]:
    """(L(p), ∇²L(p)) of a critical point p, or a ParameterError naming ``name``."""
    z = torch.tensor(point, dtype=torch.float64, device=_CPU)
    try:
        value = loss(z[None, :])
    except (IndexError, RuntimeError, ValueError, TypeError) as error:
        want = f"a point the loss accepts as a (1, {len(point)}) tensor"
        raise ParameterError(name, want, f"{point}: {type(error).__name__}: {error}") from None
    if not isinstance(value, Tensor) or tuple(value.shape) != (1,):
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ShapeError("loss", "a function mapping an (R, dim) tensor to R losses", got)
    hess = torch.func.hessian(_single(loss))(z).detach().numpy()
    hess = 0.5 * (hess + hess.T)
    g = grad(z[None, :])[0].detach().numpy()
    scale = max(1.0, float(np.abs(np.linalg.eigvalsh(hess)).max()))
    if not (np.isfinite(hess).all() and np.isfinite(g).all() and math.isfinite(float(value))):
        raise ParameterError(
            name, "a point where the loss is finite and twice differentiable", point
        )
    if float(np.linalg.norm(g)) > 1e-6 * scale:
        raise ParameterError(
            name,
            "a critical point of the loss (|∇L| ≤ 1e-6·max(1, ‖H‖))",
            f"{point} with |∇L| = {np.linalg.norm(g):.3g}",
        )
    return float(value[0]), hess


def _noise_factor(noise: Any, loss: Callable[[Tensor], Tensor]) -> Any:
    if noise is None:
        return None
    if noise == "hessian":
        hessian = torch.func.vmap(torch.func.hessian(_single(loss)))

        def factor(x: Tensor) -> Tensor:  # |H(x)|^{1/2}: C = |H|/B, the paper's model
            with torch.enable_grad():
                h = hessian(x.detach())
            values, vectors = torch.linalg.eigh(0.5 * (h + h.transpose(-1, -2)))
            return (vectors * values.abs().sqrt()[..., None, :]) @ vectors.transpose(-1, -2)

        return factor
    if not callable(noise):
        raise ParameterError("noise", "None, 'hessian' or a callable x ↦ S(x)", noise)
    return noise


def _check_noise(factor: Any, point: tuple[float, ...], dim: int) -> None:
    rows = dim + 1  # R ≠ dim: an unbatched (dim, dim) S cannot pass for a batched (R, dim) one
    x = torch.tensor([point] * rows, dtype=torch.float64, device=_CPU)
    try:
        s = factor(x)
    except (RuntimeError, TypeError, ValueError, IndexError) as error:
        reason = (str(error).strip().splitlines() or [""])[0][:160]
        want = f"a noise factor S(x) that can be evaluated on an (R, {dim}) batch"
        raise ParameterError("noise", want, f"{type(error).__name__}: {reason}") from None
    shapes = ((rows, dim), (rows, dim, dim))
    if not isinstance(s, Tensor) or tuple(s.shape) not in shapes:
        got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
        want = f"S(x) of shape (R, {dim}) or (R, {dim}, {dim}) for x of shape (R, {dim})"
        raise ShapeError("noise", want, got)
    if not torch.isfinite(s).all():
        raise ParameterError("noise", "a finite noise factor S(x)", "non-finite at the minimum")


def _escape_normal(name: str, hess: np.ndarray, saddle: Any, minimum: Any) -> tuple[float, ...]:
    values, vectors = np.linalg.eigh(hess)
    if not (values[0] < 0 and (len(values) == 1 or values[1] > 0)):
        raise ParameterError(
            name, "index-1 saddles (one negative Hessian eigenvalue, no zero one)", values.tolist()
        )
    e = vectors[:, 0]
    away = np.asarray(saddle) - np.asarray(minimum)
    return tuple(float(v) for v in (e if e @ away >= 0 else -e))


def custom_landscape(
    loss: Callable[[Tensor], Tensor],
    *,
    minimum: Sequence[float],
    saddles: Sequence[Sequence[float]],
    noise: Callable[[Tensor], Tensor] | str | None = None,
    grad: Callable[[Tensor], Tensor] | None = None,
    margin: float | None = None,
    other_minimum: Sequence[float] | None = None,
    name: str = "custom",
    description: str = "",
) -> Landscape:
    r"""A `Landscape` from a user's loss, for `measure_rate`.

    Parameters
    ----------
    loss
        L on a batch of points: an ``(R, dim)`` float64 tensor ↦ ``(R,)`` losses (torch, so that
        autograd gives ∇L and the Hessians).
    minimum, saddles
        The minimum a (``dim`` numbers) and the index-1 saddles an escape goes over (a list of
        points). Each must be a critical point (|∇L| ≤ 10⁻⁶·max(1, ‖H‖)); a's Hessian must be
        positive definite, each saddle's must have exactly one negative eigenvalue.
    noise
        The per-sample gradient noise for SGD: a minibatch of B samples has gradient
        ∇L + S(x) ε̄ with ε̄ the mean of B whitened per-sample coefficients, so covariance
        S(x)S(x)ᵀ/B (times ``loss_scale`` in `measure_rate`). Either a callable ``x ↦ S(x)`` of
        shape ``(R, dim)`` (diagonal S: a standard deviation per coordinate) or ``(R, dim, dim)``
        (any matrix: correlated, anisotropic, state-dependent); ``"hessian"`` for the paper's
        C(x) = |H(x)|/B (S = |H(x)|^{1/2}, one batched Hessian per step); ``None`` (default)
        for white noise only (SGD is then refused).
    grad
        ∇L on a batch, ``(R, dim) → (R, dim)``; default autograd of ``loss``.
    margin
        A replica has escaped once it is ``margin`` beyond a saddle along that saddle's unstable
        direction (oriented away from a): ``(x − s)·e > margin``. Default 0.2·|s − a| of the
        nearest saddle. The rate should not depend on it much (re-measure with another margin
        to check): beyond the saddle a path rarely comes back.
    other_minimum
        A second minimum (two-valley landscapes), kept on the result.
    name, description
        Labels of the landscape; default ``"custom"`` and ``""``.

    Returns
    -------
    Landscape
        With ``hess_min``, ``hess_saddles`` and ``barriers`` (L(s) − L(a)) computed in float64,
        and ``escape_normals`` (the unstable directions). It has no harmonic-switch fields
        (``switch``, ``switch_fractions`` … are empty): those describe the shipped landscapes'
        noise model.

    Examples
    --------
    A double well rotated by 30°, with noise correlated across the coordinates (ΔΦ ≈ 4):

    >>> import math, torch
    >>> from flatminima.validation import custom_landscape, measure_rate
    >>> c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    >>> def loss(x):
    ...     u, v = c * x[:, 0] + s * x[:, 1], -s * x[:, 0] + c * x[:, 1]
    ...     return (u**2 - 1) ** 2 + 2 * v**2
    >>> S = 6 * torch.tensor([[1.0, 0.6], [0.0, 0.8]], dtype=torch.float64)
    >>> land = custom_landscape(loss, minimum=(-c, -s), saddles=[(0.0, 0.0)],
    ...                         noise=lambda x: S.expand(x.shape[0], 2, 2))
    >>> round(land.barriers[0], 12), land.margin
    (1.0, 0.2)
    >>> r = measure_rate(land, noise="sgd", lr=0.01, batch_size=1, target_escapes=50)
    >>> r.escapes >= 50
    True

    Not like this: ``noise=lambda x: torch.eye(2)`` — S must be batched, ``(R, dim)`` or
    ``(R, dim, dim)`` for x of shape ``(R, dim)`` (a ShapeError names ``noise``).
    """
    a = _point("minimum", minimum, None)
    dim = len(a)
    if isinstance(saddles, str) or not isinstance(saddles, Sequence) or not saddles:
        raise ParameterError("saddles", "a non-empty list of points", saddles)
    points = tuple(_point("saddles", p, dim) for p in saddles)
    gradient = _autograd(loss) if grad is None else grad
    loss_a, hess_a = _critical("minimum", a, loss, gradient)
    if np.linalg.eigvalsh(hess_a).min() <= 0:
        values = np.linalg.eigvalsh(hess_a).tolist()
        raise ParameterError("minimum", "a minimum (positive definite Hessian)", values)
    found = [_critical("saddles", p, loss, gradient) for p in points]
    normals = tuple(
        _escape_normal("saddles", h, p, a) for (_, h), p in zip(found, points, strict=True)
    )
    barriers = tuple(value - loss_a for value, _ in found)
    if min(barriers) <= 0:
        raise ParameterError("saddles", "saddles above the minimum (L(s) > L(a))", barriers)
    if margin is None:
        margin = 0.2 * min(math.dist(p, a) for p in points)
    if not (isinstance(margin, int | float) and math.isfinite(margin) and margin > 0):
        raise ParameterError("margin", "a positive finite distance", margin)
    factor = _noise_factor(noise, loss)
    if factor is not None:
        _check_noise(factor, a, dim)
    return Landscape(
        name=name,
        dim=dim,
        loss_fn=loss,
        grad_fn=gradient,
        minimum=a,
        saddles=points,
        hess_min=hess_a,
        hess_saddles=tuple(h for _, h in found),
        barriers=barriers,
        margin=float(margin),
        description=description,
        other_minimum=None
        if other_minimum is None
        else _point("other_minimum", other_minimum, dim),
        noise_factor_fn=factor,
        escape_normals=normals,
    )
