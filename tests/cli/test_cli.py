"""The command line: formula and scaling output, and one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import mpmath
import pytest
import sympy as sp

from flatminima.cli import main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flatminima", *args], capture_output=True, text=True, cwd="/"
    )


def test_formula_text_is_parsable_and_right(capsys) -> None:
    assert main(["formula", "white", "--dim", "2"]) == 0
    line = capsys.readouterr().out.strip()
    lhs, rhs = line.split(" = ", 1)
    assert lhs == "tau"
    names = {
        n: sp.Symbol(n, positive=True) for n in ("H_a_1", "H_a_2", "H_b_1", "H_b_2", "Delta_L", "D")
    }
    expr = sp.sympify(rhs, locals=names)
    reference = (
        2
        * sp.pi
        / names["H_b_1"]
        * sp.sqrt(names["H_b_1"] * names["H_b_2"] / (names["H_a_1"] * names["H_a_2"]))
        * sp.exp(names["Delta_L"] / names["D"])
    )
    assert sp.simplify(expr / reference) == 1


def test_formula_latex_with_steps(capsys) -> None:
    assert main(["formula", "sgd", "--dim", "2", "--format", "latex", "--steps"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("\\begin{align*}")
    assert "Lyapunov" in out and "\\tau = " in out


def test_formula_python_runs(capsys) -> None:
    assert main(["formula", "sgd", "--interpretation", "anti-ito", "--format", "python"]) == 0
    namespace: dict = {}
    exec(capsys.readouterr().out, namespace)
    with mpmath.workdps(30):
        value = namespace["log_tau"](H_a=2, H_b=1, Delta_L=1, eta="0.01", B=32, s="0.5")
        expected = mpmath.log(2 * mpmath.pi) + 2 * 32 / mpmath.mpf("0.01") * (
            mpmath.mpf("0.5") / 2 + mpmath.mpf("0.5")
        )
        assert mpmath.almosteq(value, expected, rel_eps=mpmath.mpf(10) ** -25)


def test_symbolic_dimension_and_steps_text(capsys) -> None:
    assert main(["formula", "loss-dependent", "--dim", "n", "--steps"]) == 0
    out = capsys.readouterr().out
    assert "Assumptions:" in out and "Product(H_a[i], (i, 1, n))" in out


def test_scaling_command(capsys) -> None:
    assert main(["scaling", "white", "--wrt", "sharpness"]) == 0
    assert "polynomial in k" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["formula", "brownian"],
        ["formula", "white", "--dim", "0"],
        ["formula", "sgd", "--interpretation", "1.5"],
        ["formula", "sgd", "--format", "pdf"],
        ["formula", "white", "--saddles", "0"],
        ["scaling", "sgd", "--wrt", "temperature"],
        ["report", "--dps", "5", "--out", "/tmp/never-written"],
        ["frobnicate"],
    ],
)
def test_errors_are_one_line_exit_2(args) -> None:
    result = run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("flatminima: error:")
    assert "Traceback" not in result.stderr


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("flatminima ")


def test_evaluate_text_and_json(tmp_path, capsys) -> None:
    import json

    import numpy as np

    np.save(tmp_path / "hb.npy", np.array([[-1.0, 0.0], [0.0, 3.0]]))
    args = [
        "evaluate",
        "sgd",
        "--hess-min",
        "[[2, 0], [0, 5]]",
        "--hess-saddle",
        str(tmp_path / "hb.npy"),
    ]
    args += [
        "--barrier",
        "0.5",
        "--lr",
        "0.1",
        "--batch-size",
        "128",
        "--s",
        "0.5",
        "--interpretation",
        "anti-ito",
    ]
    assert main([*args, "--dps", "25", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    with mpmath.workdps(25):
        expected = mpmath.log(2 * mpmath.pi) + 2 * 128 * mpmath.mpf("0.5") / mpmath.mpf("0.1") * (
            mpmath.mpf("0.5") / 2 + mpmath.mpf("0.5")
        )
        assert mpmath.almosteq(mpmath.mpf(data["log_tau"]), expected, rel_eps=mpmath.mpf(10) ** -20)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "iterations" in out and "H_ae = 2.0" in out


def test_evaluate_warns_on_stderr(capsys) -> None:
    assert (
        main(
            [
                "evaluate",
                "white",
                "--hess-min",
                "2",
                "--hess-saddle",
                "-1",
                "--barrier",
                "1",
                "--diffusion",
                "0.5",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert err.startswith("flatminima: warning:") and "ΔΦ" in err


@pytest.mark.parametrize(
    "args",
    [
        [
            "evaluate",
            "white",
            "--hess-min",
            "[[1, 2], [3",
            "--hess-saddle",
            "-1",
            "--barrier",
            "1",
            "--diffusion",
            "1",
        ],
        [
            "evaluate",
            "white",
            "--hess-min",
            "missing.npy",
            "--hess-saddle",
            "-1",
            "--barrier",
            "1",
            "--diffusion",
            "1",
        ],
        [
            "evaluate",
            "white",
            "--hess-min",
            "[[-1, 0], [0, 1]]",
            "--hess-saddle",
            "[[-1, 0], [0, 1]]",
            "--barrier",
            "1",
            "--diffusion",
            "1",
        ],
        [
            "evaluate",
            "sgd",
            "--hess-min",
            "2",
            "--hess-saddle",
            "-1",
            "--barrier",
            "1",
            "--lr",
            "0.1",
            "--batch-size",
            "4",
        ],
        [
            "evaluate",
            "white",
            "--hess-min",
            "2",
            "--hess-saddle",
            "-1",
            "--barrier",
            "-1",
            "--diffusion",
            "1",
        ],
        [
            "evaluate",
            "white",
            "--hess-min",
            "2",
            "--hess-saddle",
            "-1",
            "--barrier",
            "1",
            "--diffusion",
            "1",
            "--dps",
            "3",
        ],
    ],
)
def test_evaluate_errors_are_one_line(args) -> None:
    result = run(*args)
    assert result.returncode == 2, result.stderr
    lines = [
        line
        for line in result.stderr.strip().splitlines()
        if not line.startswith("flatminima: warning")
    ]
    assert len(lines) == 1 and lines[0].startswith("flatminima: error:")


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "everything", "--out", "/tmp/x"],
        ["validate", "sharpness", "--quick"],  # --out is required
        ["validate", "sharpness", "--quick", "--out", "/tmp/flatminima-never", "--device", "cuda"],
        [
            "validate",
            "sharpness",
            "--quick",
            "--out",
            "/tmp/flatminima-never",
            "--scheduler",
            "tcp://a:1",
            "--local-cluster",
            "2",
        ],
        ["validate", "sharpness", "--quick", "--out", "/tmp/flatminima-never", "--workers", "-3"],
    ],
)
def test_validate_errors_are_one_line(args) -> None:
    result = run(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flatminima: error:"), result.stderr
