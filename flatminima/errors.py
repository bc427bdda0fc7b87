"""Errors and warnings raised by flatminima.

Every public function checks its inputs before it computes anything and raises a subclass of
[`FlatMinimaError`][flatminima.errors.FlatMinimaError] (itself a `ValueError`) whose message names the parameter, what
was expected and what was given::

    >>> from flatminima.errors import ParameterError
    >>> raise ParameterError("lr", "a positive finite number", -0.1)
    Traceback (most recent call last):
    ...
    flatminima.errors.ParameterError: lr: expected a positive finite number, got -0.1

The command line turns these into one line on stderr and exit status 2.

An asymptotic formula used outside its regime warns with [`ValidityWarning`][flatminima.errors.ValidityWarning].
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BudgetError",
    "ConvergenceError",
    "DimensionError",
    "DivergenceError",
    "FlatMinimaError",
    "HessianError",
    "InterpretationError",
    "NoiseModelError",
    "ParameterError",
    "PrecisionError",
    "ShapeError",
    "ValidityWarning",
]


def _show(value: Any, limit: int = 80) -> str:
    """A short, one-line representation of a user's value for an error message."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FlatMinimaError(ValueError):
    """Base class of every error flatminima raises for bad input or an impossible request."""


class ParameterError(FlatMinimaError):
    """A parameter has a value outside what the function accepts.

    Parameters
    ----------
    parameter
        The name of the parameter as the caller wrote it (``"lr"``, ``"hess_min"``, ``"--dim"``).
    expected
        What was expected, phrased to follow "expected" (``"a positive finite number"``).
    got
        The value that was given; it is shown with `repr`, shortened.
    detail
        Optional extra sentence (how to fix it).
    """

    def __init__(self, parameter: str, expected: str, got: Any, detail: str = "") -> None:
        self.parameter = parameter
        self.expected = expected
        self.got = got
        message = f"{parameter}: expected {expected}, got {_show(got)}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:  # keep the error picklable across processes
        return (type(self), (self.parameter, self.expected, self.got))


class NoiseModelError(ParameterError):
    """Unknown noise model name."""


class InterpretationError(ParameterError):
    """An interpretation of state-dependent noise other than Itô, Stratonovich, anti-Itô or
    α ∈ [0, 1]."""


class DimensionError(ParameterError):
    """A dimension that is not a positive integer (or the symbolic dimension ``"n"``)."""


class ShapeError(ParameterError):
    """An array of the wrong shape, or arrays whose shapes do not match."""


class HessianError(ParameterError):
    """A Hessian that does not fit its role: a minimum's that is not positive definite, a saddle's
    without exactly one negative eigenvalue, a matrix that is not symmetric."""


class PrecisionError(ParameterError):
    """A working precision too low to be meaningful."""


class ConvergenceError(FlatMinimaError):
    """A numerical method could not reach the accuracy asked for (the message says what to
    change: a breakpoint, a larger panel budget, a finite boundary)."""


class DivergenceError(ParameterError):
    """A simulation left the finite numbers or blew up: paths that reached NaN or ±inf, an
    Euler step unstable at the start. Never averaged into a result; the message names the
    parameter to change (usually ``step``) and what was seen."""


class BudgetError(ParameterError):
    """A request whose estimated cost (time or memory) is beyond the documented budget; the
    message gives the estimate, the parameter that drives it and how to raise the budget."""


class ValidityWarning(UserWarning):
    """An asymptotic formula is used outside the regime where it is accurate."""
