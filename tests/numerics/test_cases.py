"""The test-landscape case registry: its two forms of each loss agree, its critical points are
critical points of the right kind, and its references match independent computations (numpy's
polynomial roots, closed forms worked out by hand)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp

from flatminima.errors import ParameterError
from flatminima.numerics import LANDSCAPE_CASES, landscape_case


@pytest.mark.parametrize("name", sorted(LANDSCAPE_CASES))
def test_callables_are_the_sympy_loss(name: str) -> None:
    case = landscape_case(name)
    x = case.variables[0]
    one = case.loss if case.dim == 1 else case.loss.subs({v: 0 for v in case.variables[1:]})
    rng = np.random.default_rng(3)
    points = rng.uniform(-4, 4, 7)
    for form, expr in (
        (case.value, one),
        (case.gradient, sp.diff(one, x)),
        (case.hessian, sp.diff(one, x, 2)),
    ):
        exact = [float(expr.subs(x, sp.Rational(repr(float(p))))) for p in points]
        np.testing.assert_allclose(form(points), exact, rtol=1e-13, atol=1e-12)


@pytest.mark.parametrize("name", sorted(LANDSCAPE_CASES))
def test_minima_and_saddles_are_critical_points_of_the_right_index(name: str) -> None:
    case = landscape_case(name)
    grad = [sp.diff(case.loss, v) for v in case.variables]
    hess = sp.hessian(case.loss, case.variables)
    for points, negatives in ((case.minima, 0), (case.saddles, 1)):
        for point in points:
            at = dict(zip(case.variables, map(sp.Float, point), strict=True))
            assert max(abs(float(g.subs(at))) for g in grad) < 1e-12
            eigen = np.linalg.eigvalsh(np.array(hess.subs(at), dtype=float))
            assert int((eigen < 0).sum()) == negatives


def test_styblinski_tang_references_against_numpy_roots() -> None:
    """a, b: roots of L'(x) = 2x³ − 16x + 5/2 from numpy's companion matrix; H = 6x² − 16;
    c = √(8/3) solves L'' = 0; ΔL and s from the polynomial itself."""
    refs = landscape_case("styblinski-tang-1d").references(dps=30)
    roots = np.sort(np.roots([2.0, 0.0, -16.0, 2.5]).real)
    a, b = roots[2], roots[1]
    poly = np.poly1d([0.5, 0.0, -8.0, 2.5, 0.0])
    assert float(refs["a"]) == pytest.approx(a, rel=1e-13)
    assert float(refs["b"]) == pytest.approx(b, rel=1e-12)
    assert float(refs["H_a"]) == pytest.approx(6 * a**2 - 16, rel=1e-12)
    assert float(refs["H_b"]) == pytest.approx(16 - 6 * b**2, rel=1e-12)
    assert float(refs["Delta_L"]) == pytest.approx(poly(b) - poly(a), rel=1e-12)
    c = np.sqrt(8 / 3)
    assert float(refs["s"]) == pytest.approx((poly(c) - poly(a)) / (poly(b) - poly(a)), rel=1e-12)
    with mpmath.workdps(30):
        assert abs(2 * refs["a"] ** 3 - 16 * refs["a"] + mpmath.mpf(5) / 2) < mpmath.mpf(10) ** -27


def test_double_well_exact_references() -> None:
    """x⁴/4 − x²/2: L(0) − L(−1) = 1/4; c = −1/√3: L(c) − L(−1) = 1/36 − 1/6 + 1/4 = 1/9, so
    s = 4/9 (worked by hand)."""
    case = landscape_case("double-well")
    exact = case.exact
    assert (exact["a"], exact["b"], exact["H_a"], exact["H_b"]) == (-1, 0, 2, 1)
    assert exact["Delta_L"] == sp.Rational(1, 4)
    assert exact["s"] == sp.Rational(4, 9)
    refs = case.references(dps=25)
    with mpmath.workdps(25):
        for key in ("a", "b", "H_a", "H_b", "Delta_L", "s"):
            value = sp.Rational(exact[key])
            assert abs(refs[key] - mpmath.mpf(value.p) / value.q) < 1e-24


def test_the_2d_case_is_the_separable_sum() -> None:
    one = landscape_case("styblinski-tang-1d")
    two = landscape_case("styblinski-tang-2d")
    x, y = two.variables
    assert sp.expand(two.loss - one.loss - one.loss.subs(x, y)) == 0
    (a,), (b,) = one.minima[0], one.saddles[0]
    assert two.minima == ((a, a),)
    assert set(two.saddles) == {(b, a), (a, b)}


def test_an_unknown_case_is_named() -> None:
    with pytest.raises(ParameterError, match="name: expected one of"):
        landscape_case("rosenbrock")


def test_loss_in_the_callers_symbols() -> None:
    t = sp.Symbol("t")
    assert landscape_case("double-well").loss_in(t) == t**4 / 4 - t**2 / 2
    with pytest.raises(ParameterError, match="symbols: expected 2 SymPy symbol"):
        landscape_case("styblinski-tang-2d").loss_in(t)


def test_a_case_name_that_is_not_a_string_is_named() -> None:
    for bad in (["double-well"], None, 3):
        with pytest.raises(ParameterError, match="name: expected one of"):
            landscape_case(bad)  # type: ignore[arg-type]
