"""The engine must reproduce, by derivation, the textbook and published escape times.

References are typed here from their sources (Eyring–Kramers; Xie, Sato, Sugiyama 2021; Mori,
Ziyin, Liu, Ueda 2022; the 1-D α-family of docs/conventions.md §2, itself checked against exact MFPT
quadrature by the numerics layer), never copied from the code's output. Each result is checked
symbolically (the difference simplifies to 0) and numerically with mpmath at 50 digits.
"""

from __future__ import annotations

import random

import mpmath
import pytest
import sympy as sp
from helpers import random_positive

from flatminima.theory import derive_escape_time

pi = sp.pi
P = lambda name: sp.Symbol(name, positive=True)  # noqa: E731  (the same symbols as the library's)
D, eta, B, s, dL = P("D"), P("eta"), P("B"), P("s"), P("Delta_L")
h_star, L_a, L_b = P("h_star"), P("L_a"), P("L_b")
alpha = sp.Symbol("alpha", nonnegative=True)


def hess(point: str, dim: int) -> list[sp.Symbol]:
    if dim == 1:
        return [P(f"H_{point}")]
    return [P(f"H_{point}_{i}") for i in range(1, dim + 1)]


def assert_same(derived: sp.Expr, reference: sp.Expr, rng: random.Random, points: int = 5) -> None:
    """Symbolically equal, and equal to 45 digits at random points at dps = 50."""
    ratio = sp.simplify(
        sp.powsimp(sp.expand_power_base(derived / reference, force=True), force=True)
    )
    assert ratio == 1, f"derived/reference = {ratio}"
    symbols = sorted(derived.free_symbols | reference.free_symbols, key=str)
    f_derived = sp.lambdify(symbols, derived, "mpmath")
    f_reference = sp.lambdify(symbols, reference, "mpmath")
    with mpmath.workdps(50):
        for _ in range(points):
            values = [
                random_positive(rng, 0.05, 0.95)
                if sym.name.startswith("s") or sym.name == "alpha"
                else random_positive(rng)
                for sym in symbols
            ]
            a, b = f_derived(*values), f_reference(*values)
            assert mpmath.almosteq(a, b, rel_eps=mpmath.mpf(10) ** -45), (a, b)


def eyring_kramers(dim: int) -> sp.Expr:
    """τ = (2π/|H_be|) sqrt(|det H_b| / det H_a) exp(ΔL/D), determinants of diagonal matrices."""
    h_a, h_b = hess("a", dim), hess("b", dim)
    det_a = sp.diag(*h_a).det(method="berkowitz")
    det_b = sp.diag(-h_b[0], *h_b[1:]).det(method="berkowitz")
    return 2 * pi / h_b[0] * sp.sqrt(sp.Abs(det_b) / det_a) * sp.exp(dL / D)


def paper_sgd(dim: int) -> sp.Expr:
    """Xie et al. (2021): τ = (2π/|H_be|) exp[(2BΔL/η)(s/H_ae + (1 − s)/|H_be|)]."""
    h_ae, h_be = hess("a", dim)[0], hess("b", dim)[0]
    return 2 * pi / h_be * sp.exp(2 * B * dL / eta * (s / h_ae + (1 - s) / h_be))


@pytest.mark.parametrize("dim", [1, 2, 3, 4])
@pytest.mark.parametrize("interpretation", ["ito", "stratonovich", "anti-ito", 0.3])
def test_white_noise_is_eyring_kramers(dim: int, interpretation, rng) -> None:
    d = derive_escape_time("white", dim=dim, interpretation=interpretation)
    assert_same(d.tau, eyring_kramers(dim), rng)


def test_white_noise_1d_textbook(rng) -> None:
    h_a, h_b = P("H_a"), P("H_b")
    assert_same(derive_escape_time("white").tau, 2 * pi / sp.sqrt(h_a * h_b) * sp.exp(dL / D), rng)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_sgd_anti_ito_is_the_paper_formula(dim: int, rng) -> None:
    assert_same(
        derive_escape_time("sgd", dim=dim, interpretation="anti-ito").tau, paper_sgd(dim), rng
    )


