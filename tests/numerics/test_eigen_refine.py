"""The float64-eigh path of escape_time's eigen-data against mpmath.eigsy at twice the digits:
random non-diagonal matrices, near-degenerate eigenvalues, ill-conditioned minima, and the
exact limb products against mpmath."""

from __future__ import annotations

import threading
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
import pytest

from flatminima.numerics import escape_time
from flatminima.numerics._eigen import eigen_data, eigen_data_float
from flatminima.numerics._exact import (
    _accumulate,
    _exact_values,
    _gram_residual,
    _level_parts,
    _limb_bits,
    _matvec,
    _normalize,
    _sparse_limbs,
    beta_for,
    split,
)


def _rotation(rng: np.random.Generator, n: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return q


def _pair(rng: np.random.Generator, n: int, min_values: np.ndarray, saddle_values: np.ndarray):
    qa, qb = _rotation(rng, n), _rotation(rng, n)
    a = qa @ np.diag(min_values) @ qa.T
    b = qb @ np.diag(saddle_values) @ qb.T
    return (a + a.T) / 2, (b + b.T) / 2


def _reference(a: np.ndarray, b: np.ndarray, dps: int):
    with mpmath.workdps(2 * dps + 20):
        return eigen_data(mpmath.matrix(a.tolist()), mpmath.matrix(b.tolist()))


CASES = {
    "random": lambda rng, n: (
        rng.uniform(0.5, 3, n),
        np.concatenate([[-rng.uniform(0.3, 2)], rng.uniform(0.2, 4, n - 1)]),
    ),
    "near-degenerate": lambda rng, n: (
        1 + 1e-9 * np.arange(n),
        np.concatenate([[-0.8], 2 + 1e-10 * np.arange(n - 1)]),
    ),
    "ill-conditioned": lambda rng, n: (
        np.geomspace(1e-7, 1, n),
        np.concatenate([[-1e-3], np.geomspace(1e-5, 10, n - 1)]),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("n", "dps"), [(3, 30), (7, 20), (12, 40)])
def test_refined_eigen_data_agree_with_eigsy_at_twice_the_digits(
    case: str, n: int, dps: int
) -> None:
    rng = np.random.default_rng(n * 1000 + dps)
    a, b = _pair(rng, n, *CASES[case](rng, n))
    ref = _reference(a, b, dps)
    with mpmath.workdps(dps + 10):
        got = eigen_data_float(a, b, need_det=True)
    assert got is not None
    tol = mpmath.mpf(10) ** -(dps + 3)
    with mpmath.workdps(2 * dps):
        assert abs(got.log_det_min - ref.log_det_min) < tol
        assert abs(got.log_abs_det_saddle - ref.log_abs_det_saddle) < tol
        assert abs(got.curvature_saddle_e / ref.curvature_saddle_e - 1) < tol
        assert abs(got.curvature_min_along_e / ref.curvature_min_along_e - 1) < tol
        assert max(
            abs(x - y) for x, y in zip(got.escape_direction, ref.escape_direction, strict=True)
        ) < (mpmath.mpf(10) ** -(dps - 5))


def test_escape_time_float_and_exact_inputs_agree() -> None:
    """Floats take the eigh path, the same matrix as exact fractions the mpmath path."""
    rng = np.random.default_rng(5)
    a, b = _pair(rng, 5, *CASES["random"](rng, 5))
    kwargs = {"barrier": "2.5", "diffusion": "0.1", "dps": 35}
    fast = escape_time("white", hess_min=a, hess_saddle=b, **kwargs)
    exact = escape_time(
        "white",
        hess_min=[[Fraction(x) for x in row] for row in a.tolist()],
        hess_saddle=[[Fraction(x) for x in row] for row in b.tolist()],
        **kwargs,
    )
    assert "eigh" in fast.eigen.method and "eigsy" in exact.eigen.method
    with mpmath.workdps(40):
        assert abs(fast.log_tau - exact.log_tau) < mpmath.mpf(10) ** -36


@pytest.mark.parametrize("n", [4, 40])
def test_limb_matvec_is_exact(n: int) -> None:
    rng = np.random.default_rng(n)
    h = rng.normal(size=(n, n)) * np.exp(rng.uniform(-20, 5, size=(n, n)))
    x = rng.normal(size=n)
    beta = beta_for(n) - 1
    limbs = split(h, int(np.frexp(np.abs(h).max())[1]), beta, 20)
    digits = _normalize({k: d.astype(np.int64) for k, d in enumerate(split(x, 0, beta, 20))}, beta)
    top = int(np.frexp(np.abs(h).max())[1])
    with mpmath.workprec(2000):
        got = _exact_values(_normalize(_matvec(limbs, digits, beta), beta), top - 2 * beta, beta)
        want = mpmath.matrix(h.tolist()) * mpmath.matrix(x.tolist())
        assert all(got[i] == want[i] for i in range(n))


@pytest.mark.parametrize(("scale", "sparse"), [(1, False), (2, False), (1, True)])
def test_limb_sums_with_paired_products_are_the_direct_integer_sums(
    scale: int, sparse: bool
) -> None:
    """HQ − QΛ's level sums: the cross pairs by one product each (limbs of at most 2^β) or,
    when that bound fails (limbs of 2^(β+1), as for a non-symmetric H), by two products;
    with a last limb of 0.5% nonzeros, its products as CSR × dense; either way the int64
    sums of the direct products, exactly."""
    n, cutoff = 64, 4
    beta = beta_for(n) - 1
    rng = np.random.default_rng(scale)
    top = scale << beta
    xs = [rng.integers(-top, top, size=(n, n), endpoint=True).astype(np.float64) for _ in range(4)]
    if sparse:
        xs[3][rng.random((n, n)) < 0.995] = 0.0
    ys = [rng.integers(-top, top, size=(n, n), endpoint=True).astype(np.float64) for _ in range(3)]
    ls = [rng.integers(-top, top, size=n, endpoint=True).astype(np.float64) for _ in range(3)]
    for m in (*xs, *ys, *ls):
        m.flat[0] = top  # the bound is reached
    limbs = _sparse_limbs(xs)
    assert [isinstance(x, np.ndarray) for x in limbs] == [True, True, True, not sparse]
    terms = [(limbs, ys, np.matmul, n, 1), (ys, ls, lambda x, y: x * y[None, :], 1, -1)]
    got = _accumulate(terms, cutoff)
    want: dict[int, np.ndarray] = {}
    for i, x in enumerate(xs):
        for j, y in enumerate(ys):
            if i + j <= cutoff:
                want[i + j] = want.get(i + j, 0) + x.astype(np.int64) @ y.astype(np.int64)
    for i, y in enumerate(ys):
        for j, lam in enumerate(ls):
            if i + j <= cutoff:
                want[i + j] = want[i + j] - y.astype(np.int64) * lam.astype(np.int64)[None, :]
    assert sorted(got) == sorted(want)
    assert all(np.array_equal(got[k], want[k]) for k in want)
    sizes = ([float(np.abs(x).max()) for x in xs], [float(np.abs(y).max()) for y in ys])
    assert len(_level_parts(terms[0], sizes, 1, cutoff, {})) == (1 if scale == 1 else 2)


@pytest.mark.parametrize("case", ["eigenvectors", "large limbs"])
def test_gram_residual_is_the_exact_q_transpose_q_minus_identity_rounded(case: str) -> None:
    """R = QᵀQ − I from Q's limbs: the Karatsuba ``syrk`` pairs (the eigenvectors of a random
    symmetric matrix, whose R ≈ 10⁻¹⁵ is all cancellation) and, with limbs of 2^(β+1) where
    the pair bound fails, two GEMMs; against Python-integer arithmetic, within 2u|R| + the
    compensated sum's second-order term."""
    n = 48
    beta = beta_for(n) - 1
    rng = np.random.default_rng(11)
    if case == "eigenvectors":
        q = np.linalg.eigh(_pair(rng, n, rng.uniform(0.5, 3, n), rng.uniform(0.2, 4, n))[0])[1]
        limbs = split(q, 0, beta, 3)
    else:
        top = 2 << beta
        limbs = [rng.integers(-top, top, size=(n, n)).astype(np.float64) for _ in range(3)]
        for m in limbs:
            m.flat[0] = top
    assert len(limbs) == 3
    got = _gram_residual([m.copy() for m in limbs], n, beta)
    ints = [
        [sum(int(m[i, j]) << (beta * (2 - a)) for a, m in enumerate(limbs)) for j in range(n)]
        for i in range(n)
    ]
    scale = Fraction(1, 1 << (6 * beta))
    # γ²_m Σ|terms| for m ≤ 8 terms, Σ|terms| ≤ 3·max|Q|²·n (the levels' sizes)
    second = (8 * 2.0**-53) ** 2 * 3 * n * float(np.abs(limbs[0]).max() * 2.0**-beta) ** 2
    worst = 0.0
    for i in range(n):
        for j in range(i, n):
            exact = sum(ints[k][i] * ints[k][j] for k in range(n)) * scale - (i == j)
            err = abs(Fraction(got[i, j]) - exact)
            assert got[i, j] == got[j, i]
            assert err <= 2 * 2.0**-53 * abs(exact) + second, (i, j)
            worst = max(worst, float(err / abs(exact)) if exact else 0.0)
    if case == "eigenvectors":
        assert 1e-17 < float(np.abs(got).max()) < 1e-13  # all cancellation
    assert worst <= 2.0**-53  # in fact correctly rounded here


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([[3.0, 0.8], [0.8, 2.0]], [[-1.0, 1.5], [1.5, 4.0]]),  # not aligned
        ([[1.0, 1e-9], [1e-9, 1.0 + 1e-12]], [[-0.5, 0.3], [0.3, 1e-6]]),  # near-degenerate
        ([[1e8, 9999.0], [9999.0, 1.0]], [[-1e-6, 2e-4], [2e-4, 3.0]]),  # ill-conditioned
    ],
)
def test_two_by_two_closed_form_agrees_with_eigsy(a: list, b: list) -> None:
    dps = 40
    ref = _reference(np.array(a), np.array(b), dps)
    with mpmath.workdps(dps + 10):
        got = eigen_data_float(np.array(a), np.array(b))
    assert got is not None and "2×2" in got.method
    tol = mpmath.mpf(10) ** -(dps + 3)
    with mpmath.workdps(2 * dps):
        for x, y in zip(
            got.min_eigenvalues + got.saddle_eigenvalues,
            ref.min_eigenvalues + ref.saddle_eigenvalues,
            strict=True,
        ):
            assert abs(x / y - 1) < tol
        assert abs(got.curvature_min_along_e / ref.curvature_min_along_e - 1) < tol
        assert (
            max(abs(x - y) for x, y in zip(got.escape_direction, ref.escape_direction, strict=True))
            < tol
        )


