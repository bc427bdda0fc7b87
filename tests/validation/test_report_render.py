"""The report's HTML: maths for KaTeX (offline, every derivation), and a covariance section that
states its rule and says plainly what held and what did not."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("torch")

from flatminima._katex import KATEX_DIR, katex_head
from flatminima.validation import report
from flatminima.validation._covariance import covariance_body


def test_katex_head_is_self_contained() -> None:
    head = katex_head()
    # nothing fetched: only XML namespace names (svg, MathML) carry an http address
    addresses = set(re.findall(r"https?://[^\s\"')]+", head))
    assert addresses <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1998/Math/MathML"}
    assert "@import" not in head and "<script src" not in head
    fonts = re.findall(r"url\(data:font/woff2;base64,", head)
    assert len(fonts) == len(list((KATEX_DIR / "fonts").glob("*.woff2"))) == 20
    assert "url(fonts/" not in head  # every font inlined
    assert "renderMathInElement" in head and "katex" in head


def test_math_cells_are_escaped_latex_for_katex() -> None:
    cell = report._math(r"\frac{a<b}{2}")
    assert cell == r"\(\frac{a&lt;b}{2}\)"
    assert report._math("x", display=True) == r"\[x\]"


def case(model, dataset, state, holds, slope, scale):
    from flatminima.validation._covariance import CovarianceCase, CovarianceResult

    measured = CovarianceResult.__new__(CovarianceResult)
    measured.holds, measured.slope, measured.scale = holds, slope, scale
    return CovarianceCase(
        model=model,
        dataset=dataset,
        noise=state,
        expected="",
        preferred="",
        held=holds == (state == "minimum"),
        measured=measured,
    )


def test_covariance_section_states_rule_and_outcome() -> None:
    cases = [
        case("logistic", "two-blobs", "minimum", True, 1.001, 0.952),
        case("logistic", "two-blobs", "init", True, 0.762, 1.287),
        case("mlp", "wine", "minimum", False, 1.115, 0.141),
        case("mlp", "wine", "init", False, 1.392, 0.529),
    ]
    body = covariance_body(cases)
    text = re.sub(r"<[^>]+>", "", body)
    assert "3 directions of largest curvature" in text and "filled markers" in text
    assert "[0.75, 1.25]" in text and "[0.5, 2.0]" in text
    held = text[text.index("What held.") : text.index("What did not hold.")]
    not_held = text[text.index("What did not hold.") :]
    assert "matched H/B on: logistic/two-blobs" in held
    assert "as predicted, on: mlp/wine" in held
    assert "did not match H/B on: mlp/wine (scale 0.14" in not_held
    assert "matched unexpectedly on: logistic/two-blobs" in not_held
    # no double negatives: the table says whether the noise matches and whether a match is
    # expected, and then pass/FAIL
    assert "fails" not in text and "not held" not in text
    rows = re.findall(r"<tr><td>(.*?)</tr>", body)
    assert len(rows) == 4 and "FAIL" in rows[1] and "pass" in rows[3]
