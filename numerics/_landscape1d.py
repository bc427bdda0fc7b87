"""A 1-D loss and diffusion, from SymPy expressions or callables, ready for mpmath.

SymPy input is differentiated symbolically, its Float literals are turned into the exact
rationals of their decimal form (docs/conventions.md trap 4), the jumps of a ``Piecewise`` diffusion are
found and used as breakpoints, and the critical points of a polynomial loss are found at working
precision. Callables are used as they are (mpf in, mpf out); their derivative is taken with
``mpmath.diff`` only when the diffusion is not constant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mpmath
import sympy as sp

from flatminima.errors import ParameterError
from flatminima.theory._compile import mpmath_function

from ._checks import positive, real

__all__ = ["Landscape1D", "landscape_1d"]

Fn = Callable[[mpmath.mpf], mpmath.mpf]


@dataclass
class Landscape1D:
    loss: Fn
    diffusion: Fn
    gradient: Fn | None  # L'; None when the diffusion is constant (Φ = L/D needs no L')
    constant_diffusion: mpmath.mpf | None
    breakpoints: list[mpmath.mpf] = field(default_factory=list)
    critical_points: list[mpmath.mpf] | None = None  # None: not known, scan for them
    description: str = ""


def sympy_number(value: sp.Expr) -> mpmath.mpf:
    """A real SymPy number as an mpf at the working precision (never through a float)."""
    return sp.Float(sp.N(value, mpmath.mp.dps + 5), mpmath.mp.dps + 5)._to_mpmath(
        mpmath.mp.prec + 10
    )


def _exact(expr: sp.Expr) -> sp.Expr:
    floats = expr.atoms(sp.Float)
    return expr.xreplace({f: sp.Rational(str(f)) for f in floats}) if floats else expr


def _single_symbol(
    name: str, expr: sp.Expr, allowed: set[sp.Symbol] | None = None
) -> sp.Symbol | None:
    symbols = expr.free_symbols
    if len(symbols) > 1:
        raise ParameterError(
            name, "a SymPy expression of one symbol", f"symbols {sorted(map(str, symbols))}"
        )
    if not symbols:
        return None
    (symbol,) = symbols
    if allowed is not None and allowed and symbol not in allowed:
        raise ParameterError(
            name, f"an expression of the same symbol as loss ({next(iter(allowed))})", str(symbol)
        )
    return symbol


def _piecewise_breakpoints(expr: sp.Expr, x: sp.Symbol) -> list[mpmath.mpf]:
    points: list[mpmath.mpf] = []
    for piecewise in expr.atoms(sp.Piecewise):
        for _, condition in piecewise.args:
            for relational in condition.atoms(sp.core.relational.Relational):
                for root in sp.solve(sp.Eq(relational.lhs, relational.rhs), x):
                    if root.is_real:
                        points.append(+sympy_number(root))
    return sorted(set(points))


def _polynomial_critical_points(gradient: sp.Expr, x: sp.Symbol) -> list[mpmath.mpf] | None:
    if gradient.has(sp.Piecewise):
        return None
    try:
        poly = sp.Poly(gradient, x)
    except sp.PolynomialError:
        return None
    if poly.degree() < 1:
        return []
    roots = poly.nroots(n=mpmath.mp.dps + 5, maxsteps=200)
    tol = mpmath.mpf(10) ** (-(mpmath.mp.dps // 2))
    return sorted(+sympy_number(sp.re(r)) for r in roots if abs(sp.im(r)) < tol)


def landscape_1d(loss: Any, diffusion: Any) -> Landscape1D:
    """Normalise ``loss`` and ``diffusion`` (SymPy expressions of one symbol, callables, or for
    the diffusion a positive number)."""
    x: sp.Symbol | None = None
    description = []
    # ---- loss
    if isinstance(loss, sp.Basic):
        loss_expr = _exact(sp.sympify(loss))
        x = _single_symbol("loss", loss_expr)
        if x is None:
            raise ParameterError("loss", "a SymPy expression of one symbol (not a constant)", loss)
        loss_fn = mpmath_function(loss_expr, x)  # straight-line libmp, ~2× lambdify
        gradient_expr = sp.diff(loss_expr, x)
        gradient_fn: Fn | None = mpmath_function(gradient_expr, x)
        critical = _polynomial_critical_points(gradient_expr, x)
        loss_breakpoints = _piecewise_breakpoints(loss_expr, x)
        description.append(f"L = {loss_expr}")
    elif callable(loss):
        loss_fn = loss
        gradient_fn = None
        critical = None
        loss_breakpoints = []
        description.append("L = <callable>")
    else:
        raise ParameterError("loss", "a SymPy expression of one symbol or a callable", loss)
    # ---- diffusion
    breakpoints: list[mpmath.mpf] = []
    constant: mpmath.mpf | None = None
    if isinstance(diffusion, sp.Basic) and not diffusion.is_number:
        diffusion_expr = _exact(sp.sympify(diffusion))
        dx = _single_symbol("diffusion", diffusion_expr, {x} if x is not None else None)
        diffusion_fn = (
            mpmath_function(diffusion_expr, dx)
            if dx is not None
            else sp.lambdify(dx, diffusion_expr, "mpmath")
        )
        if dx is not None:
            breakpoints = _piecewise_breakpoints(diffusion_expr, dx)
        description.append(f"D = {diffusion_expr}")
    elif callable(diffusion) and not isinstance(diffusion, sp.Basic):
        diffusion_fn = diffusion
        description.append("D = <callable>")
    else:
        constant = positive("diffusion", diffusion)
        value = constant

        def diffusion_fn(_: mpmath.mpf) -> mpmath.mpf:
            return value

        description.append(f"D = {mpmath.nstr(constant, 10)}")
    if constant is None and gradient_fn is None:
        loss_callable = loss_fn

        def gradient_fn(y: mpmath.mpf) -> mpmath.mpf:
            return mpmath.diff(loss_callable, y)

    return Landscape1D(
        loss=loss_fn,
        diffusion=diffusion_fn,
        gradient=gradient_fn if constant is None else None,
        constant_diffusion=constant,
        breakpoints=sorted(set(breakpoints) | set(loss_breakpoints)),
        critical_points=critical,
        description="; ".join(description),
    )


def as_point(name: str, value: Any) -> mpmath.mpf:
    """A finite point of the line (±inf only where the caller allows it)."""
    return real(name, value)
