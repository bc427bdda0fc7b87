"""Eigen-data of the minimum's and the saddle's Hessians at working precision.

``H_b`` must have exactly one negative eigenvalue; its eigenvector is the escape direction e.
The curvature of ``H_a`` along e is the Rayleigh quotient ``H_ae = eᵀ H_a e``. When e is not an
eigenvector of H_a, `EigenData.misalignment` = ‖H_a e − H_ae e‖ / ‖H_a e‖ says by how much.

How (docs/performance.md): 1×1, diagonal and 2×2 Hessians in closed form at the working
precision. Larger Hessians given as floats (numpy arrays, lists of floats or ints) are
eigen-decomposed once in float64 (LAPACK ``eigh``); what the formulas need is then refined at
the working precision with exact products (`flatminima.numerics._exact`):

- ``log det H_a`` and ``log |det H_b|`` from ``det(Λ + C)``, ``C = (QᵀQ)⁻¹ Qᵀ(H Q − QΛ)``
  (Q, Λ from eigh; the diagonal of C exact, the rest float-accurate), as
  ``Σ log(λᵢ + cᵢᵢ) + log det(I + G)`` with ``G = D⁻¹C_off`` and the series
  ``log det(I + G) = −tr G²/2 + tr G³/3 − …``; it needs no eigenvalue gaps, and is used only
  while its error bound (float round-off of the series, ``4·n·u·‖G‖_F²``) is below
  ``10^-(dps+3)``, or, for ill-conditioned H, with C's off-diagonal recomputed accurately
  (split products, W as two floats, RK; bound ≈ a few u·‖G‖_F²), else by mpmath's LU;
- the escape eigenpair (H_b's negative eigenvalue is isolated: its gap is at least itself) by
  Newton steps with exact residuals, then ``|H_be|`` and ``H_ae`` as exact Rayleigh quotients.

Everything else (the other eigenvalues as reported, the misalignment) is float64 eigh data;
the eigenvalues listed are refined to ``λᵢ + cᵢᵢ`` where the determinant was computed. When
a float eigenvalue is too close to zero to decide the signs, or the Newton steps do not
converge, the mpmath path (``mpmath.eigsy`` at the working precision, O(n³) multiprecision
operations) is used, as it is for exact inputs (strings, fractions, mpf). Without the
determinants (SGD noise) H_a is only ``eigvalsh``'d.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import mpmath
import numpy as np
from mpmath.libmp import (
    fone,
    from_float,
    fzero,
    mpf_abs,
    mpf_add,
    mpf_cmp,
    mpf_div,
    mpf_mul,
    mpf_neg,
    mpf_pos,
    mpf_shift,
    mpf_sign,
    mpf_sqrt,
    mpf_sub,
    to_float,
)

from flatminima.errors import HessianError

__all__ = [
    "EigenData",
    "eigen_data",
    "eigen_data_float",
    "float_matrix",
    "one_dimensional",
    "small_floats",
    "two_by_two_floats",
]


@dataclass(frozen=True)
class EigenData:
    """Spectra and the escape direction, at the working precision of the call.

    ``log_det_min`` (log det H_a) and ``log_abs_det_saddle`` (log |det H_b|) are at the
    working precision; ``method`` says which path computed them (see docs/performance.md).
    """

    min_eigenvalues: tuple[mpmath.mpf, ...]  # ascending
    saddle_eigenvalues: tuple[mpmath.mpf, ...]  # ascending; the first is negative
    escape_direction: tuple[mpmath.mpf, ...]  # unit eigenvector of the negative eigenvalue
    curvature_min_along_e: mpmath.mpf  # H_ae = eᵀ H_a e
    curvature_saddle_e: mpmath.mpf  # |H_be| > 0
    misalignment: mpmath.mpf  # ‖H_a e − H_ae e‖ / ‖H_a e‖; 0 when e is an eigenvector of H_a
    log_det_min: mpmath.mpf | None = None
    log_abs_det_saddle: mpmath.mpf | None = None
    method: str = "mpmath.eigsy"

    @property
    def dim(self) -> int:
        return len(self.min_eigenvalues)

    def to_dict(self) -> dict[str, object]:
        def s(x: mpmath.mpf | None) -> str | None:
            return None if x is None else mpmath.nstr(x, 17)

        return {
            "min_eigenvalues": [s(x) for x in self.min_eigenvalues],
            "saddle_eigenvalues": [s(x) for x in self.saddle_eigenvalues],
            "escape_direction": [s(x) for x in self.escape_direction],
            "curvature_min_along_e": s(self.curvature_min_along_e),
            "curvature_saddle_e": s(self.curvature_saddle_e),
            "misalignment": s(self.misalignment),
            "log_det_min": s(self.log_det_min),
            "log_abs_det_saddle": s(self.log_abs_det_saddle),
            "method": self.method,
        }


# ---------------------------------------------------------------------------------------------
# input


def float_matrix(name: str, value: Any) -> np.ndarray | None:
    """``value`` as an exact float64 square matrix, or None when it is not one (strings,
    fractions, mpf, ragged or non-finite input: the mpmath path reads and checks those).

    Symmetry is checked like `flatminima.numerics._checks.matrix` (relative 1e-10); the caller
    symmetrizes exactly (the average (A + Aᵀ)/2 is formed with exact products downstream).
    """
    if isinstance(value, mpmath.matrix | str | bool) or value is None:
        return None
    if type(value) in (float, int):  # 1-D: a number
        value = [[value]]
    if type(value) in (list, tuple) and len(value) <= 2:
        flat = small_floats(name, value)
        if flat is not None:
            return np.array(flat).reshape(len(value), len(value))
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch tensor
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        return None
    if arr.dtype.kind not in "fiu":
        return None
    if arr.dtype.kind in "iu" and arr.size and int(np.abs(arr).max()) > 2**53:
        return None
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 0 or (arr.ndim == 1 and arr.shape[0] == 1):
        arr = arr.reshape(1, 1)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        return None
    if not np.isfinite(arr).all():
        return None
    scale = float(np.abs(arr).max())
    worst = float(np.abs(arr - arr.T).max())
    if scale > 0 and worst > 1e-10 * scale:
        raise HessianError(
            name,
            "a symmetric matrix",
            value,
            f"largest |A - A^T| entry {worst:.3g} vs largest entry {scale:.3g}",
        )
    return arr


def small_floats(name: str, rows: Any) -> list[float] | None:
    """A 1×1 or 2×2 nested list/tuple of Python floats/ints as a flat list of floats, without
    numpy; None when it is not one (or not exact in float64, or not finite). A non-symmetric
    2×2 is a HessianError (relative 1e-10, as for arrays)."""
    n = len(rows)
    if n not in (1, 2) or not all(type(r) in (list, tuple) and len(r) == n for r in rows):
        return None
    if not all(type(x) in (float, int) for r in rows for x in r):
        return None
    if any(type(x) is int and abs(x) > 2**53 for r in rows for x in r):
        return None
    flat = [float(x) for r in rows for x in r]
    if any(x != x or x in (math.inf, -math.inf) for x in flat):
        return None
    if n == 2 and flat[1] != flat[2]:
        scale = max(abs(x) for x in flat)
        worst = abs(flat[1] - flat[2])
        if worst > 1e-10 * scale:
            raise HessianError(
                name,
                "a symmetric matrix",
                rows,
                f"largest |A - A^T| entry {worst:.3g} vs largest entry {scale:.3g}",
            )
    return flat


def two_by_two_floats(a: list[float], b: list[float]) -> EigenData:
    """Eigen-data of 2×2 float Hessians given flat (row-major), closed form (no numpy)."""
    a00, a01, a10, a11 = a
    b00, b01, b10, b11 = b
    if a01 == a10 == 0 and b01 == b10 == 0:
        return _diagonal([a00, a11], [b00, b11])
    return _two_by_two_raw(
        (from_float(a00), _mean(a01, a10), from_float(a11)),
        (from_float(b00), _mean(b01, b10), from_float(b11)),
        exact_misalignment=False,
    )


# ---------------------------------------------------------------------------------------------
# checks shared by the paths


@cache
def _ten_to_minus(digits: int, prec: int) -> mpmath.mpf:
    with mpmath.workprec(prec):
        return mpmath.mpf(10) ** (-digits)


def _zero_tolerance(values: list[mpmath.mpf]) -> mpmath.mpf:
    scale = max(abs(v) for v in values)
    return scale * _ten_to_minus(mpmath.mp.dps // 2, mpmath.mp.prec)


def _show(values: Any) -> str:
    return "[" + ", ".join(mpmath.nstr(mpmath.mpf(v), 6) for v in values) + "]"


def _not_minimum(values: Any) -> HessianError:
    return HessianError(
        "hess_min",
        "a positive definite matrix (a minimum's Hessian)",
        f"eigenvalues {_show(values)}",
    )


def _not_saddle(values: Any) -> HessianError:
    return HessianError(
        "hess_saddle",
        "a matrix with exactly one negative eigenvalue and no zero one (an index-1 saddle)",
        f"eigenvalues {_show(values)}",
    )


def _check_min(values: list[mpmath.mpf]) -> None:
    if values[0] <= _zero_tolerance(values):
        raise _not_minimum(values)


def _check_saddle(values: list[mpmath.mpf]) -> None:
    zero = _zero_tolerance(values)
    if sum(1 for v in values if v < 0) != 1 or any(abs(v) <= zero for v in values):
        raise _not_saddle(values)


def _log_det(values: list[mpmath.mpf]) -> mpmath.mpf:
    return mpmath.fsum(mpmath.log(abs(v)) for v in values)


# ---------------------------------------------------------------------------------------------
# mpmath path (exact inputs, and the fallback)


def _eigsy(a: mpmath.matrix) -> tuple[list[mpmath.mpf], mpmath.matrix]:
    if a.rows == 1:
        return [a[0, 0]], mpmath.matrix([[1]])
    values, vectors = mpmath.eigsy(a)
    order = sorted(range(a.rows), key=lambda i: values[i])
    sorted_vectors = mpmath.matrix(a.rows, a.rows)
    for new, old in enumerate(order):
        for r in range(a.rows):
            sorted_vectors[r, new] = vectors[r, old]
    return [values[i] for i in order], sorted_vectors


def _is_diagonal(a: mpmath.matrix) -> bool:
    return all(a[i, j] == 0 for i in range(a.rows) for j in range(a.cols) if i != j)


def eigen_data(hess_min: mpmath.matrix, hess_saddle: mpmath.matrix) -> EigenData:
    """Check the Hessians' roles and return their eigen-data (mpmath matrices at the working
    precision: closed forms for diagonal and 2×2, ``mpmath.eigsy`` otherwise).

    Raises
    ------
    HessianError
        ``hess_min`` not positive definite; ``hess_saddle`` without exactly one negative
        eigenvalue, or with an eigenvalue that is zero to half the working precision.
    """
    n = hess_min.rows
    if _is_diagonal(hess_min) and _is_diagonal(hess_saddle):
        return _diagonal([hess_min[i, i] for i in range(n)], [hess_saddle[i, i] for i in range(n)])
    if n == 2:
        return _two_by_two(
            (hess_min[0, 0], hess_min[0, 1], hess_min[1, 1]),
            (hess_saddle[0, 0], hess_saddle[0, 1], hess_saddle[1, 1]),
        )
    min_values, _ = _eigsy(hess_min)
    _check_min(min_values)
    saddle_values, saddle_vectors = _eigsy(hess_saddle)
    _check_saddle(saddle_values)
    e = mpmath.matrix([saddle_vectors[r, 0] for r in range(n)])
    # fix the sign: largest component positive (the direction is defined up to sign)
    pivot = max(range(n), key=lambda r: abs(e[r]))
    if e[pivot] < 0:
        e = -e
    ha_e = hess_min * e
    h_ae = sum(e[r] * ha_e[r] for r in range(n))
    residual = mpmath.norm(ha_e - h_ae * e) / mpmath.norm(ha_e)
    return EigenData(
        min_eigenvalues=tuple(min_values),
        saddle_eigenvalues=tuple(saddle_values),
        escape_direction=tuple(e[r] for r in range(n)),
        curvature_min_along_e=h_ae,
        curvature_saddle_e=-saddle_values[0],
        misalignment=residual,
        log_det_min=_log_det(min_values),
        log_abs_det_saddle=_log_det(saddle_values),
        method=f"mpmath.eigsy at {mpmath.mp.dps} digits",
    )


_ONE = (mpmath.mpf(1),)
_ZERO = mpmath.mpf(0)


def one_dimensional(a: float, b: float) -> EigenData:
    """1-D: the Hessians are the curvatures (a 1×1 matrix has no zero tolerance to test)."""
    if not a > 0:
        raise _not_minimum([a])
    if not b < 0:
        raise _not_saddle([b])
    h_a, h_b = mpmath.mpf(a), mpmath.mpf(b)
    return EigenData(
        min_eigenvalues=(h_a,),
        saddle_eigenvalues=(h_b,),
        escape_direction=_ONE,
        curvature_min_along_e=h_a,
        curvature_saddle_e=-h_b,
        misalignment=_ZERO,
        method="1-D (exact)",
    )


def _diagonal(a: list[Any], b: list[Any]) -> EigenData:
    """Diagonal Hessians: the eigenvalues are the entries, e a coordinate vector."""
    a = [mpmath.mpf(x) for x in a]
    b = [mpmath.mpf(x) for x in b]
    min_values = sorted(a)
    _check_min(min_values)
    saddle_values = sorted(b)
    _check_saddle(saddle_values)
    k = min(range(len(b)), key=lambda i: b[i])
    e = tuple(mpmath.mpf(1 if i == k else 0) for i in range(len(b)))
    return EigenData(
        min_eigenvalues=tuple(min_values),
        saddle_eigenvalues=tuple(saddle_values),
        escape_direction=e,
        curvature_min_along_e=a[k],
        curvature_saddle_e=-b[k],
        misalignment=mpmath.mpf(0),
        log_det_min=_log_det(a) if len(a) > 2 else None,  # the 1-D/2-D formulas take λ
        log_abs_det_saddle=_log_det(b) if len(b) > 2 else None,
        method="diagonal (exact)",
    )


def _sym2(p: Any, q: Any, r: Any, prec: int, vector: bool = True) -> tuple[Any, Any, Any, Any]:
    """Raw libmp: eigenvalues (low, high) of [[p, q], [q, r]], det, and an (unnormalized)
    eigenvector (x, y) of low (None without ``vector``).

    The larger-magnitude eigenvalue from the quadratic formula, the other as det/that (no
    cancellation); det = pr − q² from exact products, rounded once."""
    det = mpf_sub(mpf_mul(p, r), mpf_mul(q, q), prec + 20)
    half_trace = mpf_shift(mpf_add(p, r, prec + 10), -1)
    half_gap = mpf_shift(mpf_sub(p, r, prec + 10), -1)
    root = mpf_sqrt(mpf_add(mpf_mul(half_gap, half_gap), mpf_mul(q, q), prec + 10), prec + 10)
    if mpf_sign(half_trace) >= 0:
        high = mpf_add(half_trace, root, prec + 10)
        low = mpf_div(det, high, prec + 10) if high != fzero else mpf_sub(half_trace, root, prec)
    else:
        low = mpf_sub(half_trace, root, prec + 10)
        high = mpf_div(det, low, prec + 10) if low != fzero else mpf_add(half_trace, root, prec)
    if not vector:
        return low, high, det, None
    # eigenvector of low: rows of (A − low I) are orthogonal to it; use the larger row
    u = (q, mpf_sub(low, p, prec + 10))
    v = (mpf_sub(low, r, prec + 10), q)
    size_u = mpf_add(mpf_abs(u[0]), mpf_abs(u[1]), 20)
    size_v = mpf_add(mpf_abs(v[0]), mpf_abs(v[1]), 20)
    x, y = u if mpf_cmp(size_u, size_v) >= 0 else v
    if x == fzero and y == fzero:  # A = low·I
        x, y = fone, fzero
    return low, high, det, (x, y)


def _mean(x: float, y: float) -> Any:
    """(x + y)/2 of two floats, exact (raw libmp)."""
    if x == y:
        return from_float(x)
    return mpf_shift(mpf_add(from_float(x), from_float(y)), -1)


def _two_by_two(a: tuple[Any, Any, Any], b: tuple[Any, Any, Any]) -> EigenData:
    """2×2 Hessians (upper triangles p, q, r as numbers) in closed form."""
    return _two_by_two_raw(
        (mpmath.mpf(a[0])._mpf_, mpmath.mpf(a[1])._mpf_, mpmath.mpf(a[2])._mpf_),
        (mpmath.mpf(b[0])._mpf_, mpmath.mpf(b[1])._mpf_, mpmath.mpf(b[2])._mpf_),
    )


def _two_by_two_raw(
    a_raw: tuple[Any, Any, Any], b_raw: tuple[Any, Any, Any], exact_misalignment: bool = True
) -> EigenData:
    """2×2 Hessians in closed form at the working precision (raw libmp arithmetic).

    With ``exact_misalignment=False`` (float input, as on the n-D float path) the misalignment
    diagnostic is computed in float64 from the refined e."""
    prec = mpmath.mp.prec
    make = mpmath.mp.make_mpf
    a_low, a_high, _, _ = _sym2(a_raw[0], a_raw[1], a_raw[2], prec, vector=False)
    min_values = [make(mpf_pos(a_low, prec)), make(mpf_pos(a_high, prec))]
    _check_min(min_values)
    b_low, b_high, _, (x, y) = _sym2(b_raw[0], b_raw[1], b_raw[2], prec)
    saddle_values = [make(mpf_pos(b_low, prec)), make(mpf_pos(b_high, prec))]
    _check_saddle(saddle_values)
    w = prec + 10
    norm2 = mpf_add(mpf_mul(x, x), mpf_mul(y, y), w)
    hx = mpf_add(mpf_mul(a_raw[0], x), mpf_mul(a_raw[1], y), w)
    hy = mpf_add(mpf_mul(a_raw[1], x), mpf_mul(a_raw[2], y), w)
    h_ae = mpf_div(mpf_add(mpf_mul(x, hx), mpf_mul(y, hy), w), norm2, w)  # eᵀH_a e, e = v/|v|
    misalignment = None
    if not exact_misalignment:
        fx, fy, fhx, fhy, f_ae = (to_float(v) for v in (x, y, hx, hy, h_ae))
        residual = math.hypot(fhx - f_ae * fx, fhy - f_ae * fy) / math.hypot(fhx, fhy)
        misalignment = make(from_float(residual)) if math.isfinite(residual) else None
    if misalignment is None:  # ‖H_a v − H_ae v‖/‖H_a v‖ does not depend on the scale of v
        rx = mpf_sub(hx, mpf_mul(h_ae, x), w)
        ry = mpf_sub(hy, mpf_mul(h_ae, y), w)
        ratio = mpf_div(
            mpf_add(mpf_mul(rx, rx), mpf_mul(ry, ry), w),
            mpf_add(mpf_mul(hx, hx), mpf_mul(hy, hy), w),
            w,
        )
        misalignment = make(mpf_sqrt(ratio, prec))
    norm = mpf_sqrt(norm2, w)
    x, y = mpf_div(x, norm, w), mpf_div(y, norm, w)
    if mpf_sign(x) < 0 if mpf_cmp(mpf_abs(x), mpf_abs(y)) >= 0 else mpf_sign(y) < 0:
        x, y = mpf_neg(x), mpf_neg(y)
    return EigenData(
        min_eigenvalues=tuple(min_values),
        saddle_eigenvalues=tuple(saddle_values),
        escape_direction=(make(mpf_pos(x, prec)), make(mpf_pos(y, prec))),
        curvature_min_along_e=make(mpf_pos(h_ae, prec)),
        curvature_saddle_e=make(mpf_neg(b_low, prec)),
        misalignment=misalignment,
        method="2×2 closed form at the working precision",
    )


# ---------------------------------------------------------------------------------------------
# float path


def _decompose(job: tuple[np.ndarray, bool]) -> tuple[np.ndarray, np.ndarray | None]:
    """float64 eigenvalues (ascending) of (H + Hᵀ)/2, with its eigenvectors when asked."""
    h, vectors = job
    h_sym = (h + h.T) / 2
    return np.linalg.eigh(h_sym) if vectors else (np.linalg.eigvalsh(h_sym), None)


def eigen_data_float(a: np.ndarray, b: np.ndarray, need_det: bool = True) -> EigenData | None:
    """Eigen-data of float Hessians at the working precision (see the module docstring).

    Returns None when the float path cannot decide (an eigenvalue too close to zero) or
    cannot meet the working precision (series bound): the caller then uses `eigen_data` on
    mpmath matrices.
    """
    n = a.shape[0]
    if n == 1:
        return one_dimensional(float(a[0, 0]), float(b[0, 0]))
    if n == 2:
        return two_by_two_floats(a.ravel().tolist(), b.ravel().tolist())
    diagonal = all(np.count_nonzero(h) == np.count_nonzero(h.diagonal()) for h in (a, b))
    if diagonal:
        return _diagonal([float(x) for x in np.diag(a)], [float(x) for x in np.diag(b)])
    from ._blas_threads import in_pair
    from ._exact import refine

    # without the determinants (SGD noise) H_a's eigenvectors are not needed: its eigenvalues
    # set the check, the report and the escape pair's tolerance (eigvalsh: ~1/4 of eigh's time);
    # for large n the two run side by side, one BLAS thread each (see `in_pair`)
    (la, qa), (lb, qb) = in_pair(_decompose, (a, need_det), (b, True), n)
    assert qb is not None
    eps = np.finfo(np.float64).eps
    dps = mpmath.mp.dps
    for values, bad in ((la, _not_minimum), (lb, _not_saddle)):
        scale = float(np.abs(values).max())
        uncertain = 64 * n * eps * scale
        zero = scale * 10.0 ** (-(dps // 2))
        smallest = float(np.abs(values).min())
        if smallest <= uncertain:
            return None  # signs or zero-ness not decided in float64
        if smallest <= zero - uncertain:
            raise bad(values)
        if smallest <= zero + uncertain:
            return None
    if la[0] <= 0:
        raise _not_minimum(la)
    if int((lb < 0).sum()) != 1:
        raise _not_saddle(lb)
    return refine(a, la, qa, b, lb, qb, need_det)
