"""Compiled formulas: exact at any precision (mpmath), overflow-free on arrays (numpy, torch)."""

from __future__ import annotations

import re

import mpmath
import numpy as np
import pytest

from flatminima.errors import FlatMinimaError
from flatminima.theory import derive_escape_time

SGD_VALUES = {"H_a": 2.5, "H_b": 1.5, "Delta_L": 0.8, "eta": 0.05, "B": 64, "s": 0.4}


def paper_log_tau_mpmath(H_a, H_b, Delta_L, eta, B, s):
    """Hand-written mpmath of Xie et al.'s τ (anti-Itô), the floor of what compile must equal."""
    return mpmath.log(2 * mpmath.pi / H_b) + 2 * B * Delta_L / eta * (s / H_a + (1 - s) / H_b)


def test_mpmath_source_has_no_float_literals() -> None:
    for noise in ("white", "sgd", "loss-dependent"):
        for interpretation in ("ito", "stratonovich", 0.3):
            compiled = derive_escape_time(noise, 2, interpretation).compile("mpmath")
            assert not re.search(r"\d\.\d|\de-\d", compiled.source), compiled.source


def test_mpmath_is_exact_at_any_precision() -> None:
    """Stratonovich brings rational exponents (½); a double literal would cap agreement at ~16
    digits, here 50- and 100-digit evaluations must agree to 48 digits and match the reference."""
    d = derive_escape_time("sgd", 1, "stratonovich")
    compiled = d.compile("mpmath")
    third = {"H_a": 3, "H_b": 7, "Delta_L": 2, "eta": 1, "B": 5}
    results = []
    for dps in (50, 100):
        with mpmath.workdps(dps):
            s = mpmath.mpf(1) / 3
            value = compiled.tau(**third, s=s)
            reference = (
                2 * mpmath.pi / mpmath.sqrt(3 * 7) * mpmath.exp(2 * 5 * 2 * (s / 3 + (1 - s) / 7))
            )
            assert mpmath.almosteq(value, reference, rel_eps=mpmath.mpf(10) ** (-(dps - 2)))
            results.append(value)
    with mpmath.workdps(100):
        assert mpmath.almosteq(results[0], results[1], rel_eps=mpmath.mpf(10) ** -48)


def test_log_space_is_right_where_float64_overflows() -> None:
    d = derive_escape_time("sgd", 1, "anti-ito")
    values = {**SGD_VALUES, "B": 4096.0}
    with mpmath.workdps(30):
        exact = paper_log_tau_mpmath(*(mpmath.mpf(v) for v in values.values()))
        assert exact > 709  # e^exact overflows float64
        assert mpmath.almosteq(
            d.compile("mpmath").log_tau(**values), exact, rel_eps=mpmath.mpf(10) ** -25
        )
        assert mpmath.almosteq(
            mpmath.log(d.compile("mpmath").tau(**values)), exact, rel_eps=mpmath.mpf(10) ** -25
        )
    numpy_value = d.compile("numpy").log_tau(**values)
    assert np.isfinite(numpy_value)
    assert numpy_value == pytest.approx(float(exact), rel=1e-13)


def test_numpy_broadcasts_over_parameter_arrays() -> None:
    d = derive_escape_time("sgd", 1, "anti-ito")
    batch = np.array([[16.0], [64.0], [256.0]])
    lr = np.array([0.01, 0.05, 0.1, 0.5])
    out = d.compile("numpy").log_tau(**{**SGD_VALUES, "B": batch, "eta": lr})
    assert out.shape == (3, 4)
    for i, b in enumerate(batch[:, 0]):
        for j, e in enumerate(lr):
            with mpmath.workdps(30):
                exact = paper_log_tau_mpmath(
                    *(mpmath.mpf(v) for v in {**SGD_VALUES, "B": b, "eta": e}.values())
                )
            assert out[i, j] == pytest.approx(float(exact), rel=1e-13)


