"""Eigen-data of the minimum's and the saddle's Hessians at working precision.

``H_b`` must have exactly one negative eigenvalue; its eigenvector is the escape direction e.
The curvature of ``H_a`` along e is the Rayleigh quotient ``H_ae = eᵀ H_a e``. When e is not an
eigenvector of H_a, `EigenData.misalignment` = ‖H_a e − H_ae e‖ / ‖H_a e‖ says by how much.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath

from flatminima.errors import HessianError

__all__ = ["EigenData", "eigen_data"]


@dataclass(frozen=True)
class EigenData:
    """Spectra and the escape direction, at the working precision of the call."""

    min_eigenvalues: tuple[mpmath.mpf, ...]  # ascending
    saddle_eigenvalues: tuple[mpmath.mpf, ...]  # ascending; the first is negative
    escape_direction: tuple[mpmath.mpf, ...]  # unit eigenvector of the negative eigenvalue
    curvature_min_along_e: mpmath.mpf  # H_ae = eᵀ H_a e
    curvature_saddle_e: mpmath.mpf  # |H_be| > 0
    misalignment: mpmath.mpf  # ‖H_a e − H_ae e‖ / ‖H_a e‖; 0 when e is an eigenvector of H_a

    @property
    def dim(self) -> int:
        return len(self.min_eigenvalues)

    def to_dict(self) -> dict[str, object]:
        def s(x: mpmath.mpf) -> str:
            return mpmath.nstr(x, 17)

        return {
            "min_eigenvalues": [s(x) for x in self.min_eigenvalues],
            "saddle_eigenvalues": [s(x) for x in self.saddle_eigenvalues],
            "escape_direction": [s(x) for x in self.escape_direction],
            "curvature_min_along_e": s(self.curvature_min_along_e),
            "curvature_saddle_e": s(self.curvature_saddle_e),
            "misalignment": s(self.misalignment),
        }


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


def _zero_tolerance(values: list[mpmath.mpf]) -> mpmath.mpf:
    scale = max(abs(v) for v in values)
    return scale * mpmath.mpf(10) ** (-(mpmath.mp.dps // 2))


def _show(values: list[mpmath.mpf]) -> str:
    return "[" + ", ".join(mpmath.nstr(v, 6) for v in values) + "]"


def eigen_data(hess_min: mpmath.matrix, hess_saddle: mpmath.matrix) -> EigenData:
    """Check the Hessians' roles and return their eigen-data.

    Raises
    ------
    HessianError
        ``hess_min`` not positive definite; ``hess_saddle`` without exactly one negative
        eigenvalue, or with an eigenvalue that is zero to half the working precision.
    """
    min_values, _ = _eigsy(hess_min)
    if min_values[0] <= _zero_tolerance(min_values):
        raise HessianError(
            "hess_min",
            "a positive definite matrix (a minimum's Hessian)",
            f"eigenvalues {_show(min_values)}",
        )
    saddle_values, saddle_vectors = _eigsy(hess_saddle)
    negative = [v for v in saddle_values if v < 0]
    zero = _zero_tolerance(saddle_values)
    if len(negative) != 1 or any(abs(v) <= zero for v in saddle_values):
        raise HessianError(
            "hess_saddle",
            "a matrix with exactly one negative eigenvalue and no zero one (an index-1 saddle)",
            f"eigenvalues {_show(saddle_values)}",
        )
    n = hess_min.rows
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
    )
