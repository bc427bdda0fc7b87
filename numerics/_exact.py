"""Exact matrix products of float64 matrices by splitting into integer limbs (Ozaki scheme).

A float64 array X with max |X| ≤ 2^e is written exactly as Σ_k D_k 2^(e − β(k+1)) with
integer-valued float arrays |D_k| ≤ 2^β (``np.rint`` of exact power-of-two scalings). With
β = ⌊(53 − ⌈log₂ n⌉)/2⌋ a float64 GEMM of two limbs sums n products of at most 2β bits and
is exact; the limb products are accumulated in int64 by weight. This is what lets
`flatminima.numerics._eigen` refine a float64 eigendecomposition of an n×n Hessian to 30+
digits with O(n³) work in BLAS instead of O(n³) multiprecision operations.
"""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np
from mpmath.libmp import (
    from_float,
    from_man_exp,
    fzero,
    mpf_abs,
    mpf_add,
    mpf_cmp,
    mpf_div,
    mpf_neg,
    mpf_sign,
    to_float,
)

from ._blas_threads import in_pair
from ._eigen import EigenData

__all__ = ["beta_for", "refine", "split"]


#: Rows per block of the element-wise passes that run block by block (`split`, `_normalize`,
#: `_compensated_sum`): a block of each array in play stays in the cache across the pass's
#: steps (64 rows of n = 1000: 0.5 MB per array).
_ROWS = 64


def beta_for(n: int) -> int:
    """Bits per limb so that a sum of n limb products is exact in float64."""
    return (53 - max(1, math.ceil(math.log2(max(n, 2))))) // 2


def exponent(x: np.ndarray) -> int:
    """e with max |x| < 2^e (0 for an all-zero array)."""
    m = float(np.abs(x).max()) if x.size else 0.0
    return math.frexp(m)[1] if m > 0 else 0


def split(x: np.ndarray, exp: int, beta: int, limbs: int) -> list[np.ndarray]:
    """Limbs D_0 … D_{L−1} with x ≈ Σ D_k 2^(exp − β(k+1)), exact when the remainder is 0
    (the loop stops there); later limbs are dropped (truncation below 2^(exp − β·limbs)).

    A matrix is split block of rows by block of rows (the steps of a block stay in the cache;
    an entry's limbs depend on that entry alone, so the limbs are the same)."""
    if x.ndim != 2 or x.shape[0] < 2 * _ROWS:
        return _split(x, exp, beta, limbs)
    out: list[np.ndarray] = []
    for i in range(0, x.shape[0], _ROWS):
        for k, digit in enumerate(_split(x[i : i + _ROWS], exp, beta, limbs)):
            if k == len(out):
                out.append(np.zeros_like(x))  # rows of blocks that need fewer limbs stay 0
            out[k][i : i + _ROWS] = digit
    return out


def _split(x: np.ndarray, exp: int, beta: int, limbs: int) -> list[np.ndarray]:
    out = []
    rest = np.ldexp(x, -exp)
    for _ in range(limbs):
        rest = np.ldexp(rest, beta)
        digit = np.rint(rest)
        rest = rest - digit
        out.append(digit)
        if not rest.any():
            break
    return out


#: Integer-valued float64 sums are exact while every partial sum stays below this.
_EXACT = 2.0**53


def _accumulate(
    terms: list[tuple[list[np.ndarray], list[np.ndarray], Any, int, int]], cutoff: int
) -> dict[int, np.ndarray]:
    """int64 sums S_k = Σ_terms sign·Σ_{i+j=k} op(X_i, Y_j) for k ≤ cutoff (each op exact).

    Each term is (xs, ys, op, inner, sign): ``inner`` is the number of products op sums per
    entry (n for a matrix product, 1 for an element-wise one). The products of one level (of
    every term) are added in float64 while a bound on the partial sum (Σ inner·max|X_i|·
    max|Y_j|) stays below 2^53, so the sum is exact; the level is converted to int64 once
    (more often only if the bound says so). Matrix products come from `_level_parts`: a
    cross pair X_iY_j + X_jY_i by one product (Karatsuba), the same integers."""
    sizes = [
        ([float(abs(x).max()) for x in xs], [float(abs(y).max()) for y in ys])
        for xs, ys, _, _, _ in terms
    ]
    caches: list[dict[int, np.ndarray]] = [{} for _ in terms]
    sums: dict[int, np.ndarray] = {}

    def flush(k: int, total: np.ndarray) -> None:
        part = total.astype(np.int64)
        sums[k] = sums[k] + part if k in sums else part

    top = max(len(xs) + len(ys) - 2 for xs, ys, _, _, _ in terms)
    for k in range(min(cutoff, top) + 1):
        total: np.ndarray | None = None
        bound = 0.0
        for term, size_xy, cache in zip(terms, sizes, caches, strict=True):
            sign = term[4]
            for size, make in _level_parts(term, size_xy, k, cutoff, cache):
                if total is not None and bound + size >= _EXACT:
                    flush(k, total)
                    total, bound = None, 0.0
                p, fresh = make()
                if total is None:
                    total = (p if sign > 0 else np.negative(p, out=p)) if fresh else sign * p
                else:
                    (np.add if sign > 0 else np.subtract)(total, p, out=total)
                bound += size
        if total is not None:
            flush(k, total)
    return sums


