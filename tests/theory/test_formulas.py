"""The named formulas other layers evaluate (``flatminima.theory._formulas``), against
independent references: the textbook forms written out here, the switch fraction by solving the
gluing conditions with scipy, and the selection ratio as a ratio of two escape times."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from scipy import optimize

from flatminima.errors import ParameterError
from flatminima.theory import derive_escape_time
from flatminima.theory._formulas import FORMULAS, compiled_formula, formula

RNG = np.random.default_rng(20261202)


def _draw(n: int = 5) -> dict[str, np.ndarray]:
    return {
        "H_a": RNG.uniform(0.3, 30, n),
        "H_b": RNG.uniform(0.3, 30, n),
        "Delta_L": RNG.uniform(0.01, 30, n),
        "eta": RNG.uniform(1e-4, 0.5, n),
        "B": RNG.integers(1, 512, n).astype(float),
        "s": RNG.uniform(0.02, 0.98, n),
        "D": RNG.uniform(1e-3, 10, n),
    }


def test_kappa_is_lr_over_twice_the_batch() -> None:
    p = _draw()
    kappa = compiled_formula("kappa")
    np.testing.assert_allclose(kappa.value(eta=p["eta"], B=p["B"]), p["eta"] / (2 * p["B"]))
    assert kappa.value(lr=0.1, batch_size=8) == pytest.approx(0.1 / 16, rel=1e-15)


def test_sgd_quasi_potential_is_the_paper_exponent() -> None:
    p = _draw()
    phi = compiled_formula("quasi_potential_sgd")
    expected = 2 * p["B"] * p["Delta_L"] / p["eta"] * (p["s"] / p["H_a"] + (1 - p["s"]) / p["H_b"])
    got = phi.value(**{k: p[k] for k in phi.parameters})
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_sgd_quasi_potential_is_the_exponent_of_the_escape_time() -> None:
    """τ = prefactor · e^ΔΦ: log τ − ΔΦ does not depend on the barrier."""
    tau = derive_escape_time("sgd", dim=1).compile("mpmath")
    phi = compiled_formula("quasi_potential_sgd", "mpmath")
    args = {"H_a": 3, "H_b": 2, "eta": mpmath.mpf("0.01"), "B": 4, "s": mpmath.mpf("0.3")}
    differences = [
        tau.log_tau(Delta_L=dl, **args) - phi.value(Delta_L=dl, **args) for dl in (1, 5, 40)
    ]
    assert max(differences) - min(differences) < mpmath.mpf(10) ** -12


def test_white_quasi_potential() -> None:
    p = _draw()
    phi = compiled_formula("quasi_potential_white")
    assert phi.parameters == ("Delta_L", "D")
    np.testing.assert_allclose(phi.value(Delta_L=p["Delta_L"], D=p["D"]), p["Delta_L"] / p["D"])


@pytest.mark.parametrize(("h_a", "h_b"), [(1.0, 2.0), (29.27, 15.85), (0.3, 7.0)])
def test_switch_fraction_solves_the_gluing_conditions(h_a: float, h_b: float) -> None:
    """Glue a parabola of curvature H_a (from a = 0) to an inverted one of curvature H_b around
    the saddle at ℓ, value and slope matching at u_c: solved numerically by scipy, s = L(u_c)/ΔL."""
    barrier = 1.7

    def equations(v: np.ndarray) -> list[float]:
        u_c, ell = v
        return [
            h_a * u_c**2 / 2 - (barrier - h_b * (u_c - ell) ** 2 / 2),
            h_a * u_c + h_b * (u_c - ell),
        ]

    u_c, _ = optimize.fsolve(equations, [0.5, 1.5], xtol=1e-12)
    s_numeric = h_a * u_c**2 / 2 / barrier
    assert float(compiled_formula("switch_fraction").value(h_a, h_b)) == pytest.approx(
        s_numeric, rel=1e-10
    )


def test_selection_ratio_is_the_ratio_of_escape_times() -> None:
    """γ_sharp/γ_flat = τ_flat/τ_sharp with the anti-Itô SGD escape times, same ΔL, s, saddle."""
    tau = derive_escape_time("sgd", dim=1, interpretation="anti-ito").compile("numpy")
    ratio = compiled_formula("selection_ratio_sgd")
    common = {"H_b": 2.0, "Delta_L": 0.7, "eta": 0.05, "B": 3.0, "s": 0.4}
    log_expected = tau.log_tau(H_a=1.5, **common) - tau.log_tau(H_a=4.0, **common)
    got = ratio.log_value(
        H_flat=1.5, H_sharp=4.0, **{k: v for k, v in common.items() if k != "H_b"}
    )
    assert got == pytest.approx(log_expected, rel=1e-13)
    assert math.log(ratio.value(H_flat=1.5, H_sharp=4.0, Delta_L=0.7, eta=0.05, B=3, s=0.4)) == (
        pytest.approx(log_expected, rel=1e-13)
    )


def test_compiled_formulas_are_cached_and_every_name_builds() -> None:
    for name in FORMULAS:
        assert compiled_formula(name) is compiled_formula(name)
        assert formula(name).quantity
    with pytest.raises(ParameterError, match="name: expected one of"):
        formula("exponent")
    with pytest.raises(ParameterError, match="name: expected one of"):
        compiled_formula(["kappa"])  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="backend: expected one of"):
        compiled_formula("kappa", "jax")
    with pytest.raises(ParameterError, match="backend: expected one of"):
        compiled_formula("kappa", ["numpy"])  # type: ignore[arg-type]
