"""One vocabulary: escape_time and compiled formulas take both the keyword names (lr,
batch_size, barrier, diffusion) and the symbol names (eta, B, Delta_L, D); a wrong name is a
ParameterError that lists the right ones, never a raw TypeError."""

from __future__ import annotations

import mpmath
import pytest

from flatminima.errors import ParameterError
from flatminima.numerics import escape_time
from flatminima.theory import derive_escape_time

pytestmark = pytest.mark.filterwarnings("ignore::flatminima.errors.ValidityWarning")

H_MIN = [[3, 1], [1, 4]]  # not diagonal: e is not an eigenvector of H_a
H_SADDLE = [[-2, 1], [1, 5]]


def test_escape_time_symbol_names_give_the_same_number() -> None:
    keywords = escape_time(
        "sgd", hess_min=H_MIN, hess_saddle=H_SADDLE, barrier="0.7", lr="0.05",
        batch_size=16, s="0.4", dps=40,
    )  # fmt: skip
    symbols = escape_time(
        "sgd", hess_min=H_MIN, hess_saddle=H_SADDLE, Delta_L="0.7", eta="0.05", B=16,
        s="0.4", dps=40,
    )  # fmt: skip
    assert keywords.tau == symbols.tau and keywords.iterations == symbols.iterations
    # and against the textbook Itô form, independent of either spelling
    white = escape_time("white", hess_min=2, hess_saddle=-1, Delta_L=1, D="0.05", dps=30)
    with mpmath.workdps(30):
        exact = 2 * mpmath.pi / mpmath.sqrt(2) * mpmath.exp(1 / mpmath.mpf("0.05"))
        assert mpmath.almosteq(white.tau, exact, rel_eps=mpmath.mpf(10) ** -25)


def test_escape_time_wrong_or_doubled_name() -> None:
    with pytest.raises(
        ParameterError, match=r"^learning_rate: expected a parameter of escape_time"
    ):
        escape_time("white", hess_min=2, hess_saddle=-1, barrier=1, diffusion=1, learning_rate=1)
    with pytest.raises(ParameterError, match="either lr= or eta=, not both"):
        escape_time(
            "sgd", hess_min=2, hess_saddle=-1, barrier=1, lr=0.1, eta=0.1, batch_size=2, s=0.5
        )


def test_compiled_formula_takes_escape_time_names() -> None:
    compiled = derive_escape_time("sgd", dim=1, interpretation="stratonovich").compile("mpmath")
    by_symbol = compiled.tau(H_a=3, H_b=2, Delta_L="0.5", eta="0.1", B=8, s="0.3")
    by_keyword = compiled.tau(H_a=3, H_b=2, barrier="0.5", lr="0.1", batch_size=8, s="0.3")
    assert by_symbol == by_keyword
    # Stratonovich 1-D: 2π/sqrt(H_a H_b) · exp[(2BΔL/η)(s/H_a + (1−s)/H_b)]
    expected = 2 * mpmath.pi / mpmath.sqrt(6) * mpmath.exp(160 * (0.3 / 3 + 0.7 / 2) * 0.5 / 1)
    assert mpmath.almosteq(by_symbol, expected, rel_eps=1e-12)
    numpy_log = (
        derive_escape_time("white")
        .compile("numpy")
        .log_tau(H_a=2.0, H_b=1.0, barrier=1.0, diffusion=0.1)
    )
    assert abs(float(numpy_log) - (float(mpmath.log(2 * mpmath.pi / mpmath.sqrt(2))) + 10)) < 1e-12


def test_compiled_formula_wrong_name_is_a_parameter_error() -> None:
    compiled = derive_escape_time("white").compile("numpy")
    with pytest.raises(ParameterError, match=r"^temperature: expected one of the parameters"):
        compiled.tau(H_a=2.0, H_b=1.0, Delta_L=1.0, temperature=0.1)
    with pytest.raises(ParameterError, match="barrier"):
        compiled.tau(H_a=2.0, H_b=1.0, barier=1.0, D=0.1)  # the message lists barrier
