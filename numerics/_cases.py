"""Test landscapes, declared once: a case registry used by experiments, tests, docs and benchmarks.

Each [`LandscapeCase`][flatminima.numerics.LandscapeCase] holds a loss as a SymPy expression
(what `mfpt_1d`, `landscape_escape_time` and the docs read), the same loss as an elementwise
callable for array code (numpy, torch, floats: what the validation layer's torch landscapes
and Monte Carlo loops run; a test checks the two forms agree), its minima and saddles, and the
exact references known for it (closed forms where they exist, e.g. the double well's barrier
1/4; the switch point of the harmonic switch model).

Cases
-----
``"double-well"``
    L(x) = x⁴/4 − x²/2: minimum −1 (H = 2), saddle 0 (|H| = 1), ΔL = 1/4, inflection −1/√3.
``"styblinski-tang-1d"``
    The Styblinski–Tang slice L(x) = (x⁴ − 16x² + 5x)/2: local minimum a ≈ 2.7468
    (H_a ≈ 29.27), saddle (local maximum) b ≈ 0.1567 (|H_b| ≈ 15.85), ΔL ≈ 25.23, inflection
    c = √(8/3) between them, s ≈ 0.449 with the switch at c.
``"styblinski-tang-2d"``
    L(x) + L(y) of the slice: minimum (a, a), two escape saddles (b, a) and (a, b).

Why here: the registry must be importable without torch (tests of the numerics layer, the docs,
the benchmarks) and it evaluates references with mpmath, which the SymPy-only theory layer does
not; the validation layer builds its torch landscapes from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import mpmath
import sympy as sp

from flatminima.errors import ParameterError
from flatminima.theory._conventions import registered_name

__all__ = ["LANDSCAPE_CASES", "LandscapeCase", "landscape_case"]

#: The coordinate symbols of every case (x for 1-D, x and y for 2-D).
X, Y = sp.symbols("x y", real=True)


@dataclass(frozen=True)
class LandscapeCase:
    """One test landscape.

    Attributes
    ----------
    name, description
        Registry name and a one-line description.
    loss
        L as a SymPy expression of ``variables`` (exact: Integers and Rationals only).
    variables
        ``(x,)`` or ``(x, y)``.
    minima, saddles
        Critical points (float coordinates, Newton's method in double precision on ``gradient``
        for the cases without a closed form).
    switch
        Per coordinate, where the harmonic switch model switches the noise curvature from the
        minimum's value to the saddle's (the inflection point between them), exact.
    value, gradient, hessian
        For 1-D cases and separable n-D cases: the loss of one coordinate and its first two
        derivatives as elementwise callables (floats, numpy arrays, torch tensors).
    exact
        Closed-form references (SymPy) where known: ``a``, ``b``, ``H_a``, ``H_b``,
        ``Delta_L``, ``s``.
    """

    name: str
    description: str
    loss: sp.Expr
    variables: tuple[sp.Symbol, ...]
    minima: tuple[tuple[float, ...], ...]
    saddles: tuple[tuple[float, ...], ...]
    switch: tuple[sp.Expr, ...]
    value: Callable[[Any], Any] = field(repr=False)
    gradient: Callable[[Any], Any] = field(repr=False)
    hessian: Callable[[Any], Any] = field(repr=False)
    exact: dict[str, sp.Expr] = field(default_factory=dict, repr=False)

    @property
    def dim(self) -> int:
        return len(self.variables)

    def loss_in(self, *symbols: sp.Symbol) -> sp.Expr:
        """The loss written in the caller's own symbols (one per coordinate)."""
        if len(symbols) != self.dim:
            raise ParameterError("symbols", f"{self.dim} SymPy symbol(s)", symbols)
        return self.loss.xreplace(dict(zip(self.variables, symbols, strict=True)))

    def references(self, dps: int = 30) -> dict[str, mpmath.mpf]:
        """The 1-D slice's a, b, c, H_a = L''(a), H_b = |L''(b)|, ΔL = L(b) − L(a) and the switch
        fraction s = (L(c) − L(a))/ΔL, at ``dps`` digits whatever the ambient precision: roots of
        L' by mpmath's ``findroot`` from the double-precision critical points, at dps + 10."""
        x = self.variables[0]
        f = self.loss if self.dim == 1 else self.loss.subs({v: 0 for v in self.variables[1:]})
        df, d2f = sp.diff(f, x), sp.diff(f, x, 2)
        with mpmath.workdps(dps + 10):
            fn = sp.lambdify(x, f, "mpmath")
            dfn = sp.lambdify(x, df, "mpmath")
            d2fn = sp.lambdify(x, d2f, "mpmath")
            a = mpmath.findroot(dfn, mpmath.mpf(self.minima[0][0]))
            b = mpmath.findroot(dfn, mpmath.mpf(self.saddles[0][0]))
            c = sp.lambdify((), self.switch[0], "mpmath")()
            barrier = fn(b) - fn(a)
            data = {
                "a": a,
                "b": b,
                "c": c,
                "H_a": d2fn(a),
                "H_b": -d2fn(b),
                "Delta_L": barrier,
                "s": (fn(c) - fn(a)) / barrier,
            }
        with mpmath.workdps(dps):  # round to dps digits (unary + rounds to the working precision)
            return {k: +v for k, v in data.items()}


