"""Inputs to the theory layer: names, dimensions and interpretations, and their errors."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import sympy as sp

from flatminima.errors import (
    DimensionError,
    FlatMinimaError,
    InterpretationError,
    NoiseModelError,
    ParameterError,
)
from flatminima.theory import derive_escape_time, interpretation_alpha


@pytest.mark.parametrize(
    ("given", "alpha"),
    [
        ("ito", 0),
        ("Itô", 0),
        ("stratonovich", sp.Rational(1, 2)),
        ("anti-ito", 1),
        ("haenggi", 1),
        (0, 0),
        (1, 1),
        (0.25, sp.Rational(1, 4)),
        (0.3, sp.Rational(3, 10)),
        (Fraction(2, 7), sp.Rational(2, 7)),
        (sp.Rational(1, 3), sp.Rational(1, 3)),
        ("1/4", sp.Rational(1, 4)),
    ],
)
def test_interpretations(given, alpha) -> None:
    assert interpretation_alpha(given) == alpha


def test_symbolic_alpha() -> None:
    assert interpretation_alpha("alpha").name == "alpha"


@pytest.mark.parametrize(
    "bad", [-0.1, 1.5, 2, "klimov", math.nan, math.inf, True, None, [0.5], "1/0"]
)
def test_bad_interpretation(bad) -> None:
    with pytest.raises(InterpretationError, match="interpretation"):
        interpretation_alpha(bad)
    with pytest.raises(FlatMinimaError, match="interpretation"):
        derive_escape_time("sgd", interpretation=bad)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "m", "", True, None, "0"])
def test_bad_dimension(bad) -> None:
    with pytest.raises(DimensionError, match="dim"):
        derive_escape_time("white", dim=bad)


@pytest.mark.parametrize("bad", ["brownian", "", None, 3, "SGD noise"])
def test_bad_noise(bad) -> None:
    with pytest.raises(NoiseModelError, match="noise"):
        derive_escape_time(bad)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_bad_saddle_count(bad) -> None:
    with pytest.raises(ParameterError, match="saddles"):
        derive_escape_time("white", saddles=bad)


def test_accepted_spellings() -> None:
    assert derive_escape_time("SGD", dim="2").dim == 2
    assert derive_escape_time("loss_dependent", dim=2.0).noise == "loss-dependent"


def test_errors_are_value_errors_with_fields() -> None:
    with pytest.raises(ValueError) as info:
        derive_escape_time("white", dim=-3)
    error = info.value
    assert isinstance(error, FlatMinimaError)
    assert error.parameter == "dim" and error.got == -3
    assert "positive integer" in str(error)