def _level_parts(
    term: tuple[list[np.ndarray], list[np.ndarray], Any, int, int],
    sizes: tuple[list[float], list[float]],
    k: int,
    cutoff: int,
    cache: dict[int, np.ndarray],
) -> list[tuple[float, Any]]:
    """The products X_iY_j (i + j = k) of one term as (bound, maker); a maker returns the
    product and whether the caller may overwrite it.

    For a matrix product (``op is np.matmul``) a cross pair X_iY_j + X_jY_i (i < j, both
    squares D_i = X_iY_i and D_j at levels ≤ cutoff, so they are computed anyway and cached)
    is (X_i + X_j)(Y_i + Y_j) − D_i − D_j: 1 product instead of 2. Exact when the bound B =
    inner·(|X_i| + |X_j|)(|Y_i| + |Y_j|) < 2^53: every partial sum of that product is an
    integer of magnitude ≤ B, and so are D_i, D_j and the two differences (the exact value
    after the first is X_iY_j + X_jY_i + X_jY_j, bounded by three of B's four terms). Else the
    two products, as before: the integers, hence the results, are the same either way."""
    xs, ys, op, inner, _ = term
    size_x, size_y = sizes
    matmul = op is np.matmul

    def product(x: Any, y: np.ndarray) -> np.ndarray:
        return x @ y if matmul else op(x, y)  # `@`: a CSR limb times a dense one is dense

    def square(i: int) -> np.ndarray:
        if i not in cache:
            cache[i] = product(xs[i], ys[i])
        return cache[i]

    def pair(i: int, j: int) -> tuple[np.ndarray, bool]:
        p = product(xs[i] + xs[j], ys[i] + ys[j])
        p -= square(i)
        p -= square(j)
        return p, True

    def direct(i: int, j: int) -> tuple[np.ndarray, bool]:
        if matmul and i == j:
            return square(i), False
        return product(xs[i], ys[j]), True

    parts: list[tuple[float, Any]] = []
    done: set[int] = set()
    for i in range(max(0, k - len(ys) + 1), min(k, len(xs) - 1) + 1):
        j = k - i
        size = inner * size_x[i] * size_y[j]
        if i in done or size == 0:
            continue
        both = i < j < min(len(xs), len(ys)) and 2 * j <= cutoff
        both = both and isinstance(xs[i], np.ndarray) and isinstance(xs[j], np.ndarray)
        if matmul and both and inner * (size_x[i] + size_x[j]) * (size_y[i] + size_y[j]) < _EXACT:
            other = inner * size_x[j] * size_y[i]
            parts.append((size + other, lambda i=i, j=j: pair(i, j)))
            done.add(j)
            continue
        parts.append((size, lambda i=i, j=j: direct(i, j)))
    return parts


def _gram_residual(q: list[np.ndarray], n: int, beta: int) -> np.ndarray:
    """R = QᵀQ − I for Q = Σ_a q[a] 2^(−β(a+1)) (the limbs of `split`), rounded to float64.

    The level sums S_k = Σ_{a+b=k} Q_aᵀQ_b (weight 2^(−β(k+2))) are integer-valued float
    arrays, each exact: a square Q_aᵀQ_a by BLAS ``syrk`` (numpy's ``x.T @ x``, which calls
    syrk, mirrors the triangle, so the result is exactly symmetric, and releases the GIL:
    scipy's ``dsyrk`` wrapper holds it, and two Hessians refined side by side in two threads
    then ran their syrks one after the other), a cross pair
    Q_aᵀQ_b + Q_bᵀQ_a by one ``syrk`` of Q_a + Q_b minus the two squares (Karatsuba; every
    partial sum is an integer of magnitude ≤ n(max|Q_a| + max|Q_b|)², checked < 2^53; this
    can fail, e.g. for eigenvectors with entries near 1 when n·2^(2β) is close to 2^53: the
    pair is then two GEMMs). A single product is exact because |Q| ≤ 1 keeps the limbs
    ≤ 2^β and n·2^(2β) ≤ 2^53 by `beta_for` (integers up to 2^53 are floats, so equality is
    fine). The parts of one level are added in float while the sum of their
    bounds stays < 2^53 (exact), I is taken off level 0 (exact), and the level sums, whose
    leading terms cancel against I, are added by compensated summation (TwoSum, Sum2 of
    Ogita, Rump and Oishi 2005): error ≤ u|R| + γ²_m Σ|terms| with m terms of magnitude
    ≤ ~2^−β, far below u|R| (|R| ≈ 10⁻¹⁵ at n = 1000). One ``syrk`` costs 0.55–0.65 of a GEMM
    (measured at n = 1000, one and two BLAS threads)."""
    size = [float(np.abs(x).max()) for x in q]
    squares = [x.T @ x for x in q]  # numpy's syrk for AᵀA: exactly symmetric
    parts: list[tuple[int, np.ndarray, float]] = [
        (2 * a, squares[a], n * size[a] ** 2) for a in range(len(q))
    ]
    for a in range(len(q)):
        for b in range(a + 1, len(q)):
            if n * (size[a] + size[b]) ** 2 < _EXACT:
                both = q[a] + q[b]
                p = both.T @ both
                p -= squares[a]
                p -= squares[b]
                parts.append((a + b, p, 2 * n * size[a] * size[b]))
            else:
                p = q[a].T @ q[b]
                bound = n * size[a] * size[b]
                parts += [(a + b, p, bound), (a + b, np.ascontiguousarray(p.T), bound)]
    terms: list[tuple[int, np.ndarray]] = []
    bound_of: dict[int, float] = {}
    for k, p, bound in sorted(parts, key=lambda part: part[0]):
        if terms and terms[-1][0] == k and bound_of[len(terms) - 1] + bound < _EXACT:
            terms[-1][1].__iadd__(p)  # exact: integers below 2^53 (the squares are used up)
            bound_of[len(terms) - 1] += bound
        else:
            bound_of[len(terms)] = bound
            terms.append((k, p))
    total, k = terms[0][1], terms[0][0]
    total[np.diag_indices(n)] -= 2.0 ** (2 * beta)  # level 0 − I, exact
    rest = terms[1:]
    # while the running sum (integers at its level's grid) and the next level fit in 2^53,
    # add them exactly: the leading levels cancel against I, so the sum stays small
    while (
        rest
        and float(np.abs(total).max()) * 2.0 ** (beta * (rest[0][0] - k))
        + bound_of[len(terms) - len(rest)]
        < _EXACT
    ):
        total = np.ldexp(total, beta * (rest[0][0] - k), out=total)
        total += rest[0][1]
        k = rest[0][0]
        rest = rest[1:]
    total = np.ldexp(total, -beta * (k + 2), out=total)
    for level, t in rest:
        np.ldexp(t, -beta * (level + 2), out=t)
    _compensated_sum(total, [t for _, t in rest])
    return total


