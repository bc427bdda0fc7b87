"""The quadratic-model pieces (Lyapunov equation, unstable eigenvalue, determinant ratio) and
SymPy proofs that with shared eigenvectors the general prefactor reduces to the derived white
Eyring–Kramers formula and to the paper's SGD formula with its s."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import sympy as sp

from flatminima.errors import FlatMinimaError
from flatminima.theory import (
    derive_escape_time,
    langer_unstable_eigenvalue,
    lyapunov_covariance,
    quadratic_prefactor,
    quasi_potential_hessian,
)

# a rational rotation (cos = 3/5, sin = 4/5): shared eigenvectors not aligned with the axes
R = sp.Matrix([[sp.Rational(3, 5), -sp.Rational(4, 5)], [sp.Rational(4, 5), sp.Rational(3, 5)]])


def test_lyapunov_solution_solves_the_equation_for_a_general_symbolic_matrix() -> None:
    h11, h12, h22, d11, d12, d22 = sp.symbols("h11 h12 h22 d11 d12 d22")
    h = sp.Matrix([[h11, h12], [h12, h22]])
    d = sp.Matrix([[d11, d12], [d12, d22]])
    sigma = lyapunov_covariance(h, d)
    assert (h * sigma + sigma * h.T - 2 * d).applyfunc(sp.simplify) == sp.zeros(2, 2)
    assert sigma == sigma.T


def test_lyapunov_solution_matches_scipy_on_a_random_instance() -> None:
    """Independent solver: scipy.linalg.solve_continuous_lyapunov (Bartels–Stewart)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 3))
    h = a @ a.T + 3 * np.eye(3)
    b = rng.standard_normal((3, 3))
    d = b @ b.T + np.eye(3)
    h_rat = sp.Matrix(3, 3, lambda i, j: sp.Rational(float(h[i, j])))
    d_rat = sp.Matrix(3, 3, lambda i, j: sp.Rational(float(d[i, j])))
    ours = np.array(lyapunov_covariance(h_rat, d_rat).evalf(20), dtype=float)
    reference = scipy.linalg.solve_continuous_lyapunov(h, 2 * d)
    assert np.allclose(ours, reference, rtol=1e-12, atol=1e-12)


def test_white_noise_quasi_potential_hessian_is_h_over_d() -> None:
    a1, a2, d = sp.symbols("a1 a2 d", positive=True)
    h = R * sp.diag(a1, a2) * R.T
    assert (quasi_potential_hessian(h, d * sp.eye(2)) - h / d).applyfunc(sp.simplify) == sp.zeros(
        2, 2
    )


def test_langer_eigenvalue_is_the_saddles_own_for_the_gradient_drift() -> None:
    b1, b2 = sp.symbols("b1 b2", positive=True)
    h_b = R * sp.diag(-b1, b2) * R.T
    assert sp.simplify(langer_unstable_eigenvalue(h_b) - b1) == 0
    # with a mobility M = diag(2, 1) and an aligned saddle: μ = 2 b1
    assert sp.simplify(langer_unstable_eigenvalue(sp.diag(-b1, b2), sp.diag(2, 1)) - 2 * b1) == 0


@pytest.mark.parametrize("dim", [2, 3])
def test_reduces_to_the_white_eyring_kramers_formula(dim: int) -> None:
    """D = dI, H_a = diag(a_i), H_b = diag(−b_1, b_2, …): prefactor · e^(ΔL/d) equals the
    derived white-noise τ of derive_escape_time (H_b_1 there is |H_be|)."""
    derivation = derive_escape_time("white", dim=dim)
    sym = derivation.symbols
    a = [sym[f"H_a_{i + 1}"] for i in range(dim)]
    b = [sym[f"H_b_{i + 1}"] for i in range(dim)]
    d, delta_l = sym["D"], sym["Delta_L"]
    general = quadratic_prefactor(
        sp.diag(*a), sp.diag(-b[0], *b[1:]), d * sp.eye(dim), d * sp.eye(dim)
    ) * sp.exp(delta_l / d)
    assert sp.simplify(general / derivation.tau) == 1


def test_white_reduction_holds_in_a_rotated_common_eigenbasis() -> None:
    derivation = derive_escape_time("white", dim=2)
    sym = derivation.symbols
    a1, a2, b1, b2 = (sym[k] for k in ("H_a_1", "H_a_2", "H_b_1", "H_b_2"))
    d, delta_l = sym["D"], sym["Delta_L"]
    general = quadratic_prefactor(
        R * sp.diag(a1, a2) * R.T, R * sp.diag(-b1, b2) * R.T, d * sp.eye(2), d * sp.eye(2)
    ) * sp.exp(delta_l / d)
    assert sp.simplify(general / derivation.tau) == 1


def test_reduces_to_the_papers_sgd_formula_with_its_s() -> None:
    """D = κH_a at a and κ|H_b| at b (κ = η/2B): Q_a = I/κ, Q_b = sign(H_b)/κ, so the prefactor
    is 2π/|H_be|; the switch model's exponent along e, sΔL/(κH_ae) + (1 − s)ΔL/(κ|H_be|), is
    the paper's. Together: the derived anti-Itô SGD τ."""
    derivation = derive_escape_time("sgd", dim=2, interpretation="anti-ito")
    sym = derivation.symbols
    a1, b1, eta, batch, s, delta_l = (
        sym[k] for k in ("H_a_1", "H_b_1", "eta", "B", "s", "Delta_L")
    )
    a2, b2 = sp.symbols("H_a_2 H_b_2", positive=True)
    kappa = eta / (2 * batch)
    h_a, h_b = R * sp.diag(a1, a2) * R.T, R * sp.diag(-b1, b2) * R.T
    abs_b = R * sp.diag(b1, b2) * R.T
    q_a = quasi_potential_hessian(h_a, kappa * h_a)
    assert (q_a - sp.eye(2) / kappa).applyfunc(sp.simplify) == sp.zeros(2, 2)
    exponent = s * delta_l / (kappa * a1) + (1 - s) * delta_l / (kappa * b1)
    general = quadratic_prefactor(h_a, h_b, kappa * h_a, kappa * abs_b) * sp.exp(exponent)
    assert sp.simplify(general / derivation.tau) == 1


def test_anisotropic_noise_is_not_the_white_formula_with_e_d_e() -> None:
    """With D not diagonal in H's eigenbasis the determinant ratio is not that of white noise
    with D = eᵀDe: a numerical instance (what the aligned formula gets wrong)."""
    h_a, h_b = sp.diag(2, 3), sp.diag(-1, 2)
    d = sp.Matrix([[1, sp.Rational(1, 2)], [sp.Rational(1, 2), 1]])
    general = quadratic_prefactor(h_a, h_b, d, d)
    aligned = 2 * sp.pi * sp.sqrt(sp.Rational(2, 6))  # white: (2π/|H_be|)√(|det H_b|/det H_a)
    assert abs(float(general / aligned) - 1) > 0.01


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda: lyapunov_covariance([[1, 2, 3]], sp.eye(1)), "hessian"),
        (lambda: lyapunov_covariance(sp.eye(2), sp.eye(3)), "diffusion"),
        (lambda: lyapunov_covariance(sp.diag(1, -1), sp.eye(2)), "hessian"),
        (lambda: langer_unstable_eigenvalue(sp.diag(1, 2)), "hessian_saddle"),
    ],
)
def test_bad_input(call, parameter: str) -> None:
    with pytest.raises(FlatMinimaError, match=parameter):
        call()