def test_sgd_1d_alpha_family(rng) -> None:
    """docs/conventions.md §2: τ = 2π/sqrt(H_a|H_b|) · (D_a/D_b)^(α−½) · e^ΔΦ, D = κ|H|."""
    h_a, h_b = P("H_a"), P("H_b")
    kappa = eta / (2 * B)
    delta_phi = dL / kappa * (s / h_a + (1 - s) / h_b)
    reference = (
        2
        * pi
        / sp.sqrt(h_a * h_b)
        * (kappa * h_a / (kappa * h_b)) ** (alpha - sp.Rational(1, 2))
        * sp.exp(delta_phi)
    )
    d = derive_escape_time("sgd", dim=1, interpretation="alpha")
    assert_same(d.tau, reference, rng)
    # the three named interpretations: 2π/H_a, 2π/sqrt(H_a H_b), 2π/H_b (docs/conventions.md §2)
    for name, pref in (
        ("ito", 2 * pi / h_a),
        ("stratonovich", 2 * pi / sp.sqrt(h_a * h_b)),
        ("anti-ito", 2 * pi / h_b),
    ):
        assert_same(derive_escape_time("sgd", 1, name).tau, pref * sp.exp(delta_phi), rng)


@pytest.mark.parametrize("dim", [2, 3])
def test_sgd_nd_alpha_prefactor_follows_the_switch_hint(dim: int, rng) -> None:
    """docs/conventions.md §2 hint: τ_α = τ_anti-Itô · (|H_be|/H_ae)^(1−α) in any dimension (Itô: 2π/H_ae)."""
    h_ae, h_be = hess("a", dim)[0], hess("b", dim)[0]
    reference = paper_sgd(dim) * (h_be / h_ae) ** (1 - alpha)
    assert_same(derive_escape_time("sgd", dim=dim, interpretation="alpha").tau, reference, rng)
    ito = derive_escape_time("sgd", dim=dim, interpretation="ito")
    assert_same(ito.prefactor, 2 * pi / h_ae, rng)


def test_loss_dependent_is_mori_et_al_1d(rng) -> None:
    """Mori et al. (2022), 1-D: γ = (1/2π) sqrt(h* |h_s|) [L(b)/L(a)]^−(½ + B/(η h*)), with
    the curvature at the minimum H_a and at the saddle H_b (Itô)."""
    h_a, h_b = P("H_a"), P("H_b")
    reference_rate = (
        sp.sqrt(h_a * h_b) / (2 * pi) * (L_b / L_a) ** (-(sp.Rational(1, 2) + B / (eta * h_star)))
    )
    d = derive_escape_time("loss-dependent", dim=1, interpretation="ito")
    assert_same(d.rate, reference_rate, rng)


@pytest.mark.parametrize("dim", [2, 3])
def test_loss_dependent_is_mori_et_al_nd(dim: int, rng) -> None:
    """n-D: γ = (|h_e^s|/2π) sqrt(det Ĥ_a/|det Ĥ_b|) [L(b)/L(a)]^−(B/(η h*) + 1 − n/2)."""
    h_a, h_b = hess("a", dim), hess("b", dim)
    det_ratio = sp.Mul(*h_a) / sp.Mul(*h_b)
    exponent = B / (eta * h_star) + 1 - sp.Rational(dim, 2)
    reference_rate = h_b[0] / (2 * pi) * sp.sqrt(det_ratio) * (L_b / L_a) ** (-exponent)
    assert_same(
        derive_escape_time("loss-dependent", dim=dim, interpretation="ito").rate,
        reference_rate,
        rng,
    )


def test_loss_dependent_alpha_family_1d(rng) -> None:
    """The 1-D α-family with D = (η h* L/B): (D_a/D_b)^(α−½) = (L_a/L_b)^(α−½)."""
    h_a, h_b = P("H_a"), P("H_b")
    reference = (
        2
        * pi
        / sp.sqrt(h_a * h_b)
        * (L_a / L_b) ** (alpha - sp.Rational(1, 2))
        * (L_b / L_a) ** (B / (eta * h_star))
    )
    assert_same(derive_escape_time("loss-dependent", 1, "alpha").tau, reference, rng)