def _compensated_sum(total: np.ndarray, xs: list[np.ndarray]) -> None:
    """total ← fl(total + Σ xs + e), e the sum of the exact rounding errors of the running
    additions (Knuth's TwoSum; Sum2 of Ogita, Rump and Oishi 2005). ``xs`` are overwritten.

    Row block by row block: the seven steps of TwoSum then read and write a block that stays
    in the cache, not whole n × n arrays from memory (3.4× faster at n = 1000, measured, the
    same floats: every operation is element-wise). A Fortran-ordered matrix is taken by blocks
    of columns (its transpose's rows): blocks of rows would be strided, 4× slower."""
    if not xs:
        return
    if total.ndim == 2 and total.flags.f_contiguous and not total.flags.c_contiguous:
        total, xs = total.T, [x.T for x in xs]  # blocks along memory (syrk's output is F)
    rows = min(_ROWS, total.shape[0])
    s = np.empty((rows, *total.shape[1:]))
    z = np.empty_like(s)
    e = np.empty_like(s)
    for i in range(0, total.shape[0], rows):
        t = total[i : i + rows]
        m = t.shape[0]
        sb, zb, eb = s[:m], z[:m], e[:m]
        eb[...] = 0.0
        for x in xs:
            xb = x[i : i + rows]
            np.add(t, xb, out=sb)  # s = fl(t + x)
            np.subtract(sb, t, out=zb)  # z = s − t
            np.subtract(xb, zb, out=xb)  # x − z
            np.subtract(sb, zb, out=zb)  # s − z
            np.subtract(t, zb, out=t)  # t − (s − z)
            t += xb  # the exact error of s
            eb += t
            t[...] = sb
        t += eb


def _normalize(sums: dict[int, np.ndarray], beta: int) -> dict[int, np.ndarray]:
    """Carry into balanced digits in [−2^(β−1), 2^(β−1)) (a small value keeps small digits:
    no cancellation when the digits are summed in float); digits may move up to k < 0.

    The input arrays are never changed: a level is replaced by a new array the first time
    it changes, which later carries then update in place. Matrices are carried block of rows
    by block of rows (a carry stays within its entry, so the digits are the same)."""
    first = next(iter(sums.values()), None)
    if first is None or first.ndim != 2 or first.shape[0] < 2 * _ROWS:
        return _normalize_block(sums, beta)
    out: dict[int, np.ndarray] = {}
    for i in range(0, first.shape[0], _ROWS):
        block = _normalize_block({k: v[i : i + _ROWS] for k, v in sums.items()}, beta)
        for k, digit in block.items():
            if k not in out:
                out[k] = np.zeros_like(first)  # rows of blocks without this level stay 0
            out[k][i : i + _ROWS] = digit
    return out


def _normalize_block(sums: dict[int, np.ndarray], beta: int) -> dict[int, np.ndarray]:
    if not sums:
        return {}
    digits = dict(sums)
    owned: set[int] = set()
    half = np.int64(1) << (beta - 1)
    mask = (np.int64(1) << beta) - 1
    k = max(digits)
    while True:
        if k in digits:
            shifted = digits[k] + half
            carry = shifted >> beta
            if carry.any():
                # (d + h) = carry·2^β + ((d + h) & mask): the new digit is that remainder − h
                np.bitwise_and(shifted, mask, out=shifted)
                np.subtract(shifted, half, out=shifted)
                digits[k] = shifted
                owned.add(k)
                if k - 1 not in digits:
                    digits[k - 1] = carry
                    owned.add(k - 1)
                elif k - 1 in owned:
                    np.add(digits[k - 1], carry, out=digits[k - 1])
                else:
                    digits[k - 1] = digits[k - 1] + carry
                    owned.add(k - 1)
        if k <= min(digits):
            break
        k -= 1
    return {k: v for k, v in digits.items() if v.any()}


def _to_float(digits: dict[int, np.ndarray], base: int, beta: int) -> np.ndarray:
    """Σ_k digits[k] 2^(base − βk), rounded to float64 (smallest digits first)."""
    out: np.ndarray | None = None
    for k in sorted(digits, reverse=True):
        term = np.ldexp(digits[k].astype(np.float64), base - beta * k)
        out = term if out is None else out + term
    assert out is not None
    return out


