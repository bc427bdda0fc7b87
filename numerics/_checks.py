"""Input checks for the numerics layer: every public function calls these first.

Each check converts what it accepts into the working type (``mpmath.mpf`` at the working
precision, an ``mpmath.matrix``, or a float64 array for the array functions) and raises a
[`FlatMinimaError`][flatminima.errors.FlatMinimaError] subclass naming the parameter otherwise:
never a NaN, an inf or a traceback from deep inside.

The scalar and the array paths accept the same real numbers: int, float, numpy scalars and
0-d arrays, torch tensors, Fraction, Decimal, mpmath ``mpf``, SymPy numbers (``pi/4``) and
strings that are decimal numbers (``"0.1"``, ``"1e-3"``). They refuse ``bool``, complex values
(even with a zero imaginary part in a complex dtype), other strings (``"abc"``, ``"1_000"``),
None, NaN and ±inf.
"""

from __future__ import annotations

import math
import numbers
import re
from decimal import Decimal
from typing import Any

import mpmath
import numpy as np

from flatminima.errors import HessianError, ParameterError, PrecisionError, ShapeError

__all__ = [
    "MIN_DPS",
    "check_dps",
    "in_open_unit_interval",
    "matrix",
    "positive",
    "real",
    "real_array",
    "symmetric_arrays",
]

#: A decimal number as text: digits, one point, an exponent; no underscores, no words.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")

#: Below this many digits mpmath evaluation gains nothing over float64.
MIN_DPS = 15
MAX_DPS = 10_000


def check_dps(dps: Any, name: str = "dps") -> int:
    """Decimal digits of working precision: an integer in [15, 10000]."""
    if isinstance(dps, bool) or not isinstance(dps, numbers.Integral):
        raise PrecisionError(name, f"an integer number of digits in [{MIN_DPS}, {MAX_DPS}]", dps)
    if not MIN_DPS <= int(dps) <= MAX_DPS:
        raise PrecisionError(
            name,
            f"an integer number of digits in [{MIN_DPS}, {MAX_DPS}]",
            dps,
            "below 15 digits use the log-space numpy evaluator",
        )
    return int(dps)


def real(name: str, value: Any) -> mpmath.mpf:
    """A finite real number as an mpf at the working precision.

    Accepts int, float, str (read at the working precision: ``"0.1"`` is 0.1 to dps digits),
    Fraction, Decimal, mpf, numpy scalars and SymPy numbers.
    """
    if isinstance(value, bool | np.bool_) or value is None:
        raise ParameterError(name, "a finite real number", value)
    if _is_tensor(value):
        if value.numel() != 1 or value.is_complex() or value.dtype == _torch_bool():
            raise ParameterError(name, "a finite real number (a one-element real tensor)", value)
        return real(name, value.detach().cpu().item())
    try:
        if isinstance(value, mpmath.mpf):
            result = value
        elif isinstance(value, str):
            if not _NUMBER.fullmatch(value.strip()):
                raise ValueError
            result = mpmath.mpf(value.strip())
        elif isinstance(value, numbers.Rational):  # int, Fraction, SymPy Rational: exact p/q
            result = mpmath.mpf(int(value.numerator)) / int(value.denominator)
        elif isinstance(value, Decimal):
            result = mpmath.mpf(str(value))
        elif hasattr(value, "is_number") and getattr(
            value, "is_real", False
        ):  # SymPy: π, Float, √2
            result = +value.evalf(mpmath.mp.dps + 5)._to_mpmath(mpmath.mp.prec + 10)
        elif isinstance(value, numbers.Real):  # float, numpy floats: the double itself
            result = mpmath.mpf(float(value))
        elif hasattr(value, "shape") and getattr(value, "shape", None) == ():  # 0-d array
            return real(name, value.item())
        elif hasattr(value, "is_number") and getattr(value, "is_number", False):
            raise ParameterError(name, "a finite real number, not a complex one", value)
        else:
            raise TypeError
    except (TypeError, ValueError, OverflowError, AttributeError):
        raise ParameterError(name, "a finite real number", value) from None
    if not mpmath.isfinite(result):
        raise ParameterError(name, "a finite real number", value)
    return result


