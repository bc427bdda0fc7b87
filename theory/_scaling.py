"""``scaling_law``: how log τ depends on sharpness, batch size, learning rate, noise or loss ratio.

The kind of dependence is decided by its definition, how log τ changes when the variable is
scaled, not by the shape of the expression (a sum of rates over several saddles is a power law
in the sharpness although no term of its logarithm is ``log k``):

- power law: the elasticity ``x ∂log τ/∂x`` does not depend on x, so ``τ ∝ x^p``
  (``"polynomial"`` when p is a number, ``"power-law"`` when p depends on the parameters);
- exponential in x: the elasticity is linear in x, ``x ∂log τ/∂x = c x + p``, so
  ``log τ = c x + p log x + const``;
- exponential in 1/x: the same test in u = 1/x, ``log τ = E/x + p log x + const``.

The kind is decided numerically: log τ at 60 digits (mpmath) at random values of every other
parameter, its elasticity x ∂log τ/∂x by numerical differentiation at several x (for a
symbolic dimension, sums over an index, by SymPy's ``simplify``). The coefficients are then
derived symbolically, and one that is the same rational number at every point is that number.

Sharpness follows docs/conventions.md §3: ``L_k(θ) = L(√k θ)`` multiplies every Hessian eigenvalue (and
the noise curvature h*) by k and leaves ΔL, s and the losses unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mpmath
import sympy as sp

from flatminima.errors import ParameterError

from ._conventions import canonical_name, sym
from ._derivation import Formula, to_latex
from ._logsumexp import LogSumExp

__all__ = ["ScalingLaw", "scaling_law"]

_VARIABLES = {
    "sharpness": "k",
    "batch_size": "B",
    "lr": "eta",
    "loss_ratio": "rho",
    "diffusion": "D",
    "barrier": "Delta_L",
}
_ALIASES = {
    "k": "sharpness",
    "b": "batch_size",
    "batch": "batch_size",
    "batch-size": "batch_size",
    "eta": "lr",
    "learning_rate": "lr",
    "learning-rate": "lr",
    "rho": "loss_ratio",
    "loss-ratio": "loss_ratio",
    "d": "diffusion",
    "noise": "diffusion",
    "delta_l": "barrier",
}


@dataclass(frozen=True, eq=False)
class ScalingLaw:
    """How log τ depends on one variable.

    Attributes
    ----------
    wrt, variable
        The canonical name (``"sharpness"``) and its symbol (k).
    kind
        ``"exponential"`` (log τ linear in ``argument``), ``"polynomial"`` (τ ∝ x^p, p a
        number), ``"power-law"`` (τ ∝ x^p, p depends on parameters), ``"constant"`` (τ does not
        depend on x) or ``"other"``.
    argument
        What log τ is linear in: x or 1/x for ``"exponential"``, log x for power laws.
    coefficient
        The symbolic slope of log τ against ``argument`` (for power laws: the exponent p).
    power
        For ``"exponential"``: the exponent p of the polynomial prefactor, τ ∝ x^p e^{c·argument}.
    log_tau
        log τ as a function of the variable, with everything else fixed.
    law
        ``Eq(log τ, coefficient·argument + power·log x + C)``, C independent of x.
    """

    wrt: str
    variable: sp.Symbol
    kind: str
    argument: sp.Expr
    coefficient: sp.Expr
    power: sp.Expr
    log_tau: sp.Expr
    law: sp.Eq

    @property
    def statement(self) -> str:
        """A sentence for reports: the kind and the law, e.g.
        ``exponential in 1/k: log_tau = C + 2*B*Delta_L*(...)/(eta*k) - log(k)``."""
        x = self.variable
        if self.kind == "constant":
            return f"tau does not depend on {x}"
        if self.kind == "other":
            return (
                f"neither a power law nor an exponential in {x} or 1/{x}: "
                f"log_tau = {sp.sstr(self.log_tau)}"
            )
        argument = self.argument if self.kind == "exponential" else x
        return f"{self.kind} in {sp.sstr(argument)}: log_tau = {sp.sstr(self.law.rhs)}"

    @property
    def explanation(self) -> str:
        """What the law says in words: the variable, the slope and what C is."""
        x = self.variable
        what = {
            "k": "k = sharpness: L_k(θ) = L(√k θ) multiplies every Hessian eigenvalue by k",
            "B": "B = batch size",
            "eta": "eta = learning rate η",
            "D": "D = white-noise diffusion",
            "Delta_L": "Delta_L = barrier ΔL",
        }.get(x.name, f"{x} = {self.wrt}")
        if self.kind == "exponential":
            slope = sp.sstr(self.coefficient)
            pre = "" if self.power == 0 else f" times a prefactor ∝ {x}^{sp.sstr(self.power)}"
            return (
                f"{what}; log τ grows linearly in {sp.sstr(self.argument)} with slope {slope}"
                f"{pre}; C collects every term that does not depend on {x}"
            )
        if self.kind in ("polynomial", "power-law"):
            return (
                f"{what}; τ ∝ {x}^p with p = {sp.sstr(self.coefficient)}; C collects every "
                f"term that does not depend on {x}"
            )
        return what

    def latex(self) -> str:
        return to_latex(self.law)

    def _repr_latex_(self) -> str:
        """Jupyter: the law as displayed maths."""
        return f"$${self.latex()}$$"

    def to_dict(self) -> dict[str, Any]:
        return {
            "wrt": self.wrt,
            "variable": self.variable.name,
            "kind": self.kind,
            "argument": sp.sstr(self.argument),
            "coefficient": sp.sstr(self.coefficient),
            "power": sp.sstr(self.power),
            "statement": self.statement,
            "latex": self.latex(),
        }

    def __repr__(self) -> str:
        return (
            f"ScalingLaw(wrt={self.wrt!r}, kind={self.kind!r}, argument={self.argument}, "
            f"coefficient={self.coefficient}, power={self.power})"
        )


def _canonical_wrt(wrt: Any) -> str:
    key = canonical_name(wrt, _VARIABLES, _ALIASES)
    if key is None:
        raise ParameterError("wrt", f"one of {sorted(_VARIABLES)}", wrt)
    return key


def _expand_logs(expr: sp.Expr) -> sp.Expr:
    """Expand logarithms, inside sums too, and evaluate sums of terms free of the index."""
    expr = sp.expand_log(expr, force=True)
    for _ in range(2):
        expr = expr.replace(
            lambda e: isinstance(e, sp.Sum),
            lambda e: sp.Sum(sp.expand(sp.expand_log(e.function, force=True)), *e.limits).doit(),
        )
    return sp.expand(expr)


def _substitute(formula: Formula, wrt: str, x: sp.Symbol) -> sp.Expr:
    return _substitute_expr(formula.log_value, formula, wrt, x)


def _substitute_expr(log_tau: sp.Expr, formula: Formula, wrt: str, x: sp.Symbol) -> sp.Expr:
    if wrt == "sharpness":
        curvatures = set(getattr(formula, "curvatures", ()))
        bases = {c for c in curvatures if isinstance(c, sp.IndexedBase)}
        scaled = {c: x * c for c in curvatures if isinstance(c, sp.Symbol)}
        scaled.update(
            {
                s: x * s
                for s in log_tau.free_symbols
                if isinstance(s, sp.Symbol) and s.name.startswith("h_star")
            }
        )
        expr = log_tau.xreplace(scaled)
        if bases:
            expr = expr.replace(
                lambda e: isinstance(e, sp.Indexed) and e.base in bases, lambda e: x * e
            )
        return expr
    per_saddle = _per_saddle(log_tau, wrt)
    if per_saddle:  # several saddles: x multiplies every saddle's ΔL_p (or L(b_p))
        return log_tau.xreplace({s: x * s for s in per_saddle})
    if wrt == "loss_ratio":
        lower, upper = sym("L_a"), sym("L_b")
        return log_tau.subs(upper, x * lower)
    return log_tau.subs(sym(_VARIABLES[wrt]), x)


def _per_saddle(log_tau: sp.Expr, wrt: str) -> list[sp.Symbol]:
    """The per-saddle symbols (``Delta_L_b1``, ``L_b2`` …) a several-saddle formula has in place
    of the one ``Delta_L`` or ``L_b``."""
    prefix = {"barrier": "Delta_L_b", "loss_ratio": "L_b"}.get(wrt)
    if prefix is None:
        return []
    return sorted(
        (
            s
            for s in log_tau.free_symbols
            if isinstance(s, sp.Symbol)
            and s.name.startswith(prefix)
            and s.name[len(prefix) :].isdigit()
        ),
        key=str,
    )


def _tidy(expr: sp.Expr) -> sp.Expr:
    """Readable form: expanded logs, common factors pulled out, log differences combined
    (2BΔL(s/H_a − s/H_b + 1/H_b)/η, B log(L_b/L_a)/(ηh*))."""
    expr = sp.factor_terms(sp.expand(sp.expand_log(expr, force=True)))
    return expr.replace(
        lambda e: isinstance(e, sp.Add) and e.has(sp.log), lambda e: sp.logcombine(e)
    )


def _exponent_form(
    slope: sp.Expr, formula: Formula, wrt: str, x: sp.Symbol, inverse: bool
) -> sp.Expr:
    """Write the slope the way the derivation wrote its exponent ΔΦ, when they agree
    (``2*B*Delta_L*((1 - s)/H_b + s/H_a)/eta`` rather than an expanded sum)."""
    exponent = getattr(formula, "exponent", None)
    if exponent is None:
        return slope
    scaled = _substitute_expr(exponent, formula, wrt, x)
    candidate = sp.factor_terms(scaled * x if inverse else scaled / x)
    if candidate.has(x) or sp.simplify(candidate - slope) != 0:
        return slope
    return candidate


def _linear_in(elasticity: sp.Expr, x: sp.Symbol) -> tuple[sp.Expr, sp.Expr] | None:
    """If ``elasticity`` = c x + p with c, p free of x (c ≠ 0), return (c, p)."""
    slope = sp.simplify(sp.diff(elasticity, x))
    if slope == 0 or slope.has(x):
        return None
    intercept = sp.simplify(elasticity - slope * x)
    if intercept.has(x):
        return None
    return _tidy(slope), _tidy(intercept)


def scaling_law(derivation: Formula, wrt: str = "sharpness") -> ScalingLaw:
    """Classify log τ of ``derivation`` against one variable, by derivatives in SymPy.

    Parameters
    ----------
    derivation
        A [`Derivation`][flatminima.theory.Derivation] (or any Formula whose ``log_value`` is log τ).
    wrt
        ``"sharpness"`` (k in L_k(θ) = L(√kθ): every Hessian eigenvalue × k), ``"batch_size"``
        (B), ``"lr"`` (η), ``"loss_ratio"`` (ρ = L(b)/L(a)), ``"diffusion"`` (D) or
        ``"barrier"`` (ΔL). With several saddles, ``"barrier"`` and ``"loss_ratio"`` scale
        every saddle's ΔL_p (or L(b_p)) by the same factor, the variable.

    Returns
    -------
    ScalingLaw
        kind, argument, symbolic coefficient and polynomial power, and the law as an equation.

    Examples
    --------
    >>> from flatminima.theory import derive_escape_time, scaling_law
    >>> law = scaling_law(derive_escape_time("white", dim=2), wrt="sharpness")
    >>> law.kind, law.coefficient
    ('polynomial', -1)
    >>> law = scaling_law(derive_escape_time("sgd", interpretation="anti-ito"), wrt="sharpness")
    >>> law.kind, law.argument, law.power
    ('exponential', 1/k, -1)
    >>> law.coefficient
    2*B*Delta_L*((1 - s)/H_b + s/H_a)/eta
    """
    if not isinstance(derivation, Formula):
        raise ParameterError("derivation", "a Derivation from derive_escape_time", derivation)
    key = _canonical_wrt(wrt)
    x = sp.Symbol(_VARIABLES[key] if key != "sharpness" else "k", positive=True)
    if key == "loss_ratio" and not (
        derivation.log_value.has(sym("L_b")) or _per_saddle(derivation.log_value, key)
    ):
        raise ParameterError(
            "wrt", "a variable τ depends on ('loss_ratio' needs the loss-dependent noise)", wrt
        )
    f = _expand_logs(
        _substitute(derivation, key, x).replace(
            lambda e: isinstance(e, LogSumExp),
            lambda e: sp.log(sp.Add(*(sp.exp(a) for a in e.args))),
        )
    )
    if not f.has(x):
        return _constant_law(key, x, f)
    numeric = _Numeric(f, x)
    kind = numeric.kind() if numeric.usable else _symbolic_kind(f, x)
    if kind == "constant":
        return _constant_law(key, x, f)
    if kind == "power":
        return _power_law(key, x, f, numeric)
    if kind in ("exponential", "inverse"):
        return _exponential_law(key, x, f, numeric, derivation, inverse=kind == "inverse")
    return ScalingLaw(key, x, "other", x, sp.Integer(0), sp.Integer(0), f, sp.Eq(_LOG_TAU, f))


_LOG_TAU = sp.Symbol("log_tau")
_C = sp.Symbol("C")


def _constant_law(key: str, x: sp.Symbol, f: sp.Expr) -> ScalingLaw:
    """log τ does not depend on x."""
    zero = sp.Integer(0)
    return ScalingLaw(key, x, "constant", sp.Integer(1), zero, zero, f, sp.Eq(_LOG_TAU, f))


def _power_law(key: str, x: sp.Symbol, f: sp.Expr, numeric: _Numeric) -> ScalingLaw:
    """x ∂log τ/∂x the same at every x: τ(λx)/τ(x) = λ^p."""
    exponent = numeric.rational(lambda v: v.elasticity(1)) or _tidy(
        sp.simplify(_expand_logs(x * sp.diff(f, x)).subs(x, 1))
    )
    power_kind = "polynomial" if exponent.is_Rational else "power-law"
    law = sp.Eq(_LOG_TAU, exponent * sp.log(x) + _C)
    return ScalingLaw(key, x, power_kind, sp.log(x), exponent, exponent, f, law)


def _exponential_law(
    key: str, x: sp.Symbol, f: sp.Expr, numeric: _Numeric, derivation: Formula, inverse: bool
) -> ScalingLaw:
    """log τ = c·y + p·log x + C with y = x or 1/x: y ∂log τ/∂y = c·y ± p."""
    y = sp.Symbol("u", positive=True) if inverse else x
    f_y = _expand_logs(f.subs(x, 1 / y)) if inverse else f
    elasticity = _expand_logs(y * sp.diff(f_y, y))
    slope = numeric.rational(lambda v: v.slope(inverse)) or _tidy(
        sp.simplify(sp.diff(elasticity, y))
    )
    power = _tidy(sp.simplify(elasticity - slope * y))
    if inverse:
        power = -power  # u^q = x^(−q)
    slope = _exponent_form(slope, derivation, key, x, inverse=inverse)
    argument = 1 / x if inverse else x
    law = sp.Eq(_LOG_TAU, slope * argument + power * sp.log(x) + _C)
    return ScalingLaw(key, x, "exponential", argument, slope, power, f, law)


def _symbolic_kind(f: sp.Expr, x: sp.Symbol) -> str:
    """The kind by SymPy alone (a symbolic dimension: sums over an index)."""
    if sp.simplify(sp.diff(f, x)) == 0:
        return "constant"
    elasticity = sp.simplify(_expand_logs(x * sp.diff(f, x)))
    if not elasticity.has(x):
        return "power"
    if _linear_in(elasticity, x) is not None:
        return "exponential"
    u = sp.Symbol("u", positive=True)
    elasticity_u = sp.simplify(_expand_logs(u * sp.diff(_expand_logs(f.subs(x, 1 / u)), u)))
    if _linear_in(elasticity_u, u) is not None:
        return "inverse"
    return "other"


class _Numeric:
    """The definition, numerically: log τ(x) at 60 digits (mpmath), at ``POINTS`` random values
    of every other parameter in [1/2, 2], its elasticity E(x) = x ∂log τ/∂x by mpmath's
    numerical differentiation at x = 0.6, 0.9, 1.3, 1.8. Power law: E the same at every x
    (τ(λx)/τ(x) = λ^p); exponential in x: E = c·x + p; in 1/x: E = −c/x + p; constant: E = 0.
    Agreement is to 10⁻³⁰ relative (the differentiation is good to ~50 digits)."""

    POINTS = 4
    XS = ("0.6", "0.9", "1.3", "1.8")
    DPS = 60
    TOLERANCE = mpmath.mpf(10) ** -30

    def __init__(self, f: sp.Expr, x: sp.Symbol) -> None:
        import random

        self.usable = not f.has(sp.Indexed, sp.Sum, sp.Product, sp.Idx)
        if not self.usable:
            return
        symbols = sorted(f.free_symbols - {x}, key=str)
        self.function = sp.lambdify([x, *symbols], f, "mpmath")
        rng = random.Random(20261202)
        self.points = [
            [mpmath.mpf(rng.randint(500, 2000)) / 1000 for _ in symbols] for _ in range(self.POINTS)
        ]
        self.point = self.points[0]

    def elasticity(self, at: Any) -> Any:
        with mpmath.workdps(self.DPS):
            x = mpmath.mpf(at)
            return x * mpmath.diff(lambda t: self.function(t, *self.point), x)

    def slope(self, inverse: bool) -> Any:
        """c of E = c·x + p (or of E = −c/x + p: the elasticity in u = 1/x is c·u − p)."""
        with mpmath.workdps(self.DPS):
            e1, e2 = self.elasticity(1), self.elasticity(2)
            return (e1 - e2) * 2 if inverse else e2 - e1

    def _same(self, a: Any, b: Any) -> bool:
        return bool(abs(a - b) <= self.TOLERANCE * (1 + abs(a) + abs(b)))

    def kind(self) -> str:
        kinds = []
        for point in self.points:
            self.point = point
            with mpmath.workdps(self.DPS):
                xs = [mpmath.mpf(v) for v in self.XS]
                try:
                    e = [self.elasticity(v) for v in xs]
                except (ZeroDivisionError, ValueError, TypeError):
                    return "other"
                if not all(mpmath.isfinite(v) and mpmath.im(v) == 0 for v in e):
                    return "other"
                if all(self._same(v, 0) for v in e):
                    kinds.append("constant")
                elif all(self._same(v, e[0]) for v in e):
                    kinds.append("power")
                else:
                    c = (e[1] - e[0]) / (xs[1] - xs[0])  # E = c x + p through two points
                    d = (e[1] - e[0]) / (1 / xs[1] - 1 / xs[0])  # E = d/x + q
                    if all(
                        self._same(v, e[0] + c * (t - xs[0])) for v, t in zip(e, xs, strict=True)
                    ):
                        kinds.append("exponential")
                    elif all(
                        self._same(v, e[0] + d * (1 / t - 1 / xs[0]))
                        for v, t in zip(e, xs, strict=True)
                    ):
                        kinds.append("inverse")
                    else:
                        kinds.append("other")
        self.point = self.points[0]
        return kinds[0] if len(set(kinds)) == 1 else "other"

    def rational(self, value: Any) -> sp.Expr | None:
        """The rational number ``value(self)`` equals at every point, or None."""
        if not self.usable:
            return None
        found = []
        for point in self.points:
            self.point = point
            with mpmath.workdps(self.DPS):
                found.append(value(self))
        self.point = self.points[0]
        first = found[0]
        if not all(self._same(v, first) for v in found):
            return None
        number = sp.nsimplify(sp.Float(first, 40), rational=True, tolerance=1e-25)
        return number if number.is_Rational and abs(number.q) < 10**6 else None
