"""A loss of n variables with exact derivatives: SymPy or torch autograd, never finite differences
where automatic differentiation is possible.

``loss_model(loss)`` accepts

- a SymPy expression of n symbols (ordered by name): gradient, Hessian and the third derivative
  contracted with a vector are derived by SymPy and lambdified to numpy (and to mpmath for
  critical points at any precision);
- a callable on torch tensors ``f(theta)`` whose last axis holds the n coordinates
  (``theta[..., 0]``) and which returns one value per point: derivatives by torch autograd;
- any other callable together with ``gradient=`` and ``hessian=`` callables (same convention).

Every method works on a batch of points of shape (m, n).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np

from flatminima.errors import ConvergenceError, HessianError, ParameterError, ShapeError

__all__ = ["LossModel", "critical_point", "loss_model"]

Array = np.ndarray


@dataclass
class LossModel:
    """Batched value, gradient, Hessian and third-derivative contraction of a loss."""

    dim: int
    value: Callable[[Array], Array]  # (m, n) -> (m,)
    gradient: Callable[[Array], Array]  # (m, n) -> (m, n)
    hessian: Callable[[Array], Array]  # (m, n) -> (m, n, n)
    third: Callable[[Array, Array], Array]  # (m, n), (m, n) -> (m, n, n): Σ_k ∂_k∂_i∂_j L p_k
    kind: str  # "sympy" | "torch" | "callable"
    mp_value: Callable[[list[mpmath.mpf]], mpmath.mpf] | None = None
    mp_gradient: Callable[[list[mpmath.mpf]], list[mpmath.mpf]] | None = None
    mp_hessian: Callable[[list[mpmath.mpf]], mpmath.matrix] | None = None
    symbols: tuple[Any, ...] = field(default_factory=tuple)


def _stack(values: list[Any], shape: tuple[int, ...]) -> Array:
    return np.stack([np.broadcast_to(np.asarray(v, dtype=float), shape) for v in values], axis=-1)


def _sympy_model(expr: Any) -> LossModel:
    import sympy as sp

    symbols = tuple(sorted(expr.free_symbols, key=lambda s: s.name))
    n = len(symbols)
    if n == 0:
        raise ParameterError("loss", "a SymPy expression of at least one symbol", expr)
    if any(isinstance(a, sp.Float) for a in sp.preorder_traversal(expr)):
        raise ParameterError(
            "loss",
            "a SymPy expression without float literals (use sp.Rational or sp.Integer)",
            expr,
            "a Python float inside SymPy is kept at double precision",
        )
    grad = [sp.diff(expr, s) for s in symbols]
    hess = [[sp.diff(g, s) for s in symbols] for g in grad]
    p = sp.symbols(f"_p0:{n}")
    third = [
        [
            sum((sp.diff(hess[i][j], symbols[k]) * p[k] for k in range(n)), sp.Integer(0))
            for j in range(n)
        ]
        for i in range(n)
    ]
    f_value = sp.lambdify(symbols, expr, "numpy")
    f_grad = sp.lambdify(symbols, grad, "numpy")
    f_hess = sp.lambdify(symbols, [h for row in hess for h in row], "numpy")
    f_third = sp.lambdify(symbols + tuple(p), [t for row in third for t in row], "numpy")
    m_value = sp.lambdify(symbols, expr, "mpmath")
    m_grad = sp.lambdify(symbols, grad, "mpmath")
    m_hess = sp.lambdify(symbols, hess, "mpmath")

    def value(x: Array) -> Array:
        return np.broadcast_to(np.asarray(f_value(*x.T), dtype=float), x.shape[:1]).copy()

    def gradient(x: Array) -> Array:
        return _stack(f_grad(*x.T), x.shape[:1])

    def hessian(x: Array) -> Array:
        return _stack(f_hess(*x.T), x.shape[:1]).reshape(x.shape[0], n, n)

    def third_fn(x: Array, q: Array) -> Array:
        return _stack(f_third(*x.T, *q.T), x.shape[:1]).reshape(x.shape[0], n, n)

    return LossModel(
        dim=n,
        value=value,
        gradient=gradient,
        hessian=hessian,
        third=third_fn,
        kind="sympy",
        mp_value=lambda v: m_value(*v),
        mp_gradient=lambda v: list(m_grad(*v)),
        mp_hessian=lambda v: mpmath.matrix(m_hess(*v)),
        symbols=symbols,
    )


def _torch_model(fn: Callable[..., Any], dim: int) -> LossModel:
    import torch

    def tensor(x: Array) -> Any:
        return torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64, device="cpu")

    def evaluate(t: Any) -> Any:
        out = fn(t)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(t.shape[:-1]):
            shape = getattr(out, "shape", type(out).__name__)
            raise ShapeError(
                "loss",
                "a callable returning one value per point (shape (m,) for input (m, n))",
                f"output {shape} for input {tuple(t.shape)}",
            )
        return out

    def value(x: Array) -> Array:
        with torch.no_grad():
            return evaluate(tensor(x)).numpy().copy()

    def _grad(t: Any) -> Any:
        (g,) = torch.autograd.grad(evaluate(t).sum(), t, create_graph=True)
        return g

    def gradient(x: Array) -> Array:
        t = tensor(x).requires_grad_(True)
        return _grad(t).detach().numpy().copy()

    def _jacobian_rows(vec: Any, t: Any) -> Any:
        rows = []
        for i in range(vec.shape[-1]):
            (r,) = torch.autograd.grad(vec[:, i].sum(), t, retain_graph=True, allow_unused=True)
            rows.append(torch.zeros_like(t) if r is None else r)
        return torch.stack(rows, dim=1)

    def hessian(x: Array) -> Array:
        t = tensor(x).requires_grad_(True)
        g = _grad(t)
        return _jacobian_rows(g, t).detach().numpy().copy()

    def third(x: Array, q: Array) -> Array:
        t = tensor(x).requires_grad_(True)
        g = _grad(t)
        (hq,) = torch.autograd.grad((g * tensor(q)).sum(), t, create_graph=True)
        return _jacobian_rows(hq, t).detach().numpy().copy()

    return LossModel(
        dim=dim, value=value, gradient=gradient, hessian=hessian, third=third, kind="torch"
    )


def _callable_model(fn: Callable[..., Any], dim: int, gradient: Any, hessian: Any) -> LossModel:
    def batch(f: Callable[..., Any], shape: Callable[[int], tuple[int, ...]], name: str) -> Any:
        def call(x: Array) -> Array:
            out = np.asarray(f(np.asarray(x, dtype=float)), dtype=float)
            if out.shape != shape(x.shape[0]):
                raise ShapeError(
                    name,
                    f"an array of shape {shape(x.shape[0])} for points of shape {x.shape}",
                    f"shape {out.shape}",
                )
            return out

        return call

    hess = batch(hessian, lambda m: (m, dim, dim), "hessian")

    def third(x: Array, q: Array) -> Array:
        # the user gave no third derivative: a central difference of their exact Hessian
        # along q, the one place where no automatic derivative is available
        norm = np.linalg.norm(q, axis=1, keepdims=True)
        step = 1e-4 * np.maximum(1.0, np.linalg.norm(x, axis=1, keepdims=True))
        unit = np.where(norm > 0, q / np.where(norm > 0, norm, 1.0), 0.0)
        diff = (hess(x + step * unit) - hess(x - step * unit)) / (2 * step[..., None])
        return np.asarray(diff * norm[..., None])

    return LossModel(
        dim=dim,
        value=batch(fn, lambda m: (m,), "loss"),
        gradient=batch(gradient, lambda m: (m, dim), "gradient"),
        hessian=hess,
        third=third,
        kind="callable",
    )


def _is_torch_callable(fn: Callable[..., Any], point: Array) -> bool:
    try:
        import torch
    except ImportError:
        return False
    t = torch.as_tensor(point[None, :], dtype=torch.float64, device="cpu").requires_grad_(True)
    try:
        out = fn(t)
    except Exception:
        return False
    return isinstance(out, torch.Tensor) and out.requires_grad


def loss_model(loss: Any, point: Array, gradient: Any = None, hessian: Any = None) -> LossModel:
    """The loss as a `LossModel`; ``point`` (the minimum) fixes the dimension of a callable."""
    import sympy as sp

    if isinstance(loss, sp.Basic):
        if gradient is not None or hessian is not None:
            raise ParameterError(
                "gradient", "None for a SymPy loss (SymPy derives it)", "a callable"
            )
        model = _sympy_model(loss)
        if model.dim != point.shape[0]:
            raise ShapeError(
                "minimum",
                f"a point with {model.dim} coordinates (the symbols {model.symbols} of loss)",
                point.tolist(),
            )
        return model
    if not callable(loss):
        raise ParameterError(
            "loss", "a SymPy expression or a callable on arrays of shape (m, n)", loss
        )
    dim = point.shape[0]
    if gradient is not None or hessian is not None:
        if gradient is None or hessian is None or not callable(gradient) or not callable(hessian):
            raise ParameterError(
                "hessian" if gradient is not None else "gradient",
                "both gradient= and hessian= as callables on arrays of shape (m, n)",
                hessian if gradient is not None else gradient,
            )
        return _callable_model(loss, dim, gradient, hessian)
    if _is_torch_callable(loss, point):
        return _torch_model(loss, dim)
    raise ParameterError(
        "loss",
        "a SymPy expression, a callable that torch can differentiate (written with torch "
        "operations on a tensor of shape (m, n)), or gradient= and hessian= callables",
        loss,
        "no finite differences are taken of a loss: give its derivatives",
    )


def critical_point(
    model: LossModel, guess: Array, name: str, negative: int, tol: float = 1e-12
) -> tuple[Array, Array]:
    """Newton's method from ``guess`` to a critical point with ``negative`` negative Hessian
    eigenvalues; returns the point and its Hessian. Errors name ``name``."""
    x = np.array(guess, dtype=float)
    role = "a minimum" if negative == 0 else "an index-1 saddle"
    scale = 1.0 + float(np.max(np.abs(x)))
    for _ in range(100):
        g = model.gradient(x[None])[0]
        h = model.hessian(x[None])[0]
        if not (np.all(np.isfinite(g)) and np.all(np.isfinite(h))):
            raise ParameterError(name, f"{role} where the loss is finite", guess.tolist())
        step = np.linalg.lstsq(h, g, rcond=None)[0]
        x = x - step
        if np.linalg.norm(step) <= tol * scale:
            break
    else:
        raise ConvergenceError(
            f"{name}: Newton's method from {guess.tolist()} did not converge to a critical point "
            "in 100 steps; give a better guess"
        )
    g = model.gradient(x[None])[0]
    h = model.hessian(x[None])[0]
    h = (h + h.T) / 2
    values = np.linalg.eigvalsh(h)
    big = max(1.0, float(np.max(np.abs(values))))
    if np.linalg.norm(x - guess) > 0.1 * scale:
        raise ParameterError(
            name,
            f"{role} (a point where the gradient vanishes)",
            guess.tolist(),
            f"Newton's method went to {x.tolist()}, far away; the gradient at the given "
            f"point has norm {np.linalg.norm(model.gradient(guess[None])[0]):.3g}",
        )
    count = int(np.sum(values < -1e-10 * big))
    if np.any(np.abs(values) <= 1e-10 * big):
        raise HessianError(
            name,
            f"{role} with a non-degenerate Hessian",
            guess.tolist(),
            f"Hessian eigenvalues {values.tolist()}",
        )
    if count != negative:
        raise HessianError(
            name,
            f"{role} (Hessian with {negative} negative eigenvalue{'s' if negative != 1 else ''})",
            guess.tolist(),
            f"the critical point {x.tolist()} has Hessian eigenvalues {values.tolist()}",
        )
    del g
    return x, h
