"""Plot helpers return matplotlib Figures whose data are the formula's (checked against a
hand-written Kramers formula), figures save as PNG, PDF and SVG, formulas display in notebooks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from flatminima.errors import ParameterError
from flatminima.theory import derive_escape_time, scaling_law
from flatminima.validation import plot_comparison, plot_tau, save_figure


def test_plot_tau_against_sharpness_is_the_formula() -> None:
    k = [1, 1.5, 2, 3, 4.5]
    fig = plot_tau("sgd", "sharpness", k, H_a=29.27, H_b=15.85, barrier=25.23, lr=8.5e-4,
                   batch_size=3.03e-3, s=0.449)  # fmt: skip
    x, y = fig.axes[0].lines[0].get_data()
    # Itô 1-D: log τ = log(2π/(k H_a)) + (2BΔL/η)(s/H_a + (1−s)/H_b)/k
    e1 = 2 * 3.03e-3 * 25.23 / 8.5e-4 * (0.449 / 29.27 + 0.551 / 15.85)
    expected = [math.log(2 * math.pi / (kk * 29.27)) + e1 / kk for kk in k]
    assert np.allclose(x, k) and np.allclose(y, expected, rtol=1e-12)
    assert fig.axes[0].get_xlabel() == "sharpness k"


def test_plot_tau_against_b_and_eta() -> None:
    """SGD: log τ linear in B (slope (2ΔL/η)(s/H_a + (1−s)/H_b)) and in 1/η."""
    common = {"H_a": 2.0, "H_b": 1.0, "Delta_L": 1.0, "s": 0.5}
    fig = plot_tau("sgd", "batch-size", [1, 2, 4, 8], eta=0.1, **common)
    x, y = fig.axes[0].lines[0].get_data()
    assert np.polyfit(x, y, 1)[0] == pytest.approx(2 * 1.0 / 0.1 * (0.5 / 2 + 0.5 / 1), rel=1e-9)
    assert fig.axes[0].get_xlabel() == "batch size B"
    fig = plot_tau("sgd", "lr", [0.05, 0.1, 0.2], B=4.0, **common)
    x, y = fig.axes[0].lines[0].get_data()
    assert np.polyfit(1 / x, y, 1)[0] == pytest.approx(2 * 4.0 * 1.0 * 0.75, rel=1e-9)
    assert fig.axes[0].get_xlabel() == "learning rate η"
    with pytest.raises(ParameterError, match="wrt"):  # white noise does not depend on η
        plot_tau("white", "lr", [0.1, 0.2], H_a=2.0, H_b=1.0, Delta_L=1.0, D=0.1)


def test_plot_tau_rejects_missing_values() -> None:
    with pytest.raises(ParameterError, match="s"):
        plot_tau("sgd", "sharpness", [1, 2], H_a=2.0, H_b=1.0, Delta_L=1.0, eta=0.1, B=4.0)
    with pytest.raises(ParameterError, match="values"):
        plot_tau("sgd", "sharpness", [1], H_a=2.0)


def test_plot_comparison_reads_results_json(tmp_path: Path) -> None:
    points = [
        {"B": b, "rate": math.exp(-b), "rate_low": 0.9 * math.exp(-b),
         "rate_high": 1.1 * math.exp(-b), "formula_rate": math.exp(-1.02 * b),
         "exact_rate": math.exp(-1.01 * b)}
        for b in (1.0, 2.0, 3.0)
    ]  # fmt: skip
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"experiment": "batch-size", "cases": [
        {"landscape": "double-well", "points": points}]}))  # fmt: skip
    fig = plot_comparison(path)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert "formula" in labels and "exact MFPT" in labels
    with pytest.raises(ParameterError, match="case"):
        plot_comparison(path, case=3)


def test_save_figure_writes_png_pdf_svg(tmp_path: Path) -> None:
    fig = plot_tau("white", "sharpness", [1, 2, 4], H_a=2.0, H_b=1.0, Delta_L=1.0, D=0.2)
    paths = save_figure(fig, tmp_path / "sub" / "tau")
    assert [p.suffix for p in paths] == [".png", ".pdf", ".svg"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG"
    assert paths[1].read_bytes()[:4] == b"%PDF"
    assert b"<svg" in paths[2].read_bytes()[:500]


def test_repr_latex_of_laws_and_derivations() -> None:
    law = scaling_law(derive_escape_time("white"), "sharpness")
    assert law._repr_latex_().startswith("$$") and r"\log" in law._repr_latex_()
    assert derive_escape_time("white")._repr_latex_().startswith(r"$\tau = ")


def test_what_you_see_page_example_runs(tmp_path: Path, monkeypatch) -> None:
    """docs/what-you-see.md's Python block runs as printed and writes PNG, PDF and SVG."""
    import re

    page = (Path(__file__).resolve().parents[2] / "docs" / "what-you-see.md").read_text("utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "what-you-see.md", "exec"), {})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "tau_vs_sharpness.pdf",
        "tau_vs_sharpness.png",
        "tau_vs_sharpness.svg",
    ]