def test_batch_gives_the_single_call_results_and_checks_lengths() -> None:
    rng = np.random.default_rng(11)
    pairs = [_pair(rng, n, *CASES["random"](rng, n)) for n in (3, 3, 3)]
    kwargs = {"barrier": "1.5", "lr": "0.1", "batch_size": 16, "s": "0.4", "dps": 25}
    import warnings

    from flatminima.errors import ShapeError
    from flatminima.numerics import escape_time_batch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = escape_time_batch(
            "sgd",
            hess_min=np.stack([a for a, _ in pairs]),
            hess_saddle=np.stack([b for _, b in pairs]),
            **kwargs,
        )
        single = [escape_time("sgd", hess_min=a, hess_saddle=b, **kwargs) for a, b in pairs]
    assert [r.log_tau for r in batch] == [r.log_tau for r in single]
    with pytest.raises(ShapeError, match="hess_saddle"):
        escape_time_batch("sgd", hess_min=[[[1.0]]], hess_saddle=[], **kwargs)


def test_two_by_two_misalignment_is_zero_for_a_common_eigenbasis_and_exact_otherwise() -> None:
    """Rotated diagonal pairs share their eigenbasis (misalignment 0, whatever the sign the
    escape vector gets); a non-aligned pair against the definition, in numpy."""
    for angle in (0.3, 2.0, -1.1, 3.0):
        c, s = np.cos(angle), np.sin(angle)
        q = np.array([[c, -s], [s, c]])
        a = q @ np.diag([2.0, 5.0]) @ q.T
        b = q @ np.diag([-1.0, 3.0]) @ q.T
        with mpmath.workdps(40):
            got = eigen_data_float((a + a.T) / 2, (b + b.T) / 2)
        assert got is not None and got.misalignment < 1e-12
    a = np.array([[3.0, 0.8], [0.8, 2.0]])
    b = np.array([[-1.0, 1.5], [1.5, 4.0]])
    with mpmath.workdps(40):
        got = eigen_data_float(a, b)
    e = np.linalg.eigh(b)[1][:, 0]
    ha_e = a @ e
    want = np.linalg.norm(ha_e - (e @ ha_e) * e) / np.linalg.norm(ha_e)
    assert got is not None and abs(float(got.misalignment) - want) < 1e-12


