"""``formula --format latex [--steps]`` is LaTeX that pdflatex compiles (inside article +
amsmath): ASCII only, nothing but plain text inside \\text{}, every symbol defined, the result
in display maths. Compiled with a real pdflatex when one is installed (``make check-ui``
installs texlive-latex-base); the structural checks run everywhere."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from flatminima.cli import main

CASES = [
    ("sgd", "1", "ito"),
    ("sgd", "2", "alpha"),
    ("white", "n", "stratonovich"),
    ("loss-dependent", "1", "anti-ito"),
    ("loss-dependent", "n", "0.3"),
]


def latex(capsys, noise: str, dim: str, interpretation: str) -> str:
    args = ["formula", noise, "--dim", dim, "--interpretation", interpretation]
    assert main([*args, "--format", "latex", "--steps"]) == 0
    return capsys.readouterr().out


def _text_blocks(source: str) -> list[str]:
    """The contents of every \\text{...} (braces balanced)."""
    blocks = []
    for match in re.finditer(r"\\text\{", source):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(source[i], 0) if source[i - 1] != "\\" else 0
            i += 1
        blocks.append(source[match.end() : i - 1])
    return blocks


@pytest.mark.parametrize(("noise", "dim", "interpretation"), CASES)
def test_latex_structure(capsys, noise: str, dim: str, interpretation: str) -> None:
    out = latex(capsys, noise, dim, interpretation)
    assert out.isascii(), sorted({c for c in out if not c.isascii()})
    for block in _text_blocks(out):
        outside_math = re.sub(r"\$[^$]*\$", "", block)
        assert "^" not in outside_math and "_" not in outside_math.replace(r"\_", ""), block
    final = out.strip().splitlines()[-1]
    assert final.startswith(r"\[ \tau = ") or final.startswith(r"\[ \gamma = "), final
    assert final.endswith(r"\]")
    assert r"\noindent Symbols:" in out


def test_every_symbol_of_the_steps_is_defined(capsys) -> None:
    out = latex(capsys, "sgd", "1", "ito")
    legend = out[out.index("Symbols:") :]
    for symbol in (r"$d$", r"$h$", r"$\sigma$", r"$H_{a}$", r"$\Delta L$", r"$s$", r"$\eta$"):
        assert f"{symbol}:" in legend, symbol
    assert "a symbol of the derivation" not in legend  # every one has a meaning


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed "
                    "(make check-ui installs texlive-latex-base)")  # fmt: skip
@pytest.mark.parametrize(("noise", "dim", "interpretation"), CASES)
def test_pdflatex_compiles_it(capsys, tmp_path: Path, noise, dim, interpretation) -> None:
    body = latex(capsys, noise, dim, interpretation)
    source = tmp_path / "formula.tex"
    source.write_text(
        "\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n"
        + body
        + "\n\\end{document}\n",
        encoding="ascii",
    )
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", source.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    errors = [line for line in proc.stdout.splitlines() if line.startswith("!")]
    assert proc.returncode == 0 and not errors, errors or proc.stdout[-2000:]
    assert (tmp_path / "formula.pdf").stat().st_size > 1000


def test_plain_latex_without_steps_is_display_maths(capsys) -> None:
    assert main(["formula", "white", "--format", "latex"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(r"\[ \tau = \frac{2 \pi") and out.endswith(r"\]")