def test_torch_backend_keeps_dtype_and_gives_gradients() -> None:
    torch = pytest.importorskip("torch")
    d = derive_escape_time("sgd", 1, "anti-ito")
    compiled = d.compile("torch")
    batch = torch.tensor([16.0, 64.0], dtype=torch.float64, requires_grad=True)
    out = compiled.log_tau(**{**SGD_VALUES, "B": batch})
    assert out.dtype == torch.float64 and out.shape == (2,)
    out.sum().backward()
    # ∂ log τ / ∂B = (2ΔL/η)(s/H_a + (1 − s)/H_b)
    v = SGD_VALUES
    slope = 2 * v["Delta_L"] / v["eta"] * (v["s"] / v["H_a"] + (1 - v["s"]) / v["H_b"])
    assert torch.allclose(batch.grad, torch.full((2,), slope, dtype=torch.float64))
    out32 = compiled.log_tau(**{**SGD_VALUES, "B": torch.tensor([16.0], dtype=torch.float32)})
    assert out32.dtype == torch.float32


def test_symbolic_dimension_compiles_over_eigenvalue_sequences() -> None:
    general = derive_escape_time("white", "n")
    explicit = derive_escape_time("white", 3)
    h_a, h_b = [1.5, 2.0, 4.0], [0.7, 3.0, 5.0]
    with mpmath.workdps(40):
        a = general.compile("mpmath").tau(H_a=h_a, H_b=h_b, n=3, Delta_L=2, D=0.5)
        b = explicit.compile("mpmath").tau(*h_a, *h_b, 2, 0.5)
        assert mpmath.almosteq(a, b, rel_eps=mpmath.mpf(10) ** -35)
    assert general.compile("numpy").log_tau(
        H_a=h_a, H_b=h_b, n=3, Delta_L=2, D=0.5
    ) == pytest.approx(float(mpmath.log(b)), rel=1e-13)


def test_python_format_runs_and_matches() -> None:
    d = derive_escape_time("sgd", 2, "ito")
    namespace: dict = {}
    exec(d.python(), namespace)
    with mpmath.workdps(30):
        # strings are read at the working precision: "0.1" is 0.1 to 30 digits, not a double
        values = {"H_a_1": 2, "H_b_1": 3, "Delta_L": 1, "eta": "0.1", "B": 8, "s": "0.25"}
        expected = (
            2
            * mpmath.pi
            / 2
            * mpmath.exp(
                2 * 8 * 1 / mpmath.mpf("0.1") * (mpmath.mpf("0.25") / 2 + mpmath.mpf("0.75") / 3)
            )
        )
        assert mpmath.almosteq(namespace["tau"](**values), expected, rel_eps=mpmath.mpf(10) ** -25)


def test_compile_is_cached() -> None:
    d = derive_escape_time("white", 2)
    assert d.compile("numpy")._log_value is d.compile("numpy")._log_value


def test_bad_calls_name_the_parameter() -> None:
    compiled = derive_escape_time("white").compile("numpy")
    with pytest.raises(FlatMinimaError, match="backend"):
        derive_escape_time("white").compile("jax")
    with pytest.raises(FlatMinimaError, match="D"):
        compiled.log_tau(H_a=1, H_b=1, Delta_L=1)
    with pytest.raises(FlatMinimaError, match="temperature"):
        compiled.log_tau(H_a=1, H_b=1, Delta_L=1, D=1, temperature=3)
    with pytest.raises(FlatMinimaError, match="H_a"):
        compiled.log_tau(1, H_a=1, H_b=1, Delta_L=1, D=1)


def test_mpmath_function_matches_mpmath_arithmetic_for_any_symbol_name() -> None:
    """The compiled loss functions of mfpt_1d against mpf arithmetic written out by hand, at 60
    digits, including symbol names the generated code cannot use (``p``, ``lambda``, ``_x``),
    which take SymPy's lambdify instead."""
    import mpmath
    import sympy as sp

    from flatminima.theory._compile import mpmath_function

    for name in ("x", "p", "lambda", "_x", "theta"):
        t = sp.Symbol(name, real=True)
        expr = t**4 / 4 - t**2 / 2 + sp.sin(3 * t) * sp.exp(-(t**2)) + sp.Rational(1, 7)
        fn = mpmath_function(expr, t)
        with mpmath.workdps(60):
            for value in ("-1.3", "0.2", "2.75"):
                v = mpmath.mpf(value)
                want = (
                    v**4 / 4
                    - v**2 / 2
                    + mpmath.sin(3 * v) * mpmath.exp(-(v**2))
                    + mpmath.mpf(1) / 7
                )
                assert abs(fn(v) - want) < mpmath.mpf(10) ** -57 * (1 + abs(want)), name
