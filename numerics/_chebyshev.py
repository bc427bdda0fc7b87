"""Chebyshev–Lobatto panels at arbitrary precision: values → coefficients, cumulative integrals.

On each panel [a, b] a function is sampled at the N + 1 Chebyshev–Lobatto points; the matrices
here give its Chebyshev coefficients (for the resolution test: the last coefficients must be
negligible) and its indefinite integral from a at the same points (spectral integration, the
cumulative version of Clenshaw–Curtis). Built once per (N, precision) in O(N²) mpmath
operations and cached in memory and on disk (`flatminima.theory._cache`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import mpmath
import numpy as np
from mpmath.libmp import from_int, from_man_exp, mpf_div

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
        return _fixed_matvec(self._coefficient_integers, values)

    def integrate_cumulative(self, values: list[mpmath.mpf]) -> list[mpmath.mpf]:
        return _fixed_matvec(self._cumulative_integers, values)

    @cached_property
    def _coefficient_integers(self) -> tuple[Any, int]:
        return _integer_matrix(self.to_coefficients)

    @cached_property
    def _cumulative_integers(self) -> tuple[Any, int]:
        return _integer_matrix(self.cumulative)

    def integrate(self, values: list[mpmath.mpf]) -> mpmath.mpf:
        return mpmath.fdot(self.weights, values)

    def tail(self, values: list[mpmath.mpf]) -> mpmath.mpf:
        """max(|a_N|, |a_{N−1}|), the last two Chebyshev coefficients (the resolution test):
        two rows of the coefficient matrix, O(N) instead of the whole O(N²) transform."""
        integers, shift = self._coefficient_integers
        last = _fixed_matvec((integers[-2:], shift), values)
        return max(abs(last[0]), abs(last[1]))


#: Guard bits of the fixed-point matrix-vector products (beyond the working precision and log₂ N).
_GUARD = 24


def _integer_matrix(rows: tuple[tuple[mpmath.mpf, ...], ...]) -> tuple[Any, int]:
    """The matrix as Python integers M·2^s (numpy object array) and s = prec + guard + log₂ N:
    each entry exact to 2^−s, absolute."""
    shift = mpmath.mp.prec + _GUARD + len(rows).bit_length()
    out = np.empty((len(rows), len(rows[0])), dtype=object)
    for i, row in enumerate(rows):
        out[i] = [_to_fixed(x, shift) for x in row]
    return out, shift


def _to_fixed(x: mpmath.mpf, shift: int) -> int:
    sign, man, exp, _ = x._mpf_
    if not man:
        return 0
    e = exp + shift
    value = man << e if e >= 0 else man >> -e
    return -value if sign else value


def _fixed_matvec(matrix: tuple[Any, int], values: list[mpmath.mpf]) -> list[mpmath.mpf]:
    """M v in Python integers: v in fixed point at the working precision + guard bits relative
    to its largest entry (absolute error ≤ (N+1)·2^−(prec+guard)·max|v|·max|M|, at or below
    what ``mpmath.fdot`` with rounded matrix entries commits), then rounded once per entry."""
    integers, shift = matrix
    # 2^top > max|v| (from the raw (sign, man, exp, bc) tuples: no mpf arithmetic)
    top = max((v._mpf_[2] + v._mpf_[3] for v in values if v._mpf_[1]), default=None)
    if top is None:
        return [mpmath.mpf(0)] * integers.shape[0]
    scale = mpmath.mp.prec + _GUARD - top
    vector = np.array([_to_fixed(v, scale) for v in values], dtype=object)
    prec, make = mpmath.mp.prec, mpmath.mp.make_mpf
    exponent = -(shift + scale)
    return [make(from_man_exp(int(y), exponent, prec, "n")) for y in integers.dot(vector)]


def _rule_cubic(n: int, prec: int) -> ChebRule:
    """The direct construction (O(N³) products), kept as the reference the tests compare with."""
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


def _rule_fast(n: int, prec: int) -> ChebRule:
    """The same rule in O(N²) operations.

    With x_i = cos φ_i, θ_j the node angles (multiples of π/N) and I_k = ∫_{−1}^x T_k,
    ``cumulative[i][j] = (2w_j/N) Σ_k h_k I_k(x_i) cos kθ_j`` (h, w: ½ at the ends). For k ≥ 2,
    I_k(cos φ) = cos((k+1)φ)/(2(k+1)) − cos((k−1)φ)/(2(k−1)) − (−1)^k/(k²−1), and products of
    cosines turn the sum over k into the four sums P^±(ψ) = Σ h_k cos kψ/(k±1),
    Q^±(ψ) = Σ h_k sin kψ/(k±1) at ψ = φ_i ∓ θ_j, which take only 2N values: O(N) each.
    Everything runs in Python integers in fixed point (scale 2^S, S = prec + 40 + 2 log₂ N
    guard bits): the cosines and sines of the 2N angles are computed once in mpmath; each
    entry is rounded once to ``prec`` bits.
    """
    shift = prec + 40 + 2 * n.bit_length()
    cos_t, sin_t = _angle_tables(n, shift)
    end = [2 if k in (0, n) else 1 for k in range(n + 1)]  # h_k = 1/end_k (½ at k = 0, n)
    angle = [n - j for j in range(n + 1)]  # node j (ascending) is at angle π(n − j)/n
    numerators = [1 if j in (0, n) else 2 for j in range(n + 1)]  # 2w_j: the factor 2w_j/N
    divisor = from_int(n)

    def value(fixed: int, j: int) -> mpmath.mpf:  # fixed·2w_j/(N·2^S), rounded once
        return make(mpf_div(from_man_exp(fixed * numerators[j], -shift), divisor, prec, "n"))

    make = mpmath.mp.make_mpf
    cumulative = [
        [value(total, j) for j, total in enumerate(row)]
        for row in _cumulative_fixed(n, shift, cos_t, sin_t, end, angle)
    ]
    big = 2 * n
    to_coeff = [
        [value(cos_t[(k * angle[j]) % big] // end[k], j) for j in range(n + 1)]
        for k in range(n + 1)
    ]
    nodes = [make(from_man_exp(cos_t[angle[j]], -shift, prec, "n")) for j in range(n + 1)]
    return ChebRule(
        n=n,
        nodes=tuple(nodes),
        to_coefficients=tuple(tuple(row) for row in to_coeff),
        cumulative=tuple(tuple(row) for row in cumulative),
        weights=tuple(cumulative[-1]),
    )


def _angle_tables(n: int, shift: int) -> tuple[list[int], list[int]]:
    """cos(πm/N) and sin(πm/N), m = 0 … 2N − 1, in fixed point at scale 2^shift."""
    with mpmath.workprec(shift + 10):
        step = mpmath.pi / n
        cos_t = [_to_fixed(mpmath.cos(step * m), shift) for m in range(2 * n)]
        sin_t = [_to_fixed(mpmath.sin(step * m), shift) for m in range(2 * n)]
    return cos_t, sin_t


def _cumulative_fixed(
    n: int, shift: int, cos_t: list[int], sin_t: list[int], end: list[int], angle: list[int]
) -> list[list[int]]:
    """Σ_k h_k I_k(x_i) cos kθ_j in fixed point (scale 2^shift), by the trig sums P^±, Q^±."""
    big = 2 * n
    one = 1 << shift

    def fraction(numerator: int, denominator: int) -> int:  # round(numerator/denominator · 2^S)
        return (2 * numerator * one + denominator) // (2 * denominator)

    ks = range(2, n + 1)
    plus = [fraction(1, (k + 1) * end[k]) for k in ks]
    minus = [fraction(1, (k - 1) * end[k]) for k in ks]
    p_plus, p_minus, q_plus, q_minus = [], [], [], []
    for m in range(big):
        cosines = [cos_t[(k * m) % big] for k in ks]
        sines = [sin_t[(k * m) % big] for k in ks]
        p_plus.append(sum(map(operator.mul, plus, cosines)) >> shift)
        p_minus.append(sum(map(operator.mul, minus, cosines)) >> shift)
        q_plus.append(sum(map(operator.mul, plus, sines)) >> shift)
        q_minus.append(sum(map(operator.mul, minus, sines)) >> shift)
    # h_k I_k(−1) terms: A_0(π) = −1, A_1(π) = 1/4, A_k(π) = (−1)^k/(k²−1)
    at_pi = [fraction(-1, 2), fraction(1, 4)] + [
        fraction((-1) ** k, (k * k - 1) * end[k]) for k in ks
    ]
    constant = [
        sum(w * cos_t[(k * angle[j]) % big] for k, w in enumerate(at_pi)) >> shift
        for j in range(n + 1)
    ]
    rows = []
    for i in range(n + 1):
        a = angle[i]
        cos_a, sin_a = cos_t[a], sin_t[a]
        head = cos_a >> 1
        cos_2a = cos_t[(2 * a) % big] >> 2
        row = []
        for j in range(n + 1):
            b = angle[j]
            lo, hi = (a - b) % big, (a + b) % big
            main = (
                cos_a * (p_plus[lo] + p_plus[hi] - p_minus[lo] - p_minus[hi])
                - sin_a * (q_plus[lo] + q_plus[hi] + q_minus[lo] + q_minus[hi])
            ) >> (shift + 2)
            row.append(head + ((cos_2a * cos_t[b]) >> shift) + main - constant[j])
        rows.append(row)
    return rows


@cache
def _source_hash() -> str:
    """This module's source, hashed: part of the disk-cache key (the rules depend on it)."""
    import hashlib
    from pathlib import Path

    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:24]


@cache
def _rule(n: int, prec: int) -> ChebRule:
    from flatminima.theory._cache import cached

    return cached("cheb_rule", (n, prec, _source_hash()), lambda: _rule_fast(n, prec))


def cheb_rule(n: int = 32) -> ChebRule:
    """The degree-``n`` rule at the current mpmath precision (cached in memory and on disk)."""
    return _rule(n, mpmath.mp.prec)
