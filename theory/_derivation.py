"""Result objects of the theory layer: a derived formula with its steps, printers and compilers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import sympy as sp

from ._compile import MPMATH_HEADER, CompiledFormula, compile_formula, generate_source
from ._conventions import Dim, TauNames, latex_name

__all__ = ["Derivation", "Formula", "Step"]

Step = tuple[str, sp.Basic]


def _symbol_names(expr: sp.Basic) -> dict[sp.Basic, str]:
    names: dict[sp.Basic, str] = {}
    for atom in expr.atoms(sp.Symbol):
        names[atom] = latex_name(atom.name)
    for indexed in expr.atoms(sp.Indexed):
        base = indexed.base.label
        names[base] = latex_name(base.name)
    return names


def to_latex(expr: sp.Basic) -> str:
    """LaTeX with flatminima's symbol names (ΔL, h*, H_{a,1}, …)."""
    return sp.latex(expr, symbol_names=_symbol_names(expr))


def _to_text(expr: sp.Basic) -> str:
    return sp.sstr(expr)


@dataclass(frozen=True, eq=False)
class Formula:
    """A derived quantity: its expression, log, steps, symbols and assumptions.

    Attributes
    ----------
    quantity
        Short name of what the expression is (``"tau"``, ``"occupation_ratio"``, ``"s"``, …).
    value, log_value
        The SymPy expression and its natural logarithm (expanded, no exponential of a barrier).
    parameters
        The free symbols of ``value`` in the order the compiled functions take them.
    symbols
        Documented name → SymPy symbol (or IndexedBase for a symbolic dimension).
    steps
        Ordered derivation steps: (title, SymPy expression or equation).
    assumptions
        The assumptions the result rests on, as sentences.
    model
        Which model the formula belongs to.
    """

    quantity: str
    value: sp.Expr
    log_value: sp.Expr
    parameters: tuple[sp.Symbol, ...]
    symbols: dict[str, sp.Basic]
    steps: list[Step]
    assumptions: list[str]
    model: str

    # ---- printing -------------------------------------------------------------------------
    def latex(self, equation: bool = False) -> str:
        """LaTeX of the value; with ``equation=True``, ``<quantity> = <value>``."""
        body = to_latex(self.value)
        return f"{self._latex_lhs()} = {body}" if equation else body

    def _latex_lhs(self) -> str:
        return {"tau": r"\tau", "rate": r"\gamma"}.get(
            self.quantity, rf"\mathrm{{{self.quantity}}}".replace("_", r"\_")
        )

    def text(self) -> str:
        """One line, ``<quantity> = <value>`` in SymPy's string form (parsable by ``sympify``)."""
        return f"{self.quantity} = {_to_text(self.value)}"

    def pretty(self) -> str:
        """Unicode 2-D rendering of the value."""
        return str(sp.pretty(sp.Eq(sp.Symbol(self.quantity), self.value), use_unicode=True))

    def python(self) -> str:
        """Source of mpmath functions computing the value and its log (exact rationals)."""
        names = [p.name for p in self.parameters]
        return (
            MPMATH_HEADER
            + "\n\n"
            + generate_source(self.quantity, names, self.value, "mpmath", self._doc())
            + "\n\n"
            + generate_source(
                f"log_{self.quantity}", names, self.log_value, "mpmath", f"log of {self.quantity}"
            )
        )

    def _doc(self) -> str:
        return f"{self.quantity}: {self.model}"

    def format_steps(self, fmt: str = "text") -> str:
        """The derivation steps, numbered, as ``"text"`` or ``"latex"`` (an ``align*`` block)."""
        if fmt == "latex":
            rows = [
                rf"&\text{{{k}. {_latex_escape(title)}}} \\ &\quad {to_latex(expr)}"
                for k, (title, expr) in enumerate(self.steps, 1)
            ]
            return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"
        return "\n".join(
            f"{k}. {title}\n   {_to_text(expr)}" for k, (title, expr) in enumerate(self.steps, 1)
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON: strings for expressions."""
        return {
            "quantity": self.quantity,
            "value": _to_text(self.value),
            "log_value": _to_text(self.log_value),
            "latex": self.latex(),
            "parameters": [p.name for p in self.parameters],
            "model": self.model,
            "assumptions": list(self.assumptions),
            "steps": [[title, _to_text(expr)] for title, expr in self.steps],
        }

    def _repr_latex_(self) -> str:
        return f"${self.latex(equation=True)}$"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text()})"

    # ---- evaluation -----------------------------------------------------------------------
    def compile(self, backend: str = "mpmath") -> CompiledFormula:
        """Compile to ``"mpmath"`` (exact rationals, any precision), ``"numpy"`` or ``"torch"``
        (arrays; use ``log_value``/``log_tau`` to avoid overflow). Cached per expression."""
        return compile_formula(self.value, self.log_value, self.parameters, backend, self.quantity)


#: Characters of step titles that pdflatex's text mode cannot typeset, as math.
_TEXT_MATH = {
    "α": r"\alpha",
    "β": r"\beta",
    "γ": r"\gamma",
    "δ": r"\delta",
    "Δ": r"\Delta",
    "η": r"\eta",
    "θ": r"\theta",
    "κ": r"\kappa",
    "λ": r"\lambda",
    "μ": r"\mu",
    "ξ": r"\xi",
    "π": r"\pi",
    "ρ": r"\rho",
    "σ": r"\sigma",
    "Σ": r"\Sigma",
    "τ": r"\tau",
    "φ": r"\varphi",
    "Φ": r"\Phi",
    "ψ": r"\psi",
    "ω": r"\omega",
    "ℓ": r"\ell",
    "∇": r"\nabla",
    "∂": r"\partial",
    "×": r"\times",
    "·": r"\cdot",
    "−": "-",
    "–": "--",
    "—": "---",
    "≈": r"\approx",
    "≤": r"\leq",
    "≥": r"\geq",
    "≠": r"\neq",
    "→": r"\to",
    "∞": r"\infty",
    "∈": r"\in",
    "±": r"\pm",
    "√": r"\surd",
    "½": r"\tfrac{1}{2}",
    "⁺": "^{+}",
    "⁻": "^{-}",
    "ᵀ": "^{T}",
    "¹": "^{1}",
    "²": "^{2}",
    "³": "^{3}",
    "⁴": "^{4}",
    "ₐ": "_{a}",
    "ₑ": "_{e}",
}
_TEXT_ESCAPES = {
    "\\": r"\textbackslash{}",
    "_": r"\_",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    """Plain text for LaTeX's text mode (inside ``\\text{}``): ASCII only, special characters
    escaped, Greek letters and maths signs as inline maths, accented letters as accents."""
    import unicodedata

    out = []
    for char in text:
        if char in _TEXT_ESCAPES:
            out.append(_TEXT_ESCAPES[char])
        elif char in _TEXT_MATH:
            out.append(f"${_TEXT_MATH[char]}$")
        elif ord(char) < 128:
            out.append(char)
        else:
            base = unicodedata.normalize("NFD", char)
            accent = {"\u0302": "^", "\u0308": '"', "\u0301": "'", "\u0300": "`"}.get(base[1:], "")
            if accent and base[0].isascii():
                out.append(f"\\{accent}{{{base[0]}}}")
            else:
                ascii_form = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
                out.append(ascii_form or "?")
    return "".join(out)


@dataclass(frozen=True, eq=False, repr=False)
class Derivation(Formula, TauNames):
    """A derived escape time τ for one noise model, dimension and interpretation.

    Attributes (besides [`Formula`][flatminima.theory.Formula]'s)
    ---------------------------------------
    tau, log_tau, rate
        τ (continuous time, unit η·iterations), its log (expanded: log(prefactor) + ΔΦ), and
        γ = 1/τ.
    noise, dim, interpretation, alpha
        What was derived: noise model name, dimension (int or the symbol n), interpretation
        name and its α.
    prefactor, exponent
        τ = prefactor · exp(exponent) (for one saddle; ``exponent`` is None for several).
    quasi_potential
        ΔΦ = Φ(b) − Φ(a) = ∫ dℓ/D_e(ℓ), the barrier in units of the noise: the asymptotic
        formula is accurate when it is large. Equal to ``exponent`` except for loss-dependent
        noise, whose α-dependent power of L_b/L_a is folded into ``exponent``.
    curvatures
        The Hessian-eigenvalue symbols (for sharpness scaling), IndexedBases for symbolic n.
    """

    noise: str = ""
    dim: Dim = 1
    interpretation: str = ""
    alpha: sp.Expr = field(default_factory=lambda: sp.Integer(0))
    prefactor: sp.Expr = field(default_factory=lambda: sp.Integer(1))
    exponent: sp.Expr | None = None
    saddles: int = 1
    curvatures: tuple[sp.Basic, ...] = ()
    quasi_potential: sp.Expr | None = None

    @cached_property
    def rate(self) -> sp.Expr:
        """Escape rate γ = 1/τ."""
        return sp.powsimp(1 / self.value)

    def _doc(self) -> str:
        return (
            f"Escape time tau ({self.noise} noise, dim {self.dim}, {self.interpretation}); "
            f"continuous time, unit eta*iterations. Model: {self.model}"
        )

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update(
            noise=self.noise,
            dim=str(self.dim),
            interpretation=self.interpretation,
            alpha=str(self.alpha),
            rate=_to_text(self.rate),
            prefactor=_to_text(self.prefactor),
            exponent=None if self.exponent is None else _to_text(self.exponent),
            saddles=self.saddles,
        )
        return data

    def __repr__(self) -> str:
        return (
            f"Derivation(noise={self.noise!r}, dim={self.dim}, "
            f"interpretation={self.interpretation!r}, "
            f"tau={_to_text(self.value)})"
        )