@pytest.mark.parametrize("noise", ["white", "sgd", "loss-dependent"])
def test_symbolic_dimension_reduces_to_each_explicit_dimension(noise: str, rng) -> None:
    """τ for symbolic n, with n = 1..4 substituted and the products expanded, equals the
    explicit-dimension derivation (a different code path: products over Indexed symbols)."""
    general = derive_escape_time(noise, dim="n", interpretation="alpha")
    base_a, base_b = general.symbols["H_a"], general.symbols["H_b"]
    n = general.symbols["n"]
    for dim in (1, 2, 3, 4):
        explicit = derive_escape_time(noise, dim=dim, interpretation="alpha")
        h_a, h_b = hess("a", dim), hess("b", dim)
        replacement = {base_a[i + 1]: h_a[i] for i in range(dim)} | {
            base_b[i + 1]: h_b[i] for i in range(dim)
        }
        specialised = general.tau.subs(n, dim).doit().xreplace(replacement)
        assert_same(specialised, explicit.tau, rng, points=2)


@pytest.mark.parametrize("noise", ["white", "sgd"])
@pytest.mark.parametrize("saddles", [2, 3])
def test_rates_over_several_saddles_add(noise: str, saddles: int, rng) -> None:
    """γ = Σ_p γ_p: each term is the single-saddle rate with that saddle's symbols."""
    d = derive_escape_time(noise, dim=1, saddles=saddles)
    single = derive_escape_time(noise, dim=1)
    expected = 0
    for p in range(1, saddles + 1):
        relabel = {P("H_b"): P(f"H_b{p}"), dL: P(f"Delta_L_b{p}"), s: P(f"s_b{p}")}
        expected += single.rate.xreplace(relabel)
    assert_same(d.rate, expected, rng)
    # and the overflow-free log: log τ = −log Σ γ_p at 50 digits
    with mpmath.workdps(50):
        values = {name: random_positive(rng) for name in (p.name for p in d.parameters)}
        for name in values:
            if name.startswith("s_"):
                values[name] = mpmath.mpf("0.4")
        compiled = d.compile("mpmath")
        assert mpmath.almosteq(
            compiled.log_tau(**values),
            mpmath.log(compiled.tau(**values)),
            rel_eps=mpmath.mpf(10) ** -45,
        )


@pytest.mark.parametrize("noise", ["white", "sgd", "loss-dependent"])
@pytest.mark.parametrize("dim", [1, 2, "n"])
def test_log_tau_is_log_of_tau(noise: str, dim, rng) -> None:
    d = derive_escape_time(noise, dim=dim, interpretation="alpha")
    difference = sp.expand_log(sp.log(d.tau), force=True) - d.log_tau
    difference = difference.replace(
        lambda e: isinstance(e, sp.Sum), lambda e: sp.expand_log(e, force=True)
    )
    assert sp.simplify(sp.expand(difference)) == 0


@pytest.mark.parametrize("noise", ["white", "sgd", "loss-dependent"])
def test_steps_end_with_tau_and_are_sympy(noise: str) -> None:
    d = derive_escape_time(noise, dim=2)
    assert len(d.steps) >= 8
    for title, expr in d.steps:
        assert isinstance(title, str) and title
        assert isinstance(expr, sp.Basic)
    titles = " ".join(title for title, _ in d.steps)
    for needed in (
        "Fokker–Planck",
        "Quasi-potential",
        "Lyapunov",
        "Population",
        "Current",
        "Escape time",
    ):
        assert needed in titles
    assert sp.simplify(d.steps[-1][1].rhs - d.tau) == 0
    assert isinstance(d.assumptions, list) and all(isinstance(a, str) for a in d.assumptions)


def test_documented_symbol_names() -> None:
    d = derive_escape_time("sgd", dim=2, interpretation="ito")
    for name in ("H_a_1", "H_b_1", "Delta_L", "eta", "B", "s"):
        assert name in d.symbols and d.symbols[name].name == name
        assert d.symbols[name].is_positive
    assert derive_escape_time("white").symbols["D"] == D
    general = derive_escape_time("white", dim="n")
    assert isinstance(general.symbols["H_a"], sp.IndexedBase)
    assert general.symbols["n"].is_integer


def test_latex_names_are_readable() -> None:
    latex = derive_escape_time("sgd", dim=2, interpretation="anti-ito").latex()
    assert r"\Delta L" in latex and r"H_{b,1}" in latex and r"\eta" in latex
    assert derive_escape_time("white").latex(equation=True).startswith(r"\tau = ")


def test_a_derivation_does_not_depend_on_alpha_for_white_noise() -> None:
    taus = {
        derive_escape_time("white", 2, it).tau for it in ("ito", "stratonovich", "anti-ito", 0.7)
    }
    assert len(taus) == 1