def _column_dots(q: list[np.ndarray], w: dict[int, np.ndarray], beta: int) -> dict[int, np.ndarray]:
    """Σ_rows q_a ∘ w_t grouped by a + t: exact int64 column sums."""
    sums: dict[int, np.ndarray] = {}
    for t, wt in w.items():
        wt_f = wt.astype(np.float64)
        for a, qa in enumerate(q):
            s = np.einsum("ij,ij->j", qa, wt_f).astype(np.int64)
            sums[a + t] = sums[a + t] + s if a + t in sums else s
    return sums


def _exact_raw(sums: dict[int, np.ndarray], base: int, beta: int) -> list[Any]:
    """Per entry, Σ_g sums[g] 2^(base − βg) rounded once to mpmath's current precision, as raw
    libmp values (the integer of each entry assembled in a numpy object array)."""
    if not sums:
        return []
    low, high = min(sums), max(sums)
    total: Any = None
    for g in range(low, high + 1):
        if total is not None:
            total = total << beta
        if g in sums:
            level = sums[g].astype(object)
            total = level if total is None else total + level
    prec = mpmath.mp.prec
    return [from_man_exp(t, base - beta * high, prec, "n") for t in total.tolist()]


def _exact_values(sums: dict[int, np.ndarray], base: int, beta: int) -> list[mpmath.mpf]:
    """Per entry, Σ_g sums[g] 2^(base − βg), rounded once to mpmath's precision, as mpf."""
    make = mpmath.mp.make_mpf
    return [make(v) for v in _exact_raw(sums, base, beta)]


def refine(
    a: np.ndarray,
    la: np.ndarray,
    qa: np.ndarray | None,
    b: np.ndarray,
    lb: np.ndarray,
    qb: np.ndarray,
    need_det: bool,
) -> EigenData | None:
    """Working-precision eigen-data from float64 eigh results (see `_eigen`); ``qa`` (H_a's
    eigenvectors) is needed only with ``need_det``."""
    n = a.shape[0]
    beta = _limb_bits(n, a, b, [qb] if qa is None else [qa, qb])
    prec = mpmath.mp.prec
    target = mpmath.mpf(10) ** (-(mpmath.mp.dps - 7))  # dps + 3 for the user's dps
    logs: list[mpmath.mpf] = []
    refined: list[list[mpmath.mpf]] = []
    lu_used = False
    if need_det:
        assert qa is not None
        # the precision is set here, once: the two log-determinants may run in two threads
        # (`in_pair`), and mpmath's precision is a global of the process
        words = _pair_words(la, float(target), beta)[1] + 2
        with mpmath.workprec(prec + 20):
            pair_det = in_pair(
                lambda job: _log_det(*job, beta, float(target), words),
                (a, la, qa),
                (b, lb, qb),
                n,
            )
            for h, (series, values, _) in zip((a, b), pair_det, strict=True):
                if series is None:  # the series cannot reach the target: mpmath LU
                    log_det, lu_used = _lu_log_det(h, n), True
                else:  # here, not in the threads: fprod and log touch mpmath's globals
                    # one logarithm of the product: n roundings at prec + 20 bits move it by
                    # ≤ n·2^−(prec+20)
                    log_det = mpmath.log(abs(mpmath.fprod(values))) + series
                logs.append(log_det)
                refined.append(values)
        # H's limbs, split once for both jobs (those of the saddle's Hessian first)
        limbs = (pair_det[1][2], pair_det[0][2])
    pair = _escape_pair(b, lb, qb, a, la, beta, prec, float(target), limbs if need_det else None)
    if pair is None:
        return None
    e, h_be, h_ae = pair
    e_f = np.array([float(x) for x in e])
    ha_e = a @ e_f
    h_f = float(e_f @ ha_e)
    misalignment = float(np.linalg.norm(ha_e - h_f * e_f) / np.linalg.norm(ha_e))
    if need_det:
        min_values = sorted(refined[0])
        saddle_values = sorted(refined[1])
        saddle_values[0] = -h_be
        how = "mpmath LU" if lu_used else "a gap-free series with exact (limb) products"
        method = (
            f"float64 eigh, refined at the working precision: log-determinants by {how}, "
            "escape pair by Newton steps with exact residuals"
        )
    else:
        min_values = [mpmath.mpf(float(x)) for x in la]
        saddle_values = [-h_be] + [mpmath.mpf(float(x)) for x in lb[1:]]
        method = (
            "float64 eigh; escape pair refined at the working precision (Newton steps with "
            "exact limb products); other eigenvalues as float64"
        )
    return EigenData(
        min_eigenvalues=tuple(min_values),
        saddle_eigenvalues=tuple(saddle_values),
        escape_direction=tuple(e),
        curvature_min_along_e=h_ae,
        curvature_saddle_e=h_be,
        misalignment=mpmath.mpf(misalignment),
        log_det_min=logs[0] if need_det else None,
        log_abs_det_saddle=logs[1] if need_det else None,
        method=method,
    )


def _limb_bits(n: int, a: np.ndarray, b: np.ndarray, qs: list[np.ndarray]) -> int:
    """β for this pair: `beta_for` (a sum of n products of two β-bit limbs is exact: at most
    n·2^(2β) ≤ 2^53) when both matrices are symmetric and HQ's first cross pair
    (H₀ + H₁)(Q₀ + Q₁) fits in 2^53 (n·1.5·2^β·(max|Q|·2^β + 2^(β−1)); this only decides
    speed: every pair is checked again where it is formed, `_level_parts` and
    `_gram_residual`); else one bit less (a non-symmetric H's limbs D + Dᵀ reach 2^(β+1),
    which only the narrower width keeps exact). One more bit per limb puts 53-bit
    entries down to 2^(3β − 53) of the largest into three limbs: H's fourth limb then
    holds only the tiny entries, sparse (a few per thousand for a random dense Hessian at
    n = 1000), and its products cost a sparse pass instead of three GEMMs."""
    beta = beta_for(n)
    top = max(float(np.abs(q).max()) for q in qs)
    fits = n * 1.5 * 2.0**beta * (top * 2.0**beta + 2.0 ** (beta - 1)) < _EXACT
    symmetric = np.array_equal(a, a.T) and np.array_equal(b, b.T)
    return beta if fits and symmetric else beta - 1


