"""Chebyshev–Lobatto panels at arbitrary precision: values → coefficients, cumulative integrals.

On each panel [a, b] a function is sampled at the N + 1 Chebyshev–Lobatto points; the matrices
here give its Chebyshev coefficients (for the resolution test: the last coefficients must be
negligible) and its indefinite integral from a at the same points (spectral integration, the
cumulative version of Clenshaw–Curtis). Built once per (N, precision) in mpmath and cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import mpmath

__all__ = ["ChebRule", "cheb_rule"]


@dataclass(frozen=True)
class ChebRule:
    """Chebyshev–Lobatto rule of degree N on [−1, 1], nodes ascending."""

    n: int
    nodes: tuple[mpmath.mpf, ...]
    to_coefficients: tuple[tuple[mpmath.mpf, ...], ...]  # (N+1) × (N+1)
    cumulative: tuple[tuple[mpmath.mpf, ...], ...]  # (N+1) × (N+1): ∫_{−1}^{x_i} f
    weights: tuple[mpmath.mpf, ...]  # last row of ``cumulative``: ∫_{−1}^{1} f

    def coefficients(self, values: list[mpmath.mpf]) -> list[mpmath.mpf]:
        return [mpmath.fdot(row, values) for row in self.to_coefficients]

    def integrate_cumulative(self, values: list[mpmath.mpf]) -> list[mpmath.mpf]:
        return [mpmath.fdot(row, values) for row in self.cumulative]

    def integrate(self, values: list[mpmath.mpf]) -> mpmath.mpf:
        return mpmath.fdot(self.weights, values)


@cache
def _rule(n: int, prec: int) -> ChebRule:
    with mpmath.workprec(prec + 20):
        theta = [mpmath.pi * (n - j) / n for j in range(n + 1)]  # ascending nodes
        nodes = [mpmath.cos(t) for t in theta]
        # values → coefficients a_k of f = Σ_k a_k T_k (discrete cosine transform, type I)
        to_coeff = []
        for k in range(n + 1):
            row = []
            for j in range(n + 1):
                weight = mpmath.mpf(1) if 0 < j < n else mpmath.mpf(1) / 2
                row.append(2 * weight * mpmath.cos(k * theta[j]) / n)
            if k in (0, n):
                row = [x / 2 for x in row]
            to_coeff.append(row)
        # coefficients of F = ∫_{-1}^x f: ∫T_0 = T_1, ∫T_1 = T_2/4,
        # ∫T_k = T_{k+1}/(2(k+1)) − T_{k−1}/(2(k−1))
        integral_of = []  # per k: coefficients (length n+2) of ∫T_k, constant fixed below
        for k in range(n + 1):
            vec = [mpmath.mpf(0)] * (n + 2)
            if k == 0:
                vec[1] = mpmath.mpf(1)
            elif k == 1:
                vec[2] = mpmath.mpf(1) / 4
            else:
                vec[k + 1] += mpmath.mpf(1) / (2 * (k + 1))
                vec[k - 1] -= mpmath.mpf(1) / (2 * (k - 1))
            # F(−1) = 0: subtract the value at −1 (T_m(−1) = (−1)^m)
            at_minus_one = sum(vec[m] * (-1) ** m for m in range(n + 2))
            vec[0] -= at_minus_one
            integral_of.append(vec)
        chebyshev_at_nodes = [
            [mpmath.cos(m * theta[i]) for m in range(n + 2)] for i in range(n + 1)
        ]
        # cumulative[i][j] = Σ_k (Σ_m T_m(x_i) integral_of[k][m]) to_coeff[k][j]
        integral_at_nodes = [
            [mpmath.fdot(chebyshev_at_nodes[i], integral_of[k]) for k in range(n + 1)]
            for i in range(n + 1)
        ]
        cumulative = [
            [
                mpmath.fdot(
                    [integral_at_nodes[i][k] for k in range(n + 1)],
                    [to_coeff[k][j] for k in range(n + 1)],
                )
                for j in range(n + 1)
            ]
            for i in range(n + 1)
        ]
    with mpmath.workprec(prec):
        return ChebRule(
            n=n,
            nodes=tuple(+x for x in nodes),
            to_coefficients=tuple(tuple(+x for x in row) for row in to_coeff),
            cumulative=tuple(tuple(+x for x in row) for row in cumulative),
            weights=tuple(+x for x in cumulative[-1]),
        )


def cheb_rule(n: int = 32) -> ChebRule:
    """The degree-``n`` rule at the current mpmath precision (cached)."""
    return _rule(n, mpmath.mp.prec)