def positive(name: str, value: Any) -> mpmath.mpf:
    """A finite number > 0."""
    result = real(name, value)
    if result <= 0:
        raise ParameterError(name, "a positive finite number", value)
    return result


def in_open_unit_interval(name: str, value: Any) -> mpmath.mpf:
    """A number in the open interval (0, 1)."""
    result = real(name, value)
    if not 0 < result < 1:
        raise ParameterError(name, "a number in the open interval (0, 1)", value)
    return result


def _rows(name: str, value: Any) -> list[list[Any]]:
    """Nested rows of a square matrix from numpy arrays, lists, mpmath matrices, scalars."""
    if isinstance(value, mpmath.matrix):
        return [[value[i, j] for j in range(value.cols)] for i in range(value.rows)]
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch tensor
        value = value.detach().cpu().numpy()
    if hasattr(value, "tolist") and hasattr(value, "shape"):
        shape = tuple(value.shape)
        if len(shape) == 0:
            return [[value.item()]]
        if len(shape) != 2:
            raise ShapeError(name, "a square matrix (2-D array)", f"an array of shape {shape}")
        return value.tolist()
    if isinstance(value, numbers.Number | str | mpmath.mpf) and not isinstance(value, bool):
        return [[value]]
    if isinstance(value, list | tuple):
        if not value:
            raise ShapeError(name, "a non-empty square matrix", value)
        if all(isinstance(row, list | tuple) for row in value):
            return [list(row) for row in value]
        if len(value) == 1:
            return [list(value)]
        raise ShapeError(name, "a square matrix (nested rows), not a flat list", value)
    raise ShapeError(name, "a square matrix: numpy array, nested list or mpmath matrix", value)


def matrix(name: str, value: Any, symmetric_tolerance: float = 1e-10) -> mpmath.matrix:
    """A finite, symmetric square matrix as an ``mpmath.matrix`` at the working precision.

    Asymmetry up to ``symmetric_tolerance`` relative to the largest entry (round-off from a
    float computation) is averaged away; more is an error.
    """
    rows = _rows(name, value)
    size = len(rows)
    if any(len(row) != size for row in rows):
        shape = f"rows of lengths {[len(r) for r in rows]}"
        raise ShapeError(name, "a square matrix", shape)
    entries = [[real(f"{name}[{i}][{j}]", rows[i][j]) for j in range(size)] for i in range(size)]
    out = mpmath.matrix(size, size)
    scale = max((abs(x) for row in entries for x in row), default=mpmath.mpf(0))
    worst = mpmath.mpf(0)
    for i in range(size):
        for j in range(size):
            worst = max(worst, abs(entries[i][j] - entries[j][i]))
            out[i, j] = (entries[i][j] + entries[j][i]) / 2
    if scale > 0 and worst > symmetric_tolerance * scale:
        raise HessianError(
            name,
            "a symmetric matrix",
            value,
            f"largest |A - A^T| entry {mpmath.nstr(worst, 3)} "
            f"vs largest entry {mpmath.nstr(scale, 3)}",
        )
    return out


def same_size(names: tuple[str, str], first: mpmath.matrix, second: mpmath.matrix) -> None:
    if first.rows != second.rows:
        raise ShapeError(
            names[1],
            f"a {first.rows}x{first.rows} matrix like {names[0]}",
            f"{second.rows}x{second.cols}",
        )


def finite_float(name: str, value: Any) -> float:
    """A finite float (for the float64 code paths)."""
    result = float(real(name, value))
    if not math.isfinite(result):
        raise ParameterError(name, "a finite real number", value)
    return result


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _torch_bool() -> Any:
    import torch

    return torch.bool