def _sparse_limbs(limbs: list[np.ndarray]) -> list[Any]:
    """Limbs with at most 2% nonzero entries as CSR arrays: a CSR × dense product of
    integer-valued floats sums the same exact products (any order: every partial sum is an
    integer below 2^53), at about a tenth of a GEMM at 0.1% density (n = 1000)."""
    from scipy.sparse import csr_array

    return [csr_array(x) if np.count_nonzero(x) <= 0.02 * x.size else x for x in limbs]


def _matrix_limbs(h: np.ndarray, exp: int, beta: int, limbs: int) -> tuple[list[np.ndarray], int]:
    """Limbs of (H + Hᵀ)/2 and their top exponent (exact; one bit lower when H ≠ Hᵀ)."""
    if np.array_equal(h, h.T):
        return split(h, exp, beta, limbs), exp
    # (H + Hᵀ)/2 = Σ (D_k + D_kᵀ) 2^(exp − 1 − β(k+1)): limbs up to 2^(β+1) (so the caller's
    # β is one bit narrower for a non-symmetric H), top exponent one lower
    parts = split(h, exp, beta, limbs)
    return [d + d.T for d in parts], exp - 1


#: Limbs of a Hessian and the exponent of their top weight (`_matrix_limbs`).
Limbs = tuple[list[Any], int]


