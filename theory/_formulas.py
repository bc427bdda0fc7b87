"""The derived formulas other layers evaluate, by name, compiled once per process.

A prediction in the numerics or validation layer (a design's learning rate, a white-noise
temperature, a predicted exponent or slope) reads its formula here instead of typing it again:

``"kappa"``
    The SGD noise scale κ = η/(2B) of the SGD noise model (D = κ[H]⁺), parameters ``eta``, ``B``.
``"quasi_potential_sgd"``
    ΔΦ = (2BΔL/η)(s/H_a + (1 − s)/H_b) of the 1-D SGD derivation (harmonic switch model),
    parameters ``H_a``, ``H_b``, ``Delta_L``, ``eta``, ``B``, ``s``. With ``s = 1`` it is the
    quasi-potential of a level set ΔL above a minimum of curvature H_a, D = κH_a on the way.
``"quasi_potential_white"``
    ΔΦ = ΔL/D of the white-noise derivation, parameters ``Delta_L``, ``D``.
``"switch_fraction"``
    s = H_b/(H_a + H_b) of a C¹ piecewise-quadratic valley (`derive_switch_fraction`).
``"selection_ratio_sgd"``
    γ_sharp/γ_flat = exp[(2BΔLs/η)(1/H_flat − 1/H_sharp)] (`derive_selection_ratio`, SGD,
    anti-Itô: the prefactors cancel), parameters ``H_flat``, ``Delta_L``, ``eta``, ``B``, ``s``,
    ``H_sharp``.

Each is a [`Formula`][flatminima.theory.Formula] (`formula`; shipped precomputed with the package,
derived when the shipped file does not fit the code, see ``_shipped``) and its compiled form
(`compiled_formula`, cached per name and backend, so a loop that calls it pays the derivation
and the code generation once).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import sympy as sp

from flatminima.errors import ParameterError

from ._combine import derive_selection_ratio, derive_switch_fraction
from ._compile import CompiledFormula
from ._conventions import registered_name
from ._derivation import Formula
from ._derive import derive_escape_time
from ._noise import NOISE

__all__ = ["FORMULAS", "compiled_formula", "formula"]


def _kappa() -> Formula:
    value = NOISE["sgd"].kappa()
    eta, batch = sorted(value.free_symbols, key=lambda s: s.name != "eta")
    return Formula(
        quantity="kappa",
        value=value,
        log_value=sp.expand_log(sp.log(value), force=True),
        parameters=(eta, batch),
        symbols={"eta": eta, "B": batch},
        steps=[("SGD noise scale", sp.Eq(sp.Symbol("kappa"), value, evaluate=False))],
        assumptions=list(NOISE["sgd"].assumptions[:1]),
        model=NOISE["sgd"].model,
    )


def _quasi_potential(noise: str) -> Callable[[], Formula]:
    def build() -> Formula:
        derivation = derive_escape_time(noise, dim=1, interpretation="ito")
        value = derivation.quasi_potential
        assert value is not None
        return Formula(
            quantity=f"quasi_potential_{noise}",
            value=value,
            log_value=sp.expand_log(sp.log(value), force=True),
            parameters=tuple(p for p in derivation.parameters if p in value.free_symbols),
            symbols=derivation.symbols,
            steps=[("Quasi-potential barrier", sp.Eq(sp.Symbol("Delta_Phi"), value))],
            assumptions=derivation.assumptions,
            model=derivation.model,
        )

    return build


FORMULAS: dict[str, Callable[[], Formula]] = {
    "kappa": _kappa,
    "quasi_potential_sgd": _quasi_potential("sgd"),
    "quasi_potential_white": _quasi_potential("white"),
    "switch_fraction": derive_switch_fraction,
    "selection_ratio_sgd": lambda: derive_selection_ratio("sgd", 1, "anti-ito"),
}
"""The named formulas other layers evaluate: name → a function that derives it."""


def formula(name: str) -> Formula:
    """The derived [`Formula`][flatminima.theory.Formula] called ``name`` (one of `FORMULAS`)."""
    return _derived(registered_name("name", name, FORMULAS))


@cache
def _derived(name: str) -> Formula:
    from ._shipped import FORMULA_KIND, lookup

    shipped: Formula | None = lookup(FORMULA_KIND, (name,))  # precomputed, in the package
    return shipped if shipped is not None else FORMULAS[name]()


def compiled_formula(name: str, backend: str = "numpy") -> CompiledFormula:
    """``formula(name)`` compiled for ``backend``, once per process."""
    if type(name) is not str or type(backend) is not str:  # the cache needs hashable keys
        formula(name)
        raise ParameterError("backend", "one of 'mpmath', 'numpy', 'torch'", backend)
    return _compiled(name, backend)


@cache
def _compiled(name: str, backend: str) -> CompiledFormula:
    return formula(name).compile(backend)
