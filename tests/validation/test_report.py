"""The report (theory sections today): files written, numbers right."""

from __future__ import annotations

import json

import mpmath
import pytest

from flatminima.errors import FlatMinimaError
from flatminima.validation.report import run_report, styblinski_tang_slice


def test_styblinski_tang_critical_points() -> None:
    """Independent check: f'(a) = f'(b) = 0 to 30 digits, and docs/conventions.md §6's rounded values."""
    p = styblinski_tang_slice(dps=40)
    with mpmath.workdps(40):
        df = lambda x: 2 * x**3 - 16 * x + mpmath.mpf(5) / 2  # noqa: E731
        assert abs(df(p["a"])) < mpmath.mpf(10) ** -30 and abs(df(p["b"])) < mpmath.mpf(10) ** -30
        assert mpmath.almosteq(p["H_a"], 6 * p["a"] ** 2 - 16, rel_eps=mpmath.mpf(10) ** -30)
    assert float(p["a"]) == pytest.approx(2.7468, abs=1e-4)
    assert float(p["H_a"]) == pytest.approx(29.27, abs=0.01)
    assert float(p["H_b"]) == pytest.approx(15.85, abs=0.01)
    assert float(p["Delta_L"]) == pytest.approx(25.23, abs=0.01)
    assert float(p["s"]) == pytest.approx(0.449, abs=1e-3)


def test_quick_report_writes_html_json_and_figures(quick_run) -> None:
    base, analyses = quick_run  # the quick experiments already ran there: the report resumes
    report = run_report(out=base, quick=True, dps=20)
    assert report.exists() and report.stat().st_size > 100_000  # the figures are embedded
    data = json.loads((base / "report.json").read_text())
    assert len(data["formulas"]) == 27
    assert (base / data["figures"][0]).exists()
    assert set(data["experiments"]) == set(analyses)
    page = report.read_text()
    for name in analyses:
        assert f"Experiment: {name}" in page
    assert len(data["exact_checks"]) == 4
    kinds = {(law["noise"], law["wrt"]): law["kind"] for law in data["scaling_laws"]}
    assert kinds[("sgd", "sharpness")] == "exponential"
    assert kinds[("white", "sharpness")] == "polynomial"
    assert kinds[("loss-dependent", "loss_ratio")] == "power-law"


def test_report_rejects_low_precision(tmp_path) -> None:
    with pytest.raises(FlatMinimaError, match="dps"):
        run_report(out=tmp_path, dps=5)
