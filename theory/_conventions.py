"""Conventions in one place: symbols, their LaTeX names, interpretations, dimensions, noise names.

Conventions (docs/conventions.md §1)
---------------------------------
- Continuous dynamics ``dθ = −∇L(θ) dt + √(2 D(θ)) dW_t``; the time unit is ``t = η·(iterations)``,
  so a continuous escape time τ is τ/η iterations.
- Minimum ``a``, index-1 saddle ``b``, barrier ``ΔL = L(b) − L(a) > 0``. The escape direction
  ``e`` is the eigenvector of ``H_b`` with the negative eigenvalue; in n dimensions it is direction
  1 of the common eigenbasis. Curvature symbols are *magnitudes*: ``H_b`` (1-D) or ``H_b_1`` (n-D)
  stands for ``|H_be|`` and is positive.
- Interpretation of a state-dependent noise in the Fokker–Planck current
  ``J = −P∇L − D^α ∇(D^{1−α} P)``: α = 0 Itô, α = ½ Stratonovich, α = 1 anti-Itô.

Every symbol is created here, once, with its assumptions (positive, real) so that SymPy can
simplify square roots and logarithms without ``force=True``. Expressions are built from
Integer/Rational/symbols only: never a Python float (docs/conventions.md trap 4).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from fractions import Fraction
from functools import cache
from typing import Any, Protocol, TypeAlias, TypeVar

import sympy as sp

from flatminima.errors import (
    DimensionError,
    InterpretationError,
    NoiseModelError,
    ParameterError,
)

from ._budget import check_dimension_budget

__all__ = [
    "INTERPRETATIONS",
    "LATEX_NAMES",
    "NOISE_MODELS",
    "Dim",
    "TauNames",
    "curvature",
    "interpretation_alpha",
    "interpretation_name",
    "numeric_alpha",
    "parse_dim",
    "parse_noise",
    "sym",
]

INTERPRETATIONS: dict[str, sp.Rational] = {
    "ito": sp.Integer(0),
    "stratonovich": sp.Rational(1, 2),
    "anti-ito": sp.Integer(1),
}
"""Named interpretations of the stochastic integral and their α: Itô 0, Stratonovich 1/2,
anti-Itô (Hänggi-Klimontovich, isothermal) 1. Aliases such as ``"itô"`` or ``"haenggi"`` are
accepted by [`interpretation_alpha`][flatminima.theory.interpretation_alpha]."""
_ALIASES = {
    "itô": "ito",
    "itoh": "ito",
    "strat": "stratonovich",
    "anti-itô": "anti-ito",
    "antiito": "anti-ito",
    "anti_ito": "anti-ito",
    "haenggi": "anti-ito",
    "hänggi": "anti-ito",
    "klimontovich": "anti-ito",
    "isothermal": "anti-ito",
}

NOISE: dict[str, Any] = {}
"""The noise-model registry, name → model (a ``flatminima.theory._noise.NoiseModel``): the one
place a noise model is declared. ``flatminima.theory._noise`` fills it with the built-in models;
[`register_noise_model`][flatminima.theory.register_noise_model] adds one."""

NOISE_MODELS = NOISE.keys()
"""The names of the noise models [`derive_escape_time`][flatminima.theory.derive_escape_time]
knows, in order, read live from the registry: ``"white"`` (D constant: GD with injected noise),
``"sgd"`` (D = η[H]⁺/(2B) near each critical point, harmonic switch model),
``"loss-dependent"`` (D(θ) = η L(θ) H(a)/B for mean-square losses, Mori et al. 2022), then any
registered model."""
_NOISE_ALIASES = {
    "loss_dependent": "loss-dependent",
    "lossdependent": "loss-dependent",
    "gd": "white",
}

#: The symbol α when the interpretation is kept symbolic.
ALPHA = sp.Symbol("alpha", nonnegative=True)

#: LaTeX for symbol names that SymPy would not print well by itself.
LATEX_NAMES: dict[str, str] = {
    "Delta_L": r"\Delta L",
    "h_star": r"h^{*}",
    "D_a": r"D_{a}",
    "D_b": r"D_{b}",
    "ell": r"\ell",
    "log_tau": r"\log \tau",
    "rho": r"\rho",
}

Dim: TypeAlias = int | sp.Symbol


@cache
def sym(name: str, **assumptions: bool) -> sp.Symbol:
    """The one SymPy symbol called ``name`` (positive unless other assumptions are given).

    Symbols are cached so that the same name always gives the same object, whichever module asks.
    """
    if not assumptions:
        assumptions = {"positive": True}
    return sp.Symbol(name, **assumptions)


def latex_name(name: str) -> str:
    """LaTeX for a symbol name: ``H_a_2`` → ``H_{a,2}``, ``Delta_L_b1`` → ``\\Delta L_{b1}``."""
    if name in LATEX_NAMES:
        return LATEX_NAMES[name]
    head, _, rest = name.partition("_")
    if head == "Delta" and rest.startswith("L"):
        label = rest[2:]
        return r"\Delta L" + (f"_{{{label}}}" if label else "")
    if head == "h" and rest.startswith("star"):
        return r"h^{*}"
    greek = {"eta", "kappa", "alpha", "gamma", "tau", "theta", "ell", "Phi", "sigma"}
    head_tex = rf"\{head}" if head in greek else head
    if not rest:
        return head_tex
    return f"{head_tex}_{{{rest.replace('_', ',')}}}"


def curvature(point: str, direction: int | sp.Expr | None = None) -> sp.Expr:
    """Curvature magnitude at ``point`` along eigen-direction ``direction`` (1 is the escape
    direction e).

    ``direction=None`` gives the 1-D symbol ``H_<point>``; an integer gives ``H_<point>_<i>``; a
    SymPy index (symbolic dimension) gives the indexed ``H_<point>[i]``.
    """
    if direction is None:
        return sym(f"H_{point}")
    if isinstance(direction, int):
        return sym(f"H_{point}_{direction}")
    return _indexed_base(point)[direction]


@cache
def _indexed_base(point: str) -> sp.IndexedBase:
    return sp.IndexedBase(f"H_{point}", positive=True)


def indexed_base(point: str) -> sp.IndexedBase:
    """The IndexedBase ``H_<point>`` used for a symbolic dimension n."""
    return _indexed_base(point)


#: Summation index and symbolic dimension for n-D derivations with symbolic n.
INDEX = sp.Symbol("i", integer=True, positive=True)
N_DIM = sp.Symbol("n", integer=True, positive=True)


def interpretation_alpha(interpretation: Any) -> sp.Expr:
    """α for an interpretation: a name, a number in [0, 1], or ``"alpha"`` for a symbolic α.

    Parameters
    ----------
    interpretation
        ``"ito"`` (α = 0), ``"stratonovich"`` (α = ½), ``"anti-ito"`` (α = 1), a number in
        [0, 1] (int, float, numpy scalar, Fraction, Decimal, mpmath or SymPy number such as
        ``pi/4``, one-element tensor, or a string such as ``"0.25"``/``"1/4"``), or ``"alpha"``
        to keep α as the symbol α.

    Returns
    -------
    sympy.Expr
        An exact Rational (floats are converted through their decimal repr, so 0.3 → 3/10) or
        the symbol α.

    Examples
    --------
    >>> interpretation_alpha("stratonovich")
    1/2
    >>> interpretation_alpha(0.25)
    1/4
    >>> interpretation_alpha(1.5)
    Traceback (most recent call last):
    ...
    flatminima.errors.InterpretationError: interpretation: expected 'ito', 'stratonovich', \