def _log_det(
    h: np.ndarray, lam: np.ndarray, q: np.ndarray, beta: int, target: float, words: int
) -> tuple[float | None, list[mpmath.mpf], Limbs]:
    """The series log det(I + G) of log |det H| = Σ log dᵢ + log det(I + G), H's refined
    eigenvalues dᵢ = λᵢ + cᵢᵢ and H's limbs, at mpmath's current precision (the caller's
    working precision + 20 bits). It may run in a thread beside another: it reads mpmath's
    precision and writes none of mpmath's globals (the caller takes log |Π dᵢ|: `fprod`
    resets the precision, and `log` updates a cache of constants). None for the series when
    it cannot reach ``target`` (the caller then uses `_lu_log_det`).

    The limbs reach at least as deep as the escape pair's ``words`` limbs at exponent(H)
    would (`_escape_pair` reuses them): exp here is max(exponent(H), exponent(Λ)), so the
    count grows by ⌈(exp − exponent(H))/β⌉."""
    n = h.shape[0]
    exp = max(exponent(h), exponent(lam))
    smallest = float(np.abs(lam).min())
    # W is needed to n^-1.5·λ_min·2^-(bits of the target + 10): the log-determinant's error
    # is at most n^1.5·max|δW|/λ_min (c_ii = q_iᵀw_i); the levels beyond the cutoff and the
    # limbs of H below it are dropped
    bits = math.ceil(-math.log2(target)) + 10
    need = bits + max(0, -math.frexp(smallest)[1]) + math.ceil(math.log2(3 * n**1.5)) + exp
    cutoff = max(2, math.ceil(need / beta))
    deeper = words + -(-(exp - exponent(h)) // beta)
    dense_limbs, h_exp = _matrix_limbs(h, exp, beta, max(cutoff + 1, deeper))
    h_limbs = _sparse_limbs(dense_limbs)
    q_limbs = split(q, 0, beta, 3)
    lam_limbs = split(lam, h_exp, beta, cutoff + 1)
    w_sums = _accumulate(  # HQ − QΛ, level by level
        [
            (h_limbs, q_limbs, np.matmul, n, 1),
            (q_limbs, lam_limbs, lambda x, y: x * y[None, :], 1, -1),
        ],
        cutoff,
    )
    # value of W = Σ_k w_k 2^(h_exp − β(k+2)) (q at exponent 0)
    w_digits = _normalize(w_sums, beta)
    base = h_exp - 2 * beta
    w = _to_float(w_digits, base, beta) if w_digits else np.zeros_like(q)
    # exact diagonal of QᵀW: Σ_rows q_a ∘ w_t at weight 2^(−β(a+1)) 2^(base − βt)
    diag_sums = _column_dots(q_limbs, w_digits, beta)
    diag = _exact_raw(diag_sums, base - beta, beta) if diag_sums else [fzero] * n
    # R = QᵀQ − I from exact limb products, rounded to float
    r = _gram_residual(q_limbs, n, beta)
    k1 = q.T @ w
    correction, tail, off = _inverse_gram_times(r, k1, float(np.abs(lam).min()) / 2, target)
    # dᵢ = λᵢ + cᵢᵢ + correctionᵢ, two roundings at the current precision (raw libmp)
    prec, make = mpmath.mp.prec, mpmath.mp.make_mpf
    d_raw = [
        mpf_add(mpf_add(from_float(x), c, prec, "n"), from_float(y), prec, "n")
        for x, c, y in zip(lam.tolist(), diag, correction.tolist(), strict=True)
    ]
    d = [make(v) for v in d_raw]
    d_f = np.array([to_float(v, False, "n") for v in d_raw])
    diagonal = float(np.sum((EPS * np.abs(correction) + _rounding(r, k1)) / np.abs(d_f)))
    diagonal += math.sqrt(n) * tail / float(np.abs(d_f).min())
    # cheap: C = K₁ off the diagonal (float GEMM, error n·u); accurate (when the cheap
    # bound fails, ill-conditioned H): K from split products, minus RK
    for accurate in (False, True):
        g, bound = _off_diagonal(q_limbs, (w, w_digits, base), r, k1, d_f, off, beta, accurate)
        norm = float(np.linalg.norm(g))
        if norm < 0.25 and bound + diagonal < target:
            break
    else:
        return None, d, (h_limbs, h_exp)
    products = g * g.T
    series = -(math.fsum(products.ravel()) if accurate else float(np.sum(products))) / 2
    power = g
    k = 2
    while norm ** (k + 1) / (1 - norm) > target * 1e-3:
        power = power @ g
        k += 1
        series += (-1) ** (k + 1) * float(np.sum(power * g.T)) / k
    return series, d, (h_limbs, h_exp)


EPS = float(np.finfo(np.float64).eps)
U = EPS / 2  # unit round-off


def _rounding_error(
    w: np.ndarray, digits: dict[int, np.ndarray], base: int, beta: int
) -> np.ndarray:
    """W − w as floats, for W = Σₖ digits[k] 2^(base − βk) and w = W rounded (`_to_float`):
    w lies on the digits' grid, so it splits exactly into digits at the same weights."""
    if not digits:
        return np.zeros_like(w)
    low, high = min(digits), max(digits)
    parts = split(w, base - beta * (low - 1), beta, high - low + 1)
    diff = dict(digits)
    for i, part in enumerate(parts):
        k = low + i
        diff[k] = diff[k] - part.astype(np.int64) if k in diff else -part.astype(np.int64)
    rest = _normalize(diff, beta)
    return _to_float(rest, base, beta) if rest else np.zeros_like(w)


def _rounding(r: np.ndarray, k1: np.ndarray) -> np.ndarray:
    """Per entry of the diagonal of RK₁: the float GEMM's round-off bound n·u·‖Rᵢ‖·‖K₁ᵢ‖."""
    return r.shape[0] * EPS * np.linalg.norm(r, axis=1) * np.linalg.norm(k1, axis=0)


def _off_diagonal(
    q_limbs: list[np.ndarray],
    w_exact: tuple[np.ndarray, dict[int, np.ndarray], int],
    r: np.ndarray,
    k1: np.ndarray,
    d: np.ndarray,
    off: float,
    beta: int,
    accurate: bool,
) -> tuple[np.ndarray, float]:
    """G = D⁻¹C_off and a bound on the series' error from G's errors and its round-off.

    Cheap: C_off = K₁ = QᵀW (float GEMM, error ≤ n·u of it) and ``off`` = ‖R‖‖K₁‖/(1 − ‖R‖)
    for the (N⁻¹ − I)K₁ left out: bound 4·n·u·‖G‖² + 2‖G‖·off/min|d|. Accurate (for
    ill-conditioned H, where that bound fails): K = Q'ᵀW from the limbs Q' of Q (the first
    limb times the first β bits of W exact, the rest in float at 2^−β of the size), minus RK.
    Each source of error in entry (i, j) is a product of a row-i and a column-j norm, so
    ‖δG‖_F sums terms like ε‖W‖_F(Σᵢ dᵢ⁻²)^½; the series then moves by ≤ ‖G‖‖δG‖/(1 − ‖G‖)
    (tr δG = 0 off the diagonal), and its own round-off (the products gᵢⱼgⱼᵢ, summed with
    `math.fsum`; the powers for k ≥ 3) is ≤ 2u·‖G‖² + n·2u·‖G‖³/(1 − ‖G‖)."""
    w = w_exact[0]
    n = w.shape[0]
    if not accurate:
        c = k1.copy()
        np.fill_diagonal(c, 0.0)
        g = c / d[:, None]
        norm = float(np.linalg.norm(g))
        return g, 4 * n * EPS * norm**2 + 2 * norm * off / float(np.abs(d).min())
    norm_r = float(np.linalg.norm(r))
    if not norm_r < 0.5:
        return k1, math.inf
    q_hi = np.ldexp(q_limbs[0], -beta)
    q_lo = np.zeros_like(q_hi)
    for i, limb in enumerate(q_limbs[1:], 2):
        q_lo += np.ldexp(limb, -beta * i)  # exact: at most 2β significant bits
    w_exp = exponent(w)
    w_hi = np.ldexp(np.rint(np.ldexp(w, beta - w_exp)), w_exp - beta)
    w_lo = w - w_hi  # exact
    w_rest = _rounding_error(*w_exact, beta)  # W − w, rounded
    # the first product exact; the rest ≥ 2^−β (w_rest ≈ u) times smaller
    k = q_hi.T @ w_hi + (q_hi.T @ w_lo + q_lo.T @ w + (q_hi + q_lo).T @ w_rest)
    c = k - r @ k
    np.fill_diagonal(c, 0.0)
    g = c / d[:, None]
    norm = float(np.linalg.norm(g))
    if not norm < 0.25:
        return g, math.inf
    inv_d = 1 / np.abs(d)
    spectral = (1 + norm_r) / float(np.abs(d).min())  # ‖D⁻¹Q'ᵀ‖₂
    w_norm = float(np.linalg.norm(w))
    delta = (
        # W − w − w_rest (w_rest's rounding) and the GEMM of w_rest (entrywise bound)
        (n + 2) * U * float(np.linalg.norm(w_rest)) * spectral
        + n * U * float(np.linalg.norm(w_lo)) * spectral  # Q_hiᵀW_lo
        + n * U * w_norm * float(np.linalg.norm(np.linalg.norm(q_lo, axis=0) * inv_d))
        + 3 * U * float(np.linalg.norm(np.linalg.norm(k, axis=1) * inv_d))  # three sums
        # RK's GEMM and the R²K − … left out
        + (n * U + norm_r / (1 - norm_r))
        * float(np.linalg.norm(k))
        * float(np.linalg.norm(np.linalg.norm(r, axis=1) * inv_d))
        + 3 * U * norm  # C − RK, the division by d, d rounded to float
    )
    rounding = 2 * U * norm**2 + 2 * n * U * norm**3 / (1 - norm)
    return g, norm * delta / (1 - norm) + rounding


def _inverse_gram_times(
    r: np.ndarray, k1: np.ndarray, smallest: float, target: float
) -> tuple[np.ndarray, float, float]:
    """The diagonal of (N⁻¹ − I)K₁ for N = I + R (R = QᵀQ − I, ‖R‖ ≈ n·u), by −RK₁ + R²K₁ − …
    (O(n²) for the first term), with ``tail``, a bound on the Frobenius norm of the terms left
    out (‖R‖ᵏ‖K₁‖/(1 − ‖R‖) after k − 1 terms), and ``off``, a bound on the whole of
    (N⁻¹ − I)K₁ (‖R‖‖K₁‖/(1 − ‖R‖)), whose off-diagonal part is not applied. R²K₁ is added
    only when ``tail``, over the diagonal (√n) and relative to λ_min, would exceed 10⁻³ of the
    target."""
    norm_r = float(np.linalg.norm(r))
    norm_k = float(np.linalg.norm(k1))
    if not norm_r < 0.5:
        return np.zeros(r.shape[0]), math.inf, math.inf
    off = norm_r * norm_k / (1 - norm_r)
    first = -np.einsum("il,li->i", r, k1)
    tail = norm_r * off
    if tail * math.sqrt(r.shape[0]) / smallest <= target * 1e-3:
        return first, tail, off
    second = np.einsum("il,li->i", r, r @ k1)
    return first + second, norm_r * tail, off


def _lu_log_det(h: np.ndarray, n: int) -> mpmath.mpf:
    """log |det (H + Hᵀ)/2| by mpmath's LU (partial pivoting) at the working precision plus
    log₂ of the condition number and 2 log₂ n bits: O(n³) multiprecision operations, the
    fallback when the float series cannot reach the working precision."""
    values = np.abs(np.linalg.eigvalsh((h + h.T) / 2))
    extra = int(math.log2(float(values.max() / values.min()))) + 2 * math.ceil(math.log2(n)) + 20
    with mpmath.extraprec(extra):
        rows = h.tolist()
        m = mpmath.matrix(n, n)
        for i in range(n):
            for j in range(n):
                m[i, j] = (mpmath.mpf(rows[i][j]) + rows[j][i]) / 2
        return mpmath.log(abs(mpmath.det(m)))


def _vector_digits(parts: list[np.ndarray], beta: int, limbs: int) -> dict[int, np.ndarray]:
    """Normalized digits (exponent 0) of the exact sum of float vectors ``parts``."""
    sums: dict[int, np.ndarray] = {}
    for p in parts:
        for k, d in enumerate(split(p, 0, beta, limbs)):
            sums[k] = sums[k] + d.astype(np.int64) if k in sums else d.astype(np.int64)
    return _normalize(sums, beta)


def _matvec(
    h_limbs: list[np.ndarray], x: dict[int, np.ndarray], beta: int
) -> dict[int, np.ndarray]:
    """Exact H x grouped by limb + digit index (weights h_exp − β(i+1) − β(t+1)): one
    matrix product per limb with every digit of x as a column (H read once per limb)."""
    keys = list(x)
    if not keys:
        return {}
    digits = np.stack([x[t] for t in keys], axis=1).astype(np.float64)
    sums: dict[int, np.ndarray] = {}
    for i, hl in enumerate(h_limbs):
        product = (hl @ digits).astype(np.int64)
        for c, t in enumerate(keys):
            s = product[:, c]
            sums[i + t] = sums[i + t] + s if i + t in sums else s
    return sums


def _dot(x: dict[int, np.ndarray], y: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    sums: dict[int, np.ndarray] = {}
    for t, xt in x.items():
        for u, yu in y.items():
            s = np.asarray([int(np.dot(xt.astype(np.float64), yu.astype(np.float64)))])
            sums[t + u] = sums[t + u] + s if t + u in sums else s
    return sums


def _escape_pair(
    b: np.ndarray,
    lb: np.ndarray,
    qb: np.ndarray,
    a: np.ndarray,
    la: np.ndarray,
    beta: int,
    prec: int,
    target: float,
    limbs: tuple[Limbs, Limbs] | None = None,
) -> tuple[list[mpmath.mpf], mpmath.mpf, mpmath.mpf] | None:
    """Escape direction e, |H_be| and H_ae = eᵀH_a e at the working precision (Newton).

    ``limbs``: H_b's and H_a's limbs when `_log_det` has split them (at least ``words + 2``
    deep below exponent(H)); else they are split here."""
    n = b.shape[0]
    tolerance, words = _pair_words(la, target, beta)
    if limbs is None:
        limbs = (
            _matrix_limbs(b, exponent(b), beta, words + 2),
            _matrix_limbs(a, exponent(a), beta, words + 2),
        )
    (b_limbs, b_top), (a_limbs, a_top) = limbs
    gaps = lb[1:] - lb[0]
    parts = [qb[:, 0].copy()]
    for _ in range(16):
        x = _vector_digits(parts, beta, words)
        y_raw = _matvec(b_limbs, x, beta)
        y = _normalize(y_raw, beta)  # weights b_top − β(k+2)
        x_f = _to_float(x, -beta, beta)
        lam_parts = _rayleigh_parts(x, y, b_top, beta, prec)
        lam = lam_parts[0]
        r = _residual(y_raw, x, lam_parts, b_top, beta, words, n)
        coef = qb[:, 1:].T @ r
        shift = (lb[1:] - lam) if lam != lb[0] else gaps
        d = qb[:, 1:] @ (coef / shift)
        size = float(np.linalg.norm(d))
        if size <= tolerance * float(np.linalg.norm(x_f)):
            break
        parts.append(-d)
    else:
        return None
    x = _vector_digits(parts, beta, words)
    return _direction_and_curvatures(x, b_limbs, b_top, a_limbs, a_top, beta, prec, n)


def _pair_words(la: np.ndarray, target: float, beta: int) -> tuple[float, int]:
    """The escape direction's tolerance and the limbs its digits need.

    H_ae = eᵀH_a e moves by ≤ 2‖H_a‖‖δe‖: ‖δe‖ below target·λ_min(H_a)/‖H_a‖ (and |H_be| is
    a Rayleigh quotient: its error is second order)."""
    tolerance = target * 1e-3 * float(np.abs(la).min()) / float(np.abs(la).max())
    return tolerance, math.ceil((-math.log2(tolerance) + 20) / beta) + 2


def _rayleigh_parts(
    x: dict[int, np.ndarray], y: dict[int, np.ndarray], b_top: int, beta: int, prec: int
) -> list[float]:
    """The Rayleigh quotient xᵀy/xᵀx at the working precision, as three floats (their sum)."""
    with mpmath.workprec(prec + 20):
        lam_mp = (
            _exact_values(_dot(x, y), b_top - 3 * beta, beta)[0]
            / _exact_values(_dot(x, x), -2 * beta, beta)[0]
        )
        lam_parts = []
        rest = lam_mp
        for _ in range(3):
            part = float(rest)
            lam_parts.append(part)
            rest -= part
    return lam_parts


def _residual(
    y_raw: dict[int, np.ndarray],
    x: dict[int, np.ndarray],
    lam_parts: list[float],
    b_top: int,
    beta: int,
    words: int,
    n: int,
) -> np.ndarray:
    """The residual Bx − λx exactly (λ's limbs times x's digits, the weights of Bx; ``y_raw``
    is `_matvec` of B's limbs and x), as floats."""
    lx: dict[int, np.ndarray] = {}
    for part in lam_parts:
        for i, ll in enumerate(split(np.array([part]), b_top, beta, words)):
            for t, xt in x.items():
                s = (xt.astype(np.float64) * ll[0]).astype(np.int64)
                lx[i + t] = lx[i + t] + s if i + t in lx else s
    r_sums = {k: y_raw.get(k, 0) - lx.get(k, 0) for k in set(y_raw) | set(lx)}
    r_digits = _normalize({k: np.asarray(v, dtype=np.int64) for k, v in r_sums.items()}, beta)
    return _to_float(r_digits, b_top - 2 * beta, beta) if r_digits else np.zeros(n)


def _direction_and_curvatures(
    x: dict[int, np.ndarray],
    b_limbs: list[np.ndarray],
    b_top: int,
    a_limbs: list[np.ndarray],
    a_top: int,
    beta: int,
    prec: int,
    n: int,
) -> tuple[list[mpmath.mpf], mpmath.mpf, mpmath.mpf]:
    """The unit vector e along the digits ``x`` (sign: largest entry positive), −eᵀH_b e and
    eᵀH_a e, exactly from the digits, at the working precision."""
    with mpmath.workprec(prec + 20):
        xx = _exact_values(_dot(x, x), -2 * beta, beta)[0]
        y_exact = _matvec(b_limbs, x, beta)
        xby = _exact_values(_dot(x, _normalize(y_exact, beta)), b_top - 3 * beta, beta)[0]
        ya = _matvec(a_limbs, x, beta)
        xay = _exact_values(_dot(x, _normalize(ya, beta)), a_top - 3 * beta, beta)[0]
        h_be = -xby / xx
        h_ae = xay / xx
        norm = mpmath.sqrt(xx)._mpf_
        work = mpmath.mp.prec
        e_raw = [mpf_div(v, norm, work, "n") for v in _exact_raw(x, -beta, beta)]
        # the largest |eᵢ| (the first, on a tie): among the entries whose float is the largest
        # (rounding is monotonic), compared exactly
        size = np.abs([to_float(v, False, "n") for v in e_raw])
        top = [int(i) for i in np.flatnonzero(size == size.max())]
        pivot = top[0]
        for i in top[1:]:
            if mpf_cmp(mpf_abs(e_raw[i]), mpf_abs(e_raw[pivot])) > 0:
                pivot = i
        if mpf_sign(e_raw[pivot]) < 0:
            e_raw = [mpf_neg(v) for v in e_raw]
        make = mpmath.mp.make_mpf
        e = [make(v) for v in e_raw]
    return e, h_be, h_ae
