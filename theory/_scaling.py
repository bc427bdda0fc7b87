"""``scaling_law``: how log τ depends on sharpness, batch size, learning rate, noise or loss ratio.

The kind of dependence is *derived* from log τ by SymPy, not looked up:

- power law: the elasticity ``x ∂log τ/∂x`` does not depend on x, so ``τ ∝ x^p``
  (``"polynomial"`` when p is a number, ``"power-law"`` when p depends on the parameters);
- exponential in x: the elasticity is linear in x, ``x ∂log τ/∂x = c x + p``, so
  ``log τ = c x + p log x + const``;
- exponential in 1/x: the same test in u = 1/x, ``log τ = E/x + p log x + const``.

Sharpness follows docs/conventions.md §3: ``L_k(θ) = L(√k θ)`` multiplies every Hessian eigenvalue (and
the noise curvature h*) by k and leaves ΔL, s and the losses unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

from flatminima.errors import ParameterError

from ._conventions import sym
from ._derivation import Formula, to_latex

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
    if isinstance(wrt, str):
        key = wrt.strip().lower()
        key = _ALIASES.get(key, key)
        if key in _VARIABLES:
            return key
    raise ParameterError("wrt", f"one of {sorted(_VARIABLES)}", wrt)


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
    if wrt == "loss_ratio":
        lower, upper = sym("L_a"), sym("L_b")
        return log_tau.subs(upper, x * lower)
    return log_tau.subs(sym(_VARIABLES[wrt]), x)


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
        ``"barrier"`` (ΔL).

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
    if key == "loss_ratio" and not derivation.log_value.has(sym("L_b")):
        raise ParameterError(
            "wrt", "a variable τ depends on ('loss_ratio' needs the loss-dependent noise)", wrt
        )
    f = _expand_logs(_substitute(derivation, key, x))
    if not f.has(x):
        return ScalingLaw(
            key,
            x,
            "constant",
            sp.Integer(1),
            sp.Integer(0),
            sp.Integer(0),
            f,
            sp.Eq(sp.Symbol("log_tau"), f),
        )
    C = sp.Symbol("C")
    log_tau_symbol = sp.Symbol("log_tau")
    elasticity = sp.simplify(_expand_logs(x * sp.diff(f, x)))
    if not elasticity.has(x):
        elasticity = _tidy(elasticity)
        kind = "polynomial" if elasticity.is_Rational else "power-law"
        law = sp.Eq(log_tau_symbol, elasticity * sp.log(x) + C)
        return ScalingLaw(key, x, kind, sp.log(x), elasticity, elasticity, f, law)
    linear = _linear_in(elasticity, x)
    if linear is not None:
        slope, power = linear
        slope = _exponent_form(slope, derivation, key, x, inverse=False)
        law = sp.Eq(log_tau_symbol, slope * x + power * sp.log(x) + C)
        return ScalingLaw(key, x, "exponential", x, slope, power, f, law)
    u = sp.Symbol("u", positive=True)
    f_u = _expand_logs(f.subs(x, 1 / u))
    elasticity_u = sp.simplify(_expand_logs(u * sp.diff(f_u, u)))
    linear = _linear_in(elasticity_u, u)
    if linear is not None:
        slope, power_u = linear
        slope = _exponent_form(slope, derivation, key, x, inverse=True)
        power = -power_u  # u^q = x^(−q)
        law = sp.Eq(log_tau_symbol, slope / x + power * sp.log(x) + C)
        return ScalingLaw(key, x, "exponential", 1 / x, slope, power, f, law)
    return ScalingLaw(key, x, "other", x, sp.Integer(0), sp.Integer(0), f, sp.Eq(log_tau_symbol, f))