def real_array(
    name: str,
    value: Any,
    *,
    positive_only: bool = False,
    upper: float | None = None,
    allow_empty: bool = False,
    copy: bool = True,
) -> np.ndarray:
    """A float64 array of finite real numbers, from anything [`real`][] accepts or nested
    sequences and arrays of them (numpy, torch).

    Refuses bool, complex and non-numeric entries, empty arrays (unless ``allow_empty``),
    NaN, ±inf and magnitudes beyond float64 (10⁴⁰⁰); with ``positive_only`` values ≤ 0; with
    ``upper`` values ≥ upper. The message names the parameter and the first bad entry.
    ``copy=False`` returns a float64 input array itself (for callers that only read it).
    The checks are two reductions (min and max, which propagate NaN) when the values pass; the
    element-wise mask that finds the first bad entry is built only when they do not.
    """
    expected = "finite real numbers"
    if positive_only:
        expected = "positive finite numbers"
    if upper is not None:
        expected = f"finite numbers in (0, {upper:g})"
    if value is None or isinstance(value, bool | np.bool_ | str | bytes):
        if isinstance(value, str):
            return np.asarray(float(real(name, value)))
        raise ParameterError(name, expected, value)
    if _is_tensor(value):
        if value.is_complex() or value.dtype == _torch_bool():
            raise ParameterError(name, f"{expected} (a real tensor)", f"a {value.dtype} tensor")
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):  # ragged nesting
        raise ShapeError(name, f"a number or a regular array of {expected}", value) from None
    kind = arr.dtype.kind
    if kind == "b":
        raise ParameterError(name, f"{expected}, not booleans", value)
    if kind == "c":
        raise ParameterError(name, f"{expected}, not complex numbers", value)
    if kind in "OUS":  # mpf, SymPy, Decimal, strings: each through the scalar check
        flat = [float(real(name, v)) for v in arr.reshape(-1)]
        arr = np.asarray(flat, dtype=np.float64).reshape(arr.shape)
    elif kind not in "iuf":
        raise ParameterError(name, expected, value)
    with np.errstate(over="ignore"):
        try:
            arr = arr.astype(np.float64, copy=copy)
        except OverflowError:
            raise ParameterError(name, expected, "a value beyond float64") from None
    if arr.size == 0 and not allow_empty:
        raise ShapeError(name, f"a non-empty array of {expected}", value)
    if arr.size:
        low, high = float(arr.min()), float(arr.max())  # NaN anywhere makes both NaN
        passes = math.isfinite(low) and math.isfinite(high)
        if positive_only or upper is not None:
            passes = passes and low > 0
        if upper is not None:
            passes = passes and high < upper
        if passes:
            return arr
    ok = np.isfinite(arr)
    if positive_only or upper is not None:
        ok &= arr > 0
    if upper is not None:
        ok &= arr < upper
    if not np.all(ok):
        index = np.unravel_index(int(np.argmin(ok)), arr.shape) if arr.ndim else ()
        bad = float(arr[index])
        where = f" at index {tuple(int(i) for i in index)}" if arr.ndim else ""
        raise ParameterError(name, expected, f"{bad!r}{where}")
    return arr


def symmetric_arrays(name: str, value: Any, symmetric_tolerance: float = 1e-10) -> np.ndarray:
    """A (batch of) finite, real, symmetric square matrices as float64 ``(..., n, n)``; a
    number is a 1×1 matrix. Asymmetry up to ``symmetric_tolerance`` of the largest entry
    (round-off) is averaged away; more is a [`HessianError`][flatminima.errors.HessianError],
    as in [`matrix`][]."""
    arr = real_array(name, value)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        raise ShapeError(name, "square matrices (..., n, n)", f"an array of shape {arr.shape}")
    transposed = np.swapaxes(arr, -1, -2)
    scale = float(np.max(np.abs(arr)))
    worst = float(np.max(np.abs(arr - transposed)))
    if scale > 0 and worst > symmetric_tolerance * scale:
        raise HessianError(
            name,
            "symmetric matrices",
            value,
            f"largest |A - A^T| entry {worst:.3g} vs largest entry {scale:.3g}",
        )
    return 0.5 * (arr + transposed)