def _condition_1e4(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.geomspace(1e-4, 1, n) * rng.uniform(0.9, 1.1, n),
        np.concatenate([[-1e-2], np.geomspace(1e-3, 10, n - 1)]),
    )


def _condition_1e6(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """κ = 10⁶ for both Hessians, spectra shuffled (not ordered like the rotation's columns),
    the negative eigenvalue inside H_b's range."""
    la = np.geomspace(1.0, 1e6, n) * rng.uniform(0.9, 1.1, n)
    lb = np.geomspace(1.0, 1e6, n) * rng.uniform(0.9, 1.1, n)
    rng.shuffle(la)
    rng.shuffle(lb)
    lb[0] = -rng.uniform(10, 100)
    return la, lb


def _condition_1e10(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.geomspace(1e-10, 1, n), np.concatenate([[-1e-3], np.geomspace(1e-9, 1, n - 1)])


EXTRA = {"condition-1e4": _condition_1e4, "condition-1e6": _condition_1e6}
EXTRA["condition-1e10"] = _condition_1e10


def _lu_reference(a: np.ndarray, b: np.ndarray, dps: int) -> dict[str, mpmath.mpf]:
    """Independent of the eigen code: log-determinants by mpmath's LU (``mpmath.det``) and the
    escape pair by inverse iteration (mpmath ``lu_solve``, shift from float64 eigvalsh), at
    ``dps`` digits, on the matrices exactly as given (symmetrized exactly)."""
    n = a.shape[0]
    with mpmath.workdps(dps):
        ma = mpmath.matrix(n, n)
        mb = mpmath.matrix(n, n)
        for m, h in ((ma, a.tolist()), (mb, b.tolist())):
            for i in range(n):
                for j in range(n):
                    m[i, j] = (mpmath.mpf(h[i][j]) + h[j][i]) / 2
        shift = float(np.linalg.eigvalsh(b)[0]) * (1 + 1e-12)
        shifted = mb - shift * mpmath.eye(n)
        x = mpmath.matrix([1] * n)
        for _ in range(12):
            y = mpmath.lu_solve(shifted, x)
            y = y / mpmath.norm(y)
            done = mpmath.norm(y - x) < mpmath.mpf(10) ** (5 - dps)
            x = y
            if done:
                break
        pivot = max(range(n), key=lambda i: abs(x[i]))
        if x[pivot] < 0:
            x = -x
        return {
            "log_det_min": mpmath.log(mpmath.det(ma)),
            "log_abs_det_saddle": mpmath.log(abs(mpmath.det(mb))),
            "curvature_saddle_e": -(x.T * mb * x)[0],
            "curvature_min_along_e": (x.T * ma * x)[0],
            "e": x,
        }


@pytest.mark.parametrize(
    ("n", "case", "path"),
    [
        (10, "random", "series"),
        (30, "random", "series"),
        (30, "near-degenerate", "series"),
        (30, "ill-conditioned", "series"),  # κ = 10⁷: the accurate pass
        (40, "condition-1e4", "series"),
        (40, "condition-1e6", "series"),
        (24, "condition-1e10", "LU"),
        pytest.param(100, "random", "series", marks=pytest.mark.slow),
        pytest.param(100, "ill-conditioned", "LU", marks=pytest.mark.slow),
        pytest.param(120, "condition-1e6", "series", marks=pytest.mark.slow),
    ],
)
def test_dense_eigen_data_at_30_digits_against_mpmath_lu_at_60(
    n: int, case: str, path: str
) -> None:
    """n = 10 … 120 at the benchmark's 30 digits: what the n-D formulas read (the two
    log-determinants, |H_be|, H_ae) to 33 digits, the escape direction to 25. The series
    covers condition numbers up to ~10⁶–10⁷ (with the accurate off-diagonal of C past ~10⁴:
    κ = 10⁷ takes it at n = 30, not at n = 100); at 10¹⁰ the log-determinants come from the
    mpmath LU."""
    rng = np.random.default_rng(7000 + n)
    a, b = _pair(rng, n, *{**CASES, **EXTRA}[case](rng, n))
    with mpmath.workdps(40):
        got = eigen_data_float(a, b, need_det=True)
    _check_against_lu(a, b, got, path)


def _check_against_lu(a: np.ndarray, b: np.ndarray, got: Any, path: str) -> None:
    ref = _lu_reference(a, b, 60)
    assert got is not None
    assert path in got.method
    with mpmath.workdps(60):
        assert abs(got.log_det_min - ref["log_det_min"]) < mpmath.mpf(10) ** -33
        assert abs(got.log_abs_det_saddle - ref["log_abs_det_saddle"]) < mpmath.mpf(10) ** -33
        for name in ("curvature_saddle_e", "curvature_min_along_e"):
            assert abs(getattr(got, name) / ref[name] - 1) < mpmath.mpf(10) ** -33, name
        assert max(abs(x - y) for x, y in zip(got.escape_direction, ref["e"], strict=True)) < (
            mpmath.mpf(10) ** -25
        )


@pytest.mark.parametrize(
    ("n", "case", "path"),
    [(30, "random", "series"), (40, "condition-1e6", "series"), (24, "condition-1e10", "LU")],
)
def test_two_hessians_refined_side_by_side_against_mpmath_lu_at_60(
    n: int, case: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The side-by-side path (`in_pair`, from n = 400 on a machine with two cores) at small n:
    both eighs and both log-determinants ran in the pool's threads, the results meet the same
    references as the serial path, and mpmath's precision is the caller's afterwards (it is a
    global of the process: the threads must not change it)."""
    pytest.importorskip("threadpoolctl")
    import flatminima.numerics._blas_threads as bt
    import flatminima.numerics._exact as ex

    monkeypatch.setattr(bt, "PAIR_FROM", 2)
    monkeypatch.setattr(bt, "_cores", lambda: 2)
    threads: list[str] = []
    log_det = ex._log_det

    def recorded(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return log_det(*args)

    monkeypatch.setattr(ex, "_log_det", recorded)
    rng = np.random.default_rng(7000 + n)
    a, b = _pair(rng, n, *{**CASES, **EXTRA}[case](rng, n))
    with mpmath.workdps(40):
        got = eigen_data_float(a, b, need_det=True)
        assert mpmath.mp.dps == 40
    assert len(threads) == 2 and all(t.startswith("flatminima-pair") for t in threads)
    _check_against_lu(a, b, got, path)


@pytest.mark.parametrize("case", ["random", "condition-1e6"])
def test_sgd_path_without_h_a_eigenvectors_against_mpmath_lu_at_60(case: str) -> None:
    """SGD noise needs no determinant: H_a is only eigvalsh'd (its eigenvalues for the check,
    the report and the tolerance); |H_be|, H_ae and e still agree with the independent
    reference, and the eigenvalues listed are eigvalsh's."""
    n = 30
    rng = np.random.default_rng(7100 + n)
    a, b = _pair(rng, n, *{**CASES, **EXTRA}[case](rng, n))
    ref = _lu_reference(a, b, 60)
    with mpmath.workdps(40):
        got = eigen_data_float(a, b, need_det=False)
    assert got is not None and got.log_det_min is None
    assert [float(x) for x in got.min_eigenvalues] == np.linalg.eigvalsh(a).tolist()
    with mpmath.workdps(60):
        for name in ("curvature_saddle_e", "curvature_min_along_e"):
            assert abs(getattr(got, name) / ref[name] - 1) < mpmath.mpf(10) ** -33, name
        assert max(abs(x - y) for x, y in zip(got.escape_direction, ref["e"], strict=True)) < (
            mpmath.mpf(10) ** -25
        )


def test_limb_width_and_a_non_symmetric_pair_against_mpmath_lu_at_60() -> None:
    """One bit more per limb only where every product still fits: a symmetric pair at n = 60
    takes `beta_for`; an H one ulp from symmetric, or eigenvectors with an entry near 1 (the
    first cross pair of HQ would pass 2^53), take one bit less. The non-symmetric pair's
    results (of (H + Hᵀ)/2, the limbs D + Dᵀ) agree with the independent reference."""
    n = 60
    rng = np.random.default_rng(7200)
    a, b = _pair(rng, n, *CASES["random"](rng, n))
    qa, qb = np.linalg.eigh(a)[1], np.linalg.eigh(b)[1]
    assert _limb_bits(n, a, b, [qa, qb]) == beta_for(n)
    assert _limb_bits(n, a, b, [qa, np.eye(n)]) == beta_for(n) - 1
    a[3, 5] = np.nextafter(a[3, 5], np.inf)
    assert _limb_bits(n, a, b, [qa, qb]) == beta_for(n) - 1
    ref = _lu_reference(a, b, 60)
    with mpmath.workdps(40):
        got = eigen_data_float(a, b, need_det=True)
    assert got is not None and "series" in got.method
    with mpmath.workdps(60):
        for name in ("log_det_min", "log_abs_det_saddle"):
            assert abs(getattr(got, name) - ref[name]) < mpmath.mpf(10) ** -33, name
        for name in ("curvature_saddle_e", "curvature_min_along_e"):
            assert abs(getattr(got, name) / ref[name] - 1) < mpmath.mpf(10) ** -33, name


@pytest.mark.parametrize("diagonal", ["hess_min", "hess_saddle"])
def test_one_diagonal_hessian_with_a_dense_other_against_mpmath_lu_at_60(diagonal: str) -> None:
    """One Hessian diagonal, the other dense (n = 17): the diagonal one's eigenvectors are a
    signed permutation, so QᵀQ − I is exactly 0. `escape_time` raised a bare AssertionError
    there before the QᵀQ − I rewrite (its int64 levels normalized to nothing); now every
    quantity agrees with the independent reference."""
    n = 17
    rng = np.random.default_rng(7300)
    a, b = _pair(rng, n, *CASES["random"](rng, n))
    if diagonal == "hess_min":
        a = np.diag(rng.uniform(0.5, 3, n))
    else:
        b = np.diag(np.concatenate([[-0.7], rng.uniform(0.2, 4, n - 1)]))
    ref = _lu_reference(a, b, 60)
    with mpmath.workdps(40):
        got = eigen_data_float(a, b, need_det=True)
    assert got is not None
    with mpmath.workdps(60):
        for name in ("log_det_min", "log_abs_det_saddle"):
            assert abs(getattr(got, name) - ref[name]) < mpmath.mpf(10) ** -33, name
        for name in ("curvature_saddle_e", "curvature_min_along_e"):
            assert abs(getattr(got, name) / ref[name] - 1) < mpmath.mpf(10) ** -33, name
    result = escape_time("white", hess_min=a, hess_saddle=b, dps=30, barrier="2", diffusion="0.1")
    assert mpmath.isfinite(result.log_tau)


def test_float_rounding_error_of_exact_digits_is_the_second_float() -> None:
    """`_rounding_error`: W − w for W given by 20-bit digits over 8 levels (160 bits) and w its
    float, against the exact value from Python integers: w + (W − w) is W to ~u²."""
    from flatminima.numerics._exact import _rounding_error, _to_float

    rng = np.random.default_rng(3)
    beta, base, n = 20, -30, 6
    digits = _normalize({k: rng.integers(-(2**19), 2**19, size=(n, n)) for k in range(-1, 7)}, beta)
    w = _to_float(digits, base, beta)
    rest = _rounding_error(w, digits, base, beta)
    low, high = min(digits), max(digits)
    with mpmath.workprec(400):
        for i in range(n):
            for j in range(n):
                total = 0
                for k in range(low, high + 1):
                    total = (total << beta) + (int(digits[k][i, j]) if k in digits else 0)
                exact = mpmath.ldexp(mpmath.mpf(total), base - beta * high)
                assert abs(rest[i, j]) < 1.2e-16 * abs(exact)
                assert abs(exact - w[i, j] - rest[i, j]) < 1e-31 * abs(exact)


def _blocks_matrix(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """Rows whose magnitudes differ by up to 2^±60 and a band of zero rows: blocks of rows
    need different numbers of limbs (some none)."""
    x = rng.normal(size=(rows, cols)) * np.exp2(rng.integers(-60, 4, size=(rows, 1)))
    x[70:140] = 0.0
    x[190:200] = rng.integers(-5, 5, size=(10, cols))  # small integers: one limb
    return x


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("limbs", [2, 9])
def test_split_by_blocks_of_rows_is_exact_and_keeps_every_limb(order: str, limbs: int) -> None:
    """Against Python fractions, entry by entry: Σ D_k 2^(exp − β(k+1)) + the remainder is x,
    the remainder below 2^(exp − β·limbs) (0 where the limbs suffice), and every limb that some
    block of rows needs is there."""
    from flatminima.numerics._exact import _ROWS, exponent

    rng = np.random.default_rng(11)
    x = np.asarray(_blocks_matrix(rng, 3 * _ROWS + 17, 6), order=order)
    beta, exp = 21, exponent(x)
    parts = split(x, exp, beta, limbs)
    assert 1 <= len(parts) <= limbs and all(p.shape == x.shape for p in parts)
    assert all(float(np.abs(p).max()) <= 2.0**beta for p in parts)
    deepest = 0
    for i, j in np.ndindex(*x.shape):
        value = sum(
            (
                Fraction(float(p[i, j])) * Fraction(2) ** (exp - beta * (k + 1))
                for k, p in enumerate(parts)
            ),
            Fraction(0),
        )
        rest = Fraction(float(x[i, j])) - value
        assert abs(rest) <= Fraction(2) ** (exp - beta * limbs - 1)
        if len(parts) < limbs:
            assert rest == 0
        deepest = max(deepest, max((k for k, p in enumerate(parts) if p[i, j] != 0), default=-1))
    assert deepest == len(parts) - 1  # no trailing limb of zeros, none missing


def test_normalize_by_blocks_of_rows_keeps_every_value() -> None:
    """Level sums of a matrix with more rows than two blocks: the value of every entry (Python
    integers) is unchanged, the digits are balanced, levels that are zero everywhere are gone."""
    from flatminima.numerics._exact import _ROWS

    rng = np.random.default_rng(12)
    rows, cols, beta = 2 * _ROWS + 33, 5, 21
    sums = {k: rng.integers(-(2**50), 2**50, size=(rows, cols)) for k in range(4)}
    sums[1][: _ROWS + 5] = 0  # this level has carries into it only in some blocks
    sums[4] = np.zeros((rows, cols), dtype=np.int64)
    before = {k: v.copy() for k, v in sums.items()}
    digits = _normalize(sums, beta)
    assert all(np.array_equal(sums[k], before[k]) for k in sums)  # inputs untouched
    assert 4 not in digits and all(v.any() for v in digits.values())
    half = 2 ** (beta - 1)
    assert all(-half <= int(v.min()) and int(v.max()) < half for v in digits.values())
    top = max(max(digits), max(sums))
    for i, j in np.ndindex(rows, cols):
        value = sum(int(sums[k][i, j]) << (beta * (top - k)) for k in sums)
        got = sum(int(digits[k][i, j]) << (beta * (top - k)) for k in digits)
        assert got == value


@pytest.mark.parametrize("order", ["C", "F"])
def test_compensated_sum_by_blocks_against_fractions(order: str) -> None:
    """total + Σ xs with heavy cancellation, entry by entry against the exact sum: within 2u of
    it (one rounding of the result, and the TwoSum errors' own sum), C and F layouts alike."""
    from flatminima.numerics._exact import _ROWS, _compensated_sum

    rng = np.random.default_rng(13)
    shape = (2 * _ROWS + 9, 40)
    big = rng.normal(size=shape)
    terms = [
        np.asarray(t, order=order)
        for t in (
            big,
            -big * (1 + 1e-9),
            rng.normal(size=shape) * 1e-17,
            rng.normal(size=shape) * 1e-25,
        )
    ]
    exact = [
        [sum((Fraction(float(t[i, j])) for t in terms), Fraction(0)) for j in range(shape[1])]
        for i in range(shape[0])
    ]
    total = terms[0].copy(order=order)
    _compensated_sum(total, [t.copy(order=order) for t in terms[1:]])
    u = Fraction(2) ** -53
    for i, j in np.ndindex(*shape):
        assert abs(Fraction(float(total[i, j])) - exact[i][j]) <= 2 * u * abs(exact[i][j])
