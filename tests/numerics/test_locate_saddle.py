"""`locate_saddle` and ``other_minimum=``: every exit between two minima, against the saddles
scipy's root finder locates on the gradient from known starting points, and the rates summed
over them against the exact MFPT of `mfpt_2d`."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy.optimize import root

from flatminima.errors import ParameterError
from flatminima.numerics import landscape_escape_time, mfpt_2d
from flatminima.numerics._action import locate_saddle

X, Y, Z = sp.symbols("x y z")
#: A ring with two exits, 0.1 apart in height, between two minima near (±1.18, 0): the straight
#: line between the minima crosses the hill at the centre (not a saddle).
RING = (X**2 + Y**2 - 1) ** 2 - sp.Rational(4, 5) * X**2 + Y / 20 + X * Y / 10
#: One exit: a tilted double well.
WELL = (X**2 - 1) ** 2 + Y**2 + X * Y / 2


def _root(expr: sp.Expr, symbols: tuple[sp.Symbol, ...], start: tuple[float, ...]) -> np.ndarray:
    grad = sp.lambdify(symbols, [sp.diff(expr, s) for s in symbols], "numpy")
    found = root(lambda p: grad(*p), start, tol=1e-13)
    assert found.success
    return np.asarray(found.x)


def test_two_exits_of_the_ring_are_found_lowest_first() -> None:
    a, c = _root(RING, (X, Y), (-1.2, 0)), _root(RING, (X, Y), (1.2, 0))
    lower, upper = _root(RING, (X, Y), (0, -1)), _root(RING, (X, Y), (0, 1))
    found = locate_saddle(RING, a, c)
    assert found.shape == (2, 2)
    np.testing.assert_allclose(found, [lower, upper], atol=1e-9)
    np.testing.assert_allclose(locate_saddle(RING, a, c, keep="lowest"), [lower], atol=1e-9)
    with pytest.raises(ParameterError, match="keep_saddles"):
        locate_saddle(RING, a, c, keep="highest")


def test_one_exit_is_found_once() -> None:
    """The bent strings fall back into the one channel: one saddle, not three copies."""
    found = locate_saddle(WELL, [1, -0.25], [-1, 0.25])
    np.testing.assert_allclose(found, [[0, 0]], atol=1e-9)


def test_three_dimensional_ring_finds_both_exits() -> None:
    """In 3-D the strings bend along the two softest directions across the chord."""
    loss = RING + 2 * (Z - X * Y / 2) ** 2
    symbols = (X, Y, Z)
    a, c = _root(loss, symbols, (-1.2, 0, 0)), _root(loss, symbols, (1.2, 0, 0))
    saddles = [_root(loss, symbols, (0, s, 0)) for s in (-1, 1)]
    np.testing.assert_allclose(locate_saddle(loss, a, c), saddles, atol=1e-9)


def test_summed_rate_against_mfpt_2d() -> None:
    """White noise d = 0.12 (ΔΦ = 7.6 over the lower exit): τ over both exits is within 6%
    of the exact MFPT to the half-plane through the other minimum (measured 0.962), the lower
    exit alone is 1.40 of it: the second channel is needed, and found."""
    a, c = _root(RING, (X, Y), (-1.2, 0)), _root(RING, (X, Y), (1.2, 0))
    both = landscape_escape_time(
        RING, "white", minimum=a, other_minimum=c, diffusion=0.12, points=8, dps=15
    )
    lowest = landscape_escape_time(
        RING, "white", minimum=a, other_minimum=c, keep_saddles="lowest", diffusion=0.12,
        points=8, dps=15,
    )  # fmt: skip
    exact = mfpt_2d(
        sp.lambdify((X, Y), RING, "numpy"), 0.12, bounds=((-1.8, 1.8), (-1.8, 1.8)),
        shape=(48, 48), start=tuple(a), absorbing=lambda x, y: x > c[0], levels=2,
    )  # fmt: skip
    assert exact.error < 3e-3 * exact.extrapolated
    assert len(both.channels) == 2 and not lowest.channels
    assert abs(float(both.tau) / exact.extrapolated - 1) < 0.06
    assert float(lowest.tau) / exact.extrapolated > 1.25


def test_saddle_choice_options_need_other_minimum() -> None:
    """``other_minimum`` and ``keep_saddles`` choose among found saddles: with ``saddle=``
    given they would be ignored, so they are refused, naming the parameter."""
    with pytest.raises(ParameterError, match="other_minimum"):
        landscape_escape_time(WELL, minimum=[1, -0.25], saddle=[0, 0], other_minimum=[-1, 0.25])
    with pytest.raises(ParameterError, match="keep_saddles"):
        landscape_escape_time(WELL, minimum=[1, -0.25], saddle=[0, 0], keep_saddles="lowest")
