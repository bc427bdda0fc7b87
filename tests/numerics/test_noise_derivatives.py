"""Derivatives of a state-dependent D(θ) (numerics/_noise_models.py) against SymPy's exact
ones, on a D that is not aligned with any axis and changes in every direction:
D(θ) = S₀ + 0.3 u uᵀ + 0.2|θ|² I with u = tanh(Wθ), S₀ a rotated SPD matrix."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sympy as sp

from flatminima.numerics._loss_model import loss_model
from flatminima.numerics._noise_models import noise_model

N = 3
RNG = np.random.default_rng(7)
Q, _ = np.linalg.qr(RNG.standard_normal((N, N)))
S0 = Q @ np.diag([0.5, 1.0, 1.7]) @ Q.T
W = RNG.standard_normal((N, N))
THETA = sp.symbols(f"t0:{N}")


def _d_numpy(theta: np.ndarray) -> np.ndarray:
    u = np.tanh(theta @ W.T)
    r2 = (theta**2).sum(axis=-1)
    return S0 + 0.3 * u[..., :, None] * u[..., None, :] + 0.2 * r2[..., None, None] * np.eye(N)


def _d_sympy() -> sp.Matrix:
    s0 = sp.Matrix(N, N, lambda i, j: sp.Float(S0[i, j], 30))
    u = sp.Matrix(
        [sp.tanh(sum(sp.Float(W[i, k], 30) * THETA[k] for k in range(N))) for i in range(N)]
    )
    r2 = sum(t**2 for t in THETA)
    return s0 + sp.Rational(3, 10) * u * u.T + sp.Rational(1, 5) * r2 * sp.eye(N)


def _model(noise: object = _d_numpy):  # type: ignore[no-untyped-def]
    loss = sum(t**2 for t in THETA) / 2
    model = loss_model(loss, np.zeros(N))
    return model, noise_model(noise, model, np.zeros(N))


POINTS = np.array([[0.3, -0.7, 1.1], [-1.4, 0.2, 0.5], [2.5, 1.9, -3.2]])
MOMENTA = np.array([[1.0, 0.4, -0.8], [0.2, -1.3, 0.6], [0.7, 0.7, 0.1]])


P = sp.symbols(f"p0:{N}")


def test_second_derivative_form_matches_sympy_exact() -> None:
    d = _d_sympy()
    g = (sp.Matrix(P).T * d * sp.Matrix(P))[0, 0]
    exact_fn = sp.lambdify([THETA, P], sp.hessian(g, THETA), modules="mpmath")
    _, nm = _model()
    got = nm.second_derivative_form(POINTS, MOMENTA)
    for x, p, h in zip(POINTS, MOMENTA, got, strict=True):
        exact = np.array(exact_fn(x.tolist(), p.tolist()).tolist(), dtype=float)
        scale = np.max(np.abs(exact))
        assert np.max(np.abs(h - exact)) < 1e-6 * scale, (h, exact)
        assert np.allclose(h, h.T)


def test_first_derivative_matches_sympy_exact() -> None:
    d = _d_sympy()
    columns = [sp.lambdify([THETA], sp.diff(d, t), modules="mpmath") for t in THETA]
    _, nm = _model()
    got = nm.derivative(POINTS)  # [m, i, j, k] = ∂_k D_ij
    for x, dd in zip(POINTS, got, strict=True):
        exact = np.stack([np.array(c(x.tolist()).tolist(), dtype=float) for c in columns], axis=-1)
        assert np.max(np.abs(dd - exact)) < 1e-8 * np.max(np.abs(exact))


def test_the_difference_stencils_call_d_once_per_batch() -> None:
    calls = []

    def counted(theta: np.ndarray) -> np.ndarray:
        calls.append(theta.shape)
        return _d_numpy(theta)

    _, nm = _model(counted)
    calls.clear()
    nm.second_derivative_form(POINTS, MOMENTA)  # first call: steps h and 2h, and the check
    first = len(calls)
    calls.clear()
    nm.second_derivative_form(POINTS, MOMENTA)
    assert len(calls) == 1 and calls[0] == (3 * (N * N + N + 1), N)
    calls.clear()
    nm.derivative(POINTS)
    assert len(calls) == 1 and calls[0] == (3 * 2 * N, N)
    assert first <= 3


def test_a_d_with_a_kink_is_flagged() -> None:
    """D = (1 + |θ₀ − 0.3|)·S₀ has no second derivative at θ₀ = 0.3: the steps h and 2h
    disagree, and the warning names the noise."""

    def kinked(theta: np.ndarray) -> np.ndarray:
        return (1 + np.abs(theta[..., 0] - 0.3))[..., None, None] * S0

    _, nm = _model(kinked)
    x = np.array([[0.3 + 3e-5, 0.1, -0.2]])
    with pytest.warns(UserWarning, match="noise: the second derivatives"):
        nm.second_derivative_form(x, MOMENTA[:1])
    _, smooth = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        smooth.second_derivative_form(POINTS, MOMENTA)


def test_loss_dependent_second_form_is_exact() -> None:
    """D = (η L(θ)/B) H(a) (Mori et al.): the exact form against SymPy's derivative of
    pᵀDp on a loss whose Hessian at the minimum is not diagonal."""
    loss = (
        (THETA[0] - 1) ** 2
        + sp.Rational(1, 2) * (THETA[1] - THETA[0] * THETA[2]) ** 2
        + THETA[2] ** 4 / 4
        + THETA[2] ** 2
        + sp.Rational(1, 2)
    )
    a = np.array([1.0, 0.0, 0.0])
    model = loss_model(loss, a)
    nm = noise_model("loss-dependent", model, a, lr=0.1, batch_size=4)
    h_a = sp.hessian(loss, THETA).subs(dict(zip(THETA, a.tolist(), strict=True)))
    d = sp.Rational(1, 40) * loss * h_a  # η/B = 0.1/4
    got = nm.second_derivative_form(POINTS, MOMENTA)
    for x, p, h in zip(POINTS, MOMENTA, got, strict=True):
        g = (sp.Matrix(p.tolist()).T * d * sp.Matrix(p.tolist()))[0, 0]
        subs = dict(zip(THETA, x.tolist(), strict=True))
        exact = np.array([[float(sp.diff(g, u, v).subs(subs)) for v in THETA] for u in THETA])
        assert np.max(np.abs(h - exact)) < 1e-12 * np.max(np.abs(exact))
