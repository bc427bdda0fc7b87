"""Occupation ratio, flat-vs-sharp selection and the switch fraction, against independent
references (Gibbs integrals, docs/conventions.md §3's ratios, a numerical root-find)."""

from __future__ import annotations

import mpmath
import pytest
import sympy as sp
from helpers import random_positive

from flatminima.theory import (
    derive_escape_time,
    derive_occupation_ratio,
    derive_selection_ratio,
    derive_switch_fraction,
    scaling_law,
)

P = lambda name: sp.Symbol(name, positive=True)  # noqa: E731
B, eta, s, dL, D = P("B"), P("eta"), P("s"), P("Delta_L"), P("D")


def equal(a: sp.Expr, b: sp.Expr) -> bool:
    return sp.simplify(sp.powsimp(sp.expand_power_base(a / b, force=True), force=True)) == 1


def test_white_occupation_is_the_gibbs_ratio() -> None:
    """Equilibrium of e^{−L/D}, Laplace around each minimum: P_a/P_c =
    sqrt(H_c/H_a)·e^{−(L_a − L_c)/D}; with ΔL_a = L_b − L_a, ΔL_c = L_b − L_c."""
    x = sp.Symbol("x", real=True)
    l_a, l_b, l_c, h_a, h_c = P("L_a"), P("L_b"), P("L_c"), P("H_a"), P("H_c")
    gibbs_a = sp.integrate(sp.exp(-(l_a + h_a * x**2 / 2) / D), (x, -sp.oo, sp.oo))
    gibbs_c = sp.integrate(sp.exp(-(l_c + h_c * x**2 / 2) / D), (x, -sp.oo, sp.oo))
    reference = (gibbs_a / gibbs_c).subs({l_a: l_b - P("Delta_L_a"), l_c: l_b - P("Delta_L_c")})
    assert equal(derive_occupation_ratio("white", 1).value, reference)


@pytest.mark.parametrize("interpretation", ["ito", "anti-ito"])
def test_occupation_ratio_is_the_ratio_of_escape_times(interpretation: str) -> None:
    ratio = derive_occupation_ratio("sgd", 1, interpretation)
    tau = derive_escape_time("sgd", 1, interpretation).tau
    tau_a = tau.xreplace({P("H_a"): P("H_a"), P("Delta_L"): P("Delta_L_a"), s: P("s_a")})
    tau_c = tau.xreplace({P("H_a"): P("H_c"), P("Delta_L"): P("Delta_L_c"), s: P("s_c")})
    assert equal(ratio.value, tau_a / tau_c)
    titles = [title for title, _ in ratio.steps]
    assert "Master equation" in titles and "Stationary solution" in titles


def test_sgd_selection_is_exponential_as_in_theory() -> None:
    """docs/conventions.md §3: γ_sharp/γ_flat = exp[(2BΔLs/η)(1/H_flat − 1/H_sharp)] (anti-Itô)."""
    h_f, h_s = P("H_flat"), P("H_sharp")
    reference = sp.exp(2 * B * dL * s / eta * (1 / h_f - 1 / h_s))
    assert equal(derive_selection_ratio("sgd", 1, "anti-ito").value, reference)
    # in any dimension, with the escape-direction curvatures
    h_f1, h_s1 = P("H_flat_1"), P("H_sharp_1")
    reference_2d = sp.exp(2 * B * dL * s / eta * (1 / h_f1 - 1 / h_s1))
    assert equal(derive_selection_ratio("sgd", 2, "anti-ito").value, reference_2d)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_white_selection_is_polynomial(dim: int) -> None:
    """docs/conventions.md §3: white noise only sqrt(det H_sharp / det H_flat)."""
    if dim == 1:
        h_f, h_s = [P("H_flat")], [P("H_sharp")]
    else:
        h_f = [P(f"H_flat_{i}") for i in range(1, dim + 1)]
        h_s = [P(f"H_sharp_{i}") for i in range(1, dim + 1)]
    reference = sp.sqrt(sp.Mul(*h_s) / sp.Mul(*h_f))
    assert equal(derive_selection_ratio("white", dim).value, reference)


def test_selection_ratio_grows_exponentially_with_batch_over_lr_only_for_sgd() -> None:
    sgd = scaling_law(derive_selection_ratio("sgd", 1), "batch_size")
    white = scaling_law(derive_selection_ratio("white", 1), "batch_size")
    assert sgd.kind == "exponential"
    assert white.kind == "constant"


def test_switch_fraction_of_piecewise_quadratic_valley() -> None:
    h_a, h_b = P("H_a"), P("H_b")
    formula = derive_switch_fraction()
    assert sp.simplify(formula.value - h_b / (h_a + h_b)) == 0
    # independent numeric check: solve the matching conditions with mpmath for one valley
    with mpmath.workdps(40):
        ha, hb, barrier = mpmath.mpf(3), mpmath.mpf(2), mpmath.mpf("1.5")

        def conditions(uc, ell):
            return [
                ha * uc**2 / 2 - (barrier - hb * (uc - ell) ** 2 / 2),
                ha * uc + hb * (uc - ell),
            ]

        uc, _ = mpmath.findroot(conditions, (mpmath.mpf("0.5"), mpmath.mpf("1.5")))
        s_numeric = ha * uc**2 / 2 / barrier
        assert mpmath.almosteq(
            s_numeric,
            formula.compile("mpmath").value(H_a=ha, H_b=hb),
            rel_eps=mpmath.mpf(10) ** -35,
        )


def test_ratio_formulas_compile_and_agree_with_their_logs(rng) -> None:
    for formula in (derive_occupation_ratio("sgd", 2, "ito"), derive_selection_ratio("white", 2)):
        compiled = formula.compile("mpmath")
        with mpmath.workdps(50):
            values = {p.name: random_positive(rng, 0.1, 0.9) for p in formula.parameters}
            assert mpmath.almosteq(
                mpmath.log(compiled.value(**values)),
                compiled.log_value(**values),
                rel_eps=mpmath.mpf(10) ** -45,
            )
