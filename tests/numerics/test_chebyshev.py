"""The O(N²) Chebyshev–Lobatto rules against the direct O(N³) construction and against exact
integrals of polynomials."""

from __future__ import annotations

import mpmath
import pytest

from flatminima.numerics._chebyshev import _rule_cubic, _rule_fast


def _largest_difference(first, second) -> mpmath.mpf:
    return max(
        abs(x - y)
        for ra, rb in zip(first, second, strict=True)
        for x, y in zip(ra, rb, strict=True)
    )


@pytest.mark.parametrize(("n", "dps"), [(8, 20), (18, 45), (32, 30), (40, 80)])
def test_fast_rule_equals_the_direct_construction(n: int, dps: int) -> None:
    with mpmath.workdps(dps):
        prec = mpmath.mp.prec
        fast, direct = _rule_fast(n, prec), _rule_cubic(n, prec)
        tol = mpmath.mpf(10) ** -(dps - 2)
        assert max(abs(x - y) for x, y in zip(fast.nodes, direct.nodes, strict=True)) < tol
        assert _largest_difference(fast.to_coefficients, direct.to_coefficients) < tol
        assert _largest_difference(fast.cumulative, direct.cumulative) < tol
        assert max(abs(x - y) for x, y in zip(fast.weights, direct.weights, strict=True)) < tol


@pytest.mark.parametrize(("n", "dps"), [(16, 30), (36, 60)])
def test_fast_rule_integrates_polynomials_of_degree_n_exactly(n: int, dps: int) -> None:
    with mpmath.workdps(dps):
        rule = _rule_fast(n, mpmath.mp.prec)
        tol = mpmath.mpf(10) ** -(dps - 3)
        for k in (0, 1, 5, n - 1, n):
            values = [x**k for x in rule.nodes]
            cumulative = rule.integrate_cumulative(values)
            for x, got in zip(rule.nodes, cumulative, strict=True):
                assert abs(got - (x ** (k + 1) - (-1) ** (k + 1)) / (k + 1)) < tol
            coefficients = rule.coefficients(values)
            if k < n - 1:  # the tail the resolution test reads is zero for low degrees
                assert abs(coefficients[-1]) < tol and abs(coefficients[-2]) < tol


@pytest.mark.parametrize(("n", "dps"), [(12, 30), (40, 100)])
def test_tail_is_the_last_two_chebyshev_coefficients(n: int, dps: int) -> None:
    """``tail`` (two rows of the transform) against mpmath's own Chebyshev coefficients of a
    function with known decay, e^{3x} sampled at the nodes: a_k = 2 I_k(3) (Bessel)."""
    with mpmath.workdps(dps):
        rule = _rule_fast(n, mpmath.mp.prec)
        values = [mpmath.exp(3 * x) for x in rule.nodes]
        # Lobatto interpolant: a_N is halved, a_{N-1} aliases with a_{N+1}
        last = 2 * mpmath.besseli(n, 3) / 2 + 2 * mpmath.besseli(n + 2, 3) / 2
        before = 2 * mpmath.besseli(n - 1, 3) + 2 * mpmath.besseli(n + 1, 3)
        want = max(abs(last), abs(before))
        assert abs(rule.tail(values) - want) < mpmath.mpf(10) ** -(dps - 3) + 1e-3 * want
        coefficients = rule.coefficients(values)
        assert rule.tail(values) == max(abs(coefficients[-1]), abs(coefficients[-2]))