'anti-ito', 'alpha' or a number α in [0, 1], got 1.5
    """
    expected = "'ito', 'stratonovich', 'anti-ito', 'alpha' or a number α in [0, 1]"
    value: Any = interpretation
    if isinstance(interpretation, str):
        key = interpretation.strip().lower()
        key = _ALIASES.get(key, key)
        if key in INTERPRETATIONS:
            return INTERPRETATIONS[key]
        if key in {"alpha", "α"}:
            return ALPHA
        try:
            value = Fraction(key)
        except (ValueError, ZeroDivisionError):
            raise InterpretationError("interpretation", expected, interpretation) from None
    if isinstance(value, sp.Symbol) and value.name in {"alpha", "α"}:
        return ALPHA
    value = _plain_number(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Number | sp.Basic):
        raise InterpretationError("interpretation", expected, interpretation)
    if (
        isinstance(value, sp.Basic)
        and value.is_number
        and value.is_extended_real
        and not (value.is_Rational or value.is_Float)
    ):  # π/4, √2/2: kept exact
        if value.is_finite and bool(0 <= value <= 1):
            return value
        raise InterpretationError("interpretation", expected, interpretation)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InterpretationError("interpretation", expected, interpretation)
        rational = sp.Rational(repr(value))
    elif isinstance(value, sp.Basic):
        if not (value.is_Rational or value.is_Float):
            raise InterpretationError("interpretation", expected, interpretation)
        rational = sp.Rational(str(value)) if value.is_Float else value
    elif isinstance(value, numbers.Rational):
        rational = sp.Rational(value.numerator, value.denominator)
    else:
        raise InterpretationError("interpretation", expected, interpretation)
    if not (0 <= rational <= 1):
        raise InterpretationError("interpretation", expected, interpretation)
    return sp.Rational(rational)


def numeric_alpha(interpretation: Any) -> sp.Expr:
    """α for an interpretation to evaluate with: [`interpretation_alpha`][flatminima.theory.interpretation_alpha]
    without the symbolic ``"alpha"`` (an exact number in [0, 1]).

    Every layer that evaluates (mpmath, numpy, torch) reads α through this one function.

    Examples
    --------
    >>> numeric_alpha("anti-ito"), numeric_alpha("0.25")
    (1, 1/4)
    """
    alpha = interpretation_alpha(interpretation)
    if alpha == ALPHA:
        raise InterpretationError(
            "interpretation",
            "a named interpretation or a number α in [0, 1] (not symbolic)",
            interpretation,
        )
    return alpha


def _plain_number(value: Any) -> Any:
    """numpy scalars and 0-d arrays, one-element torch tensors, Decimal and mpmath ``mpf`` as a
    float, Fraction or SymPy number, through their decimal text (np.float32(0.3) → 3/10)."""
    from decimal import Decimal

    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return value
    if hasattr(value, "detach") and hasattr(value, "numel"):  # torch
        if value.numel() != 1 or value.is_complex() or str(value.dtype) == "torch.bool":
            return None
        return _plain_number(value.detach().cpu().item())
    if hasattr(value, "shape") and hasattr(value, "item") and value.shape == ():  # numpy
        kind = getattr(getattr(value, "dtype", None), "kind", "")
        if kind == "b":
            return True  # refused below as a bool
        if kind == "f":
            return sp.Rational(str(value[()]))  # the shortest decimal of its own precision
        if kind in "iu":
            return int(value.item())
        return value.item() if kind != "c" else None
    if isinstance(value, Decimal):
        return sp.Rational(str(value)) if value.is_finite() else None
    if type(value).__module__.startswith("mpmath") and hasattr(value, "_mpf_"):
        import mpmath

        return sp.Rational(mpmath.nstr(value, 17)) if mpmath.isfinite(value) else None
    return value


def interpretation_name(alpha: sp.Expr) -> str:
    """The conventional name of α, or ``"alpha=<value>"``."""
    for name, value in INTERPRETATIONS.items():
        if alpha == value:
            return name
    return "alpha" if alpha == ALPHA else f"alpha={alpha}"


def parse_dim(dim: Any) -> Dim:
    """A dimension: a positive integer, or ``"n"`` (or the SymPy symbol n) for a symbolic one."""
    expected = "a positive integer or 'n' for a symbolic dimension"
    if isinstance(dim, str):
        text = dim.strip()
        if text == "n":
            return N_DIM
        if text.isdigit() and int(text) >= 1:
            check_dimension_budget(int(text))
            return int(text)
        raise DimensionError("dim", expected, dim)
    if isinstance(dim, sp.Symbol) and dim.name == "n":
        return N_DIM
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral | sp.Integer):
        if isinstance(dim, float) and dim.is_integer() and dim >= 1:
            check_dimension_budget(int(dim))
            return int(dim)
        raise DimensionError("dim", expected, dim)
    if int(dim) < 1:
        raise DimensionError("dim", expected, dim)
    check_dimension_budget(int(dim))
    return int(dim)


def registered_name(parameter: str, value: Any, table: Mapping[str, Any]) -> str:
    """``value`` when it is a key of ``table`` (a registry of named things: formulas, test
    landscapes), else a `ParameterError` naming ``parameter`` and listing the keys (also for an
    unhashable value such as a list)."""
    if not isinstance(value, str) or value not in table:
        raise ParameterError(parameter, f"one of {sorted(table)}", value)
    return value


def canonical_name(value: Any, names: Iterable[str], aliases: dict[str, str]) -> str | None:
    """``value`` as one of ``names`` (case and surrounding blanks ignored, ``aliases`` mapped),
    or None: the one spelling rule of every name the theory layer reads."""
    if isinstance(value, str):
        key = value.strip().lower()
        key = aliases.get(key, key)
        if key in names:
            return key
    return None


def parse_noise(noise: Any) -> str:
    """The canonical name of a noise model (one of [`NOISE_MODELS`][flatminima.theory.NOISE_MODELS])."""
    key = canonical_name(noise, NOISE_MODELS, _NOISE_ALIASES)
    if key is None:
        expected = "one of " + ", ".join(repr(name) for name in NOISE_MODELS)
        raise NoiseModelError("noise", expected, noise)
    return key


_V = TypeVar("_V")
_V_co = TypeVar("_V_co", covariant=True)


class _Timed(Protocol[_V_co]):
    """A result whose ``value`` and ``log_value`` are a mean escape time and its log."""

    @property
    def value(self) -> _V_co: ...

    @property
    def log_value(self) -> _V_co: ...


class TauNames:
    """Mixin: ``tau`` and ``log_tau`` for a result whose ``value`` and ``log_value`` are a mean
    escape (first-passage) time and its log: the names every escape-time result gives the mean
    escape time (``EscapeTime.tau``, ``EscapeSimulation.tau``, ...)."""

    @property
    def tau(self: _Timed[_V]) -> _V:
        """τ, the mean escape time (the same number as ``value``)."""
        return self.value

    @property
    def log_tau(self: _Timed[_V]) -> _V:
        """log τ (the same number as ``log_value``)."""
        return self.log_value