def _newton(f: Callable[[float], float], df: Callable[[float], float], x: float) -> float:
    """A root of f by Newton's method in double precision."""
    for _ in range(100):
        step = f(x) / df(x)
        x -= step
        if abs(step) < 1e-15 * max(1.0, abs(x)):
            break
    return x


# -- the Styblinski–Tang slice ------------------------------------------------------------------
def _st(x: Any) -> Any:
    return 0.5 * (x**4 - 16 * x**2 + 5 * x)


def _st_grad(x: Any) -> Any:
    return 2 * x**3 - 16 * x + 2.5


def _st_hess(x: Any) -> Any:
    return 6 * x**2 - 16


def _st_loss(x: sp.Symbol) -> sp.Expr:
    return (x**4 - 16 * x**2 + 5 * x) / 2


@cache
def _st_points() -> tuple[float, float]:
    return _newton(_st_grad, _st_hess, 2.7), _newton(_st_grad, _st_hess, 0.15)


def _styblinski_tang(dim: int) -> LandscapeCase:
    """The slice (dim 1) or the separable sum L(x) + L(y) (dim 2)."""
    a, b = _st_points()
    variables: tuple[sp.Symbol, ...]
    minima: tuple[tuple[float, ...], ...]
    saddles: tuple[tuple[float, ...], ...]
    if dim == 1:
        name, variables, minima, saddles = "styblinski-tang-1d", (X,), ((a,),), ((b,),)
        description = "f(x) = (x⁴ − 16x² + 5x)/2; minimum a ≈ 2.7468, saddle b ≈ 0.1567, "
        description += "switch at √(8/3)"
    else:
        name, variables, minima, saddles = "styblinski-tang-2d", (X, Y), ((a, a),), ((b, a), (a, b))
        description = "f(x) + f(y), Styblinski–Tang; minimum (a, a), two saddles (b, a) and "
        description += "(a, b): the rates add"
    return LandscapeCase(
        name=name,
        description=description,
        loss=sp.Add(*(_st_loss(v) for v in variables)),
        variables=variables,
        minima=minima,
        saddles=saddles,
        switch=(sp.sqrt(sp.Rational(8, 3)),) * dim,
        value=_st,
        gradient=_st_grad,
        hessian=_st_hess,
    )


# -- the double well ----------------------------------------------------------------------------
def _dw(x: Any) -> Any:
    return x**4 / 4 - x**2 / 2


def _dw_grad(x: Any) -> Any:
    return x**3 - x


def _dw_hess(x: Any) -> Any:
    return 3 * x**2 - 1


def _double_well() -> LandscapeCase:
    c = -1 / sp.sqrt(3)
    loss = X**4 / 4 - X**2 / 2
    barrier = loss.subs(X, 0) - loss.subs(X, -1)
    return LandscapeCase(
        name="double-well",
        description="x⁴/4 − x²/2; minimum −1 (H = 2), saddle 0 (|H| = 1), switch at −1/√3",
        loss=loss,
        variables=(X,),
        minima=((-1.0,),),
        saddles=((0.0,),),
        switch=(c,),
        value=_dw,
        gradient=_dw_grad,
        hessian=_dw_hess,
        exact={
            "a": sp.Integer(-1),
            "b": sp.Integer(0),
            "H_a": sp.Integer(2),
            "H_b": sp.Integer(1),
            "Delta_L": barrier,
            "s": sp.nsimplify((loss.subs(X, c) - loss.subs(X, -1)) / barrier),
        },
    )


LANDSCAPE_CASES: dict[str, Callable[[], LandscapeCase]] = {
    "double-well": _double_well,
    "styblinski-tang-1d": lambda: _styblinski_tang(1),
    "styblinski-tang-2d": lambda: _styblinski_tang(2),
}
"""The test landscapes by name: name → a function that builds the case."""


def landscape_case(name: str) -> LandscapeCase:
    """The test landscape called ``name`` (one of `LANDSCAPE_CASES`).

    Examples
    --------
    >>> case = landscape_case("double-well")
    >>> case.loss, case.minima, case.exact["Delta_L"], case.exact["s"]
    (x**4/4 - x**2/2, ((-1.0,),), 1/4, 4/9)
    """
    return _built(registered_name("name", name, LANDSCAPE_CASES))


@cache
def _built(name: str) -> LandscapeCase:
    return LANDSCAPE_CASES[name]()
