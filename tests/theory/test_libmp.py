"""The straight-line libmp path of the mpmath backend: the same numbers as mpf arithmetic and
as SymPy's own evalf, for every derived formula, at several precisions; mpf arithmetic
wherever a value is complex or not an mpf."""

from __future__ import annotations

import random

import mpmath
import pytest
import sympy as sp

from flatminima.theory import (
    derive_escape_time,
    derive_occupation_ratio,
    derive_selection_ratio,
    derive_switch_fraction,
)
from flatminima.theory._compile import _namespace, generate_source


def _formulas() -> list:
    out = []
    for noise in ("white", "sgd", "loss-dependent"):
        for dim in (1, 2, 3):
            for interpretation in ("ito", "stratonovich", "anti-ito", "alpha", 0.3):
                for saddles in (1, 2):
                    out.append(derive_escape_time(noise, dim, interpretation, saddles=saddles))
    for noise in ("white", "sgd"):
        out.append(derive_occupation_ratio(noise, 2))
        out.append(derive_selection_ratio(noise, 2))
    out.append(derive_switch_fraction())
    return out


FORMULAS = _formulas()


def _point(names: tuple[str, ...], rng: random.Random) -> dict[str, mpmath.mpf]:
    """A random admissible point: positive curvatures, s and α in (0, 1), L_b > L_a."""
    values = {}
    for name in names:
        if name in ("s", "alpha") or name.startswith("s_"):
            values[name] = mpmath.mpf(rng.uniform(0.1, 0.9))
        elif name == "eta":
            values[name] = mpmath.mpf(rng.uniform(0.01, 0.2))
        elif name == "B":
            values[name] = mpmath.mpf(rng.randint(1, 64))
        else:
            values[name] = mpmath.mpf(rng.uniform(0.2, 3.0))
    if "L_a" in values and "L_b" in values:
        values["L_b"] = values["L_a"] + values["L_b"]
    return values


def _slow(formula, log: bool):
    """The same expression as mpf arithmetic (SymPy's MpmathPrinter, no libmp path)."""
    namespace = _namespace("mpmath")  # the compiled backend's own argument conversion
    name = f"log_{formula.quantity}" if log else formula.quantity
    expr = formula.log_value if log else formula.value
    names = [p.name for p in formula.parameters]
    exec(generate_source(name, names, expr, "mpmath"), namespace)
    return namespace[name]


def test_every_derived_formula_has_the_fast_path() -> None:
    for formula in FORMULAS:
        assert "_make(" in formula.compile("mpmath").source, formula


@pytest.mark.parametrize("dps", [20, 50, 120])
def test_same_value_as_mpf_arithmetic_for_every_formula(dps: int) -> None:
    rng = random.Random(dps)
    for formula in FORMULAS:
        compiled = formula.compile("mpmath")
        names = tuple(p.name for p in formula.parameters)
        for log in (False, True):
            slow = _slow(formula, log)
            fast = compiled.log_value if log else compiled.value
            for _ in range(3):
                with mpmath.workdps(dps):
                    values = _point(names, rng)
                    a, b = fast(**values), slow(**values)
                    assert type(a) is mpmath.mpf
                    # rounded operation by operation at the same precision, in another order
                    assert mpmath.almosteq(a, b, rel_eps=mpmath.mpf(10) ** (3 - dps)), (
                        formula.quantity,
                        log,
                        values,
                        a,
                        b,
                    )


def test_same_value_as_sympy_evalf_at_higher_precision() -> None:
    """An independent reference: SymPy substitutes exact rationals and evaluates at 80 digits."""
    rng = random.Random(7)
    for formula in FORMULAS[::7]:
        compiled = formula.compile("mpmath")
        names = tuple(p.name for p in formula.parameters)
        rationals = {k: sp.Rational(rng.randint(2, 90), 30) for k in names}
        if "L_a" in rationals and "L_b" in rationals:
            rationals["L_b"] += rationals["L_a"]
        for key in ("s", "alpha"):
            if key in rationals:
                rationals[key] = sp.Rational(rng.randint(1, 29), 30)
        subs = {p: rationals[p.name] for p in formula.parameters}
        reference = formula.value.evalf(80, subs=subs)
        with mpmath.workdps(40):
            values = {k: mpmath.mpf(v.p) / v.q for k, v in rationals.items()}
            ours = compiled.value(**values)
            assert mpmath.almosteq(ours, mpmath.mpf(str(reference)), rel_eps=mpmath.mpf(10) ** -36)


def test_constants_are_cached_per_precision() -> None:
    """2π is cached for each precision: a value at 15 digits must not leak into 60 digits."""
    compiled = derive_escape_time("white", 1).compile("mpmath")
    exact = {}
    for dps in (15, 60, 15, 60):
        with mpmath.workdps(dps):
            tau = compiled.tau(H_a=2, H_b=3, Delta_L=1, D=mpmath.mpf(1) / 4)
            reference = 2 * mpmath.pi / mpmath.sqrt(6) * mpmath.exp(4)
            assert mpmath.almosteq(tau, reference, rel_eps=mpmath.mpf(10) ** (1 - dps))
            exact.setdefault(dps, tau)
            assert tau == exact[dps]


def test_complex_and_non_mpf_values_take_mpf_arithmetic() -> None:
    compiled = derive_escape_time("white", 1).compile("mpmath")
    slow = _slow(derive_escape_time("white", 1), False)
    with mpmath.workdps(30):
        # √(H_a H_b) of a negative H_b: libmp raises ComplexResult, mpf arithmetic gives an mpc
        value = compiled.tau(H_a=2, H_b=-3, Delta_L=1, D="0.25")
        assert isinstance(value, mpmath.mpc)
        assert value == slow(H_a=2, H_b=-3, Delta_L=1, D="0.25")
        # an mpc argument never enters the real path
        z = mpmath.mpc(2, 1)
        assert compiled.tau(H_a=z, H_b=3, Delta_L=1, D="0.25") == slow(
            H_a=z, H_b=3, Delta_L=1, D="0.25"
        )
        with pytest.raises(ZeroDivisionError):
            compiled.tau(H_a=2, H_b=3, Delta_L=1, D=0)


def test_python_source_stays_readable() -> None:
    """``Derivation.python()`` prints the mpf expression a reader can check, not libmp calls."""
    source = derive_escape_time("sgd", 2).python()
    assert "_make(" not in source and "mpmath.exp(" in source
