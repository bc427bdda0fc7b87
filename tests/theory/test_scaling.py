"""scaling_law must read the kind of dependence off log τ, and its coefficient must match both the
paper's exponent (docs/conventions.md §3) and a numerical fit of the compiled formula."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from flatminima.errors import FlatMinimaError
from flatminima.theory import Formula, derive_escape_time, scaling_law

P = lambda name: sp.Symbol(name, positive=True)  # noqa: E731
B, eta, s, dL, h_star = P("B"), P("eta"), P("s"), P("Delta_L"), P("h_star")


def E1(h_a: sp.Expr, h_b: sp.Expr) -> sp.Expr:
    """docs/conventions.md §3: E₁ = (2BΔL/η)(s/H_ae + (1 − s)/|H_be|)."""
    return 2 * B * dL / eta * (s / h_a + (1 - s) / h_b)


@pytest.mark.parametrize("interpretation", ["ito", "stratonovich", "anti-ito"])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_sgd_is_exponential_in_inverse_sharpness(interpretation: str, dim: int) -> None:
    law = scaling_law(derive_escape_time("sgd", dim, interpretation), wrt="sharpness")
    h_a, h_b = (P("H_a"), P("H_b")) if dim == 1 else (P("H_a_1"), P("H_b_1"))
    k = law.variable
    assert law.kind == "exponential"
    assert law.argument == 1 / k
    assert sp.simplify(law.coefficient - E1(h_a, h_b)) == 0
    assert law.power == -1  # τ ∝ k⁻¹ e^{E₁/k}: log(2π/(k|H_be|)) (docs/conventions.md §3)


@pytest.mark.parametrize("dim", [1, 2, 3, 5, "n"])
def test_white_noise_is_polynomial_in_sharpness_with_slope_minus_one(dim) -> None:
    law = scaling_law(derive_escape_time("white", dim), wrt="sharpness")
    assert law.kind == "polynomial"
    assert law.coefficient == -1  # τ ∝ 1/k in any dimension


def test_sgd_batch_size_and_learning_rate() -> None:
    d = derive_escape_time("sgd", 1, "anti-ito")
    e1 = E1(P("H_a"), P("H_b"))
    by_b = scaling_law(d, "batch_size")
    assert by_b.kind == "exponential" and by_b.argument == by_b.variable
    assert sp.simplify(by_b.coefficient - e1 / B) == 0 and by_b.power == 0
    by_lr = scaling_law(d, "lr")
    assert by_lr.kind == "exponential" and by_lr.argument == 1 / by_lr.variable
    assert sp.simplify(by_lr.coefficient - e1 * eta) == 0


def test_white_noise_is_exponential_in_inverse_diffusion_and_constant_in_batch() -> None:
    d = derive_escape_time("white", 2)
    law = scaling_law(d, "diffusion")
    assert law.kind == "exponential" and law.argument == 1 / law.variable and law.coefficient == dL
    assert scaling_law(d, "batch_size").kind == "constant"


@pytest.mark.parametrize(
    ("dim", "exponent"), [(1, sp.Rational(1, 2)), (2, 0), (3, -sp.Rational(1, 2))]
)
def test_loss_dependent_is_a_power_law_in_the_loss_ratio(dim: int, exponent) -> None:
    """Mori et al.: τ ∝ (L_b/L_a)^(B/(ηh*) + 1 − n/2) (Itô)."""
    law = scaling_law(derive_escape_time("loss-dependent", dim, "ito"), "loss_ratio")
    assert law.kind == "power-law"
    assert sp.simplify(law.coefficient - (B / (eta * h_star) + exponent)) == 0


def test_loss_ratio_symbolic_dimension() -> None:
    n = sp.Symbol("n", integer=True, positive=True)
    law = scaling_law(derive_escape_time("loss-dependent", "n", "ito"), "loss_ratio")
    assert sp.simplify(law.coefficient - (B / (eta * h_star) + 1 - n / 2)) == 0


def test_the_symbolic_law_matches_a_fit_of_the_compiled_formula() -> None:
    """Independent check: evaluate log τ(k) numerically and fit log τ + log k = c/k + const."""
    d = derive_escape_time("sgd", 1, "ito")
    law = scaling_law(d, "sharpness")
    values = {"H_a": 29.27, "H_b": 15.85, "Delta_L": 25.23, "eta": 8.5e-4, "B": 3.03e-3, "s": 0.449}
    k = np.linspace(1.0, 4.5, 12)
    compiled = d.compile("numpy")
    log_tau = compiled.log_tau(**{**values, "H_a": values["H_a"] * k, "H_b": values["H_b"] * k})
    slope, _ = np.polyfit(1 / k, log_tau - float(law.power) * np.log(k), 1)
    predicted = float(law.coefficient.subs({P(n): v for n, v in values.items()}))
    assert slope == pytest.approx(predicted, rel=1e-10)
    # the raw fit without the log k term is biased, as docs/conventions.md §6 warns
    raw_slope, _ = np.polyfit(1 / k, log_tau, 1)
    assert abs(raw_slope - predicted) > 1e-3 * predicted


def test_neither_kind_is_reported_as_other() -> None:
    x = P("B")
    fake = Formula("tau", sp.exp(x**2), x**2 + sp.log(x) * x, (x,), {"B": x}, [], [], "test")
    assert scaling_law(fake, "batch_size").kind == "other"


def test_bad_arguments() -> None:
    d = derive_escape_time("white")
    with pytest.raises(FlatMinimaError, match="wrt"):
        scaling_law(d, wrt="temperature")
    with pytest.raises(FlatMinimaError, match="loss_ratio"):
        scaling_law(d, wrt="loss_ratio")
    with pytest.raises(FlatMinimaError, match="derivation"):
        scaling_law("sgd", wrt="sharpness")  # type: ignore[arg-type]
