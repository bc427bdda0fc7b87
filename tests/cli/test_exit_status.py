"""Exit statuses of the command line (0 held, 1 not held, 2 usage error), one-line errors for
OSErrors and missing optional packages, flag names in errors, case-insensitive choices,
``--seed`` and ``--help`` with defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from flatminima import cli
from flatminima.cli import build_parser, main


def run(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    command = (
        [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "flatminima", *args]
    )
    return subprocess.run(command, capture_output=True, text=True, cwd="/", timeout=300)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flatminima: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_validate_out_is_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine", encoding="utf-8")
    line = one_line_error(run("validate", "covariance", "--quick", "--out", str(target)))
    assert "--out" in line and "file" in line and "choose another path" in line
    assert target.read_text(encoding="utf-8") == "mine"  # untouched


def test_report_out_is_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("x", encoding="utf-8")
    assert "--out" in one_line_error(run("report", "--quick", "--out", str(target)))


def test_out_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    line = one_line_error(run("validate", "sharpness", "--quick", "--out", str(blocker / "sub")))
    assert "--out" in line


def test_oserror_during_a_command_is_one_line(monkeypatch, capsys) -> None:
    def broken(args: Any) -> int:
        raise PermissionError(13, "Permission denied", "/somewhere/results.json")

    monkeypatch.setattr(cli, "_cmd_formula", broken)
    assert main(["formula", "white"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "/somewhere/results.json" in err and "Permission denied" in err


NO_TORCH = """
import sys
sys.modules["torch"] = None  # as if torch were not installed
from flatminima.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "sharpness", "--quick", "--out", "{tmp}"],
        ["report", "--quick", "--out", "{tmp}"],
    ],
)
def test_without_torch_is_one_line_with_the_fix(args: list[str], tmp_path: Path) -> None:
    line = one_line_error(run(*[a.format(tmp=tmp_path) for a in args], code=NO_TORCH))
    assert "torch" in line and "pip install 'flatminima[validation]'" in line


def _fake_validate(held: dict[str, bool], seen: dict[str, Any]) -> Any:
    def validate(experiment: str, out: Any, **kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs, experiment=experiment, out=out)
        return {name: SimpleNamespace(held=ok) for name, ok in held.items()}

    return validate


@pytest.mark.parametrize(
    ("held", "status"),
    [({"sharpness": True}, 0), ({"sharpness": False}, 1), ({"a": True, "b": False}, 1)],
)
def test_validate_status_follows_the_verdict(held, status, monkeypatch, tmp_path, capsys) -> None:
    import flatminima.validation as validation

    seen: dict[str, Any] = {}
    monkeypatch.setattr(validation, "validate", _fake_validate(held, seen))
    assert main(["validate", "Sharpness", "--out", str(tmp_path), "--seed", "7"]) == status
    assert seen["seed"] == 7 and seen["experiment"] == "sharpness"
    out = capsys.readouterr().out
    if status:
        assert "did not hold" in out and "exit status 1" in out


def test_validate_aliases(monkeypatch, tmp_path) -> None:
    import flatminima.validation as validation

    seen: dict[str, Any] = {}
    monkeypatch.setattr(validation, "validate", _fake_validate({"x": True}, seen))
    assert main(["validate", "LR", "--out", str(tmp_path)]) == 0
    assert seen["experiment"] == "learning-rate" and seen["seed"] == 0
    assert main(["validate", "batch_size", "--out", str(tmp_path)]) == 0
    assert seen["experiment"] == "batch-size"


def test_seed_redraws_every_point_seed(monkeypatch, tmp_path) -> None:
    """run_experiment(seed=s): 0 keeps the recorded seeds, another value changes every one."""
    from flatminima.validation import _runner

    captured: dict[int, list[int]] = {}

    def fake_sweep(points, store, executor, **kwargs):
        captured[len(captured)] = [p.seed for p in points]
        raise RuntimeError("stop")  # only the points matter here

    monkeypatch.setattr(_runner, "run_sweep", fake_sweep)
    for seed in (0, 0, 5):
        with pytest.raises(RuntimeError):
            _runner.run_experiment("covariance", tmp_path, quick=True, seed=seed, progress=False)
    assert captured[0] == captured[1]
    assert all(a != b for a, b in zip(captured[0], captured[2], strict=True))
    with pytest.raises(ValueError, match="seed"):
        _runner.run_experiment("covariance", tmp_path, seed=-1)


def test_usage_errors_are_status_2(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["validate", "everything", "--out", "/tmp/never"])
    assert info.value.code == 2
    assert "expected one of covariance" in capsys.readouterr().err


def test_choices_are_case_insensitive(capsys) -> None:
    assert main(["formula", "SGD", "--interpretation", "ITO"]) == 0
    upper = capsys.readouterr().out
    assert main(["formula", "sgd", "--interpretation", "ito"]) == 0
    assert capsys.readouterr().out == upper
    assert main(["formula", "Loss_Dependent", "--format", "TEXT"]) == 0


def test_errors_name_the_flag_not_the_python_parameter(capsys) -> None:
    status = main(
        ["evaluate", "white", "--hess-min", "[[2, 1], [0, 5]]", "--hess-saddle", "[[-1, 0], [0, 3]]",
         "--barrier", "1", "--diffusion", "0.1"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("flatminima: error: --hess-min:"), err
    assert main(["evaluate", "white", "--hess-min", "2", "--hess-saddle", "-1", "--barrier", "1",
                 "--diffusion", "-3"]) == 2  # fmt: skip
    assert capsys.readouterr().err.startswith("flatminima: error: --diffusion:")


def test_wrt_takes_the_flag_vocabulary(capsys) -> None:
    assert main(["scaling", "sgd", "--wrt", "batch-size", "lr"]) == 0
    hyphen = capsys.readouterr().out
    assert main(["scaling", "sgd", "--wrt", "batch_size", "LR"]) == 0
    assert capsys.readouterr().out == hyphen
    assert hyphen.startswith("batch-size: exponential in B")


def test_scaling_says_what_k_and_c_are(capsys) -> None:
    assert main(["scaling", "sgd", "--wrt", "sharpness"]) == 0
    out = capsys.readouterr().out
    assert "multiplies every Hessian eigenvalue by k" in out
    assert "C collects every term that does not depend on k" in out
    assert "slope 2*B*Delta_L*((1 - s)/H_b + s/H_a)/eta" in out  # the E₁ of the conventions


def test_help_documents_every_argument_and_its_default(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option: no wrap inside a default
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in subparsers.choices.items():
        text = sub.format_help()
        for action in sub._actions:
            if action.dest == "help":
                continue
            assert action.help, (name, action.dest)
            if action.default not in (None, False) and not action.required:
                default = action.default
                shown = " ".join(default) if isinstance(default, list) else default
                assert f"(default: {shown})" in " ".join(text.split()), (name, action)
    validate_help = subparsers.choices["validate"].format_help()
    assert "Exit status: 0 every prediction held, 1" in " ".join(validate_help.split())
    assert "(default: 0)" in validate_help  # --seed


def test_rounding_noise_prints_as_zero(capsys) -> None:
    """Rotated diagonal Hessians share their eigenvectors: the misalignment is exactly 0, and
    float input gives ~1e-16 of rounding noise, which the CLI prints as 0."""
    import json

    import numpy as np

    c, s = np.cos(0.3), np.sin(0.3)
    rotation = np.array([[c, -s], [s, c]])
    h_min = (rotation @ np.diag([2.0, 5.0]) @ rotation.T).tolist()
    h_saddle = (rotation @ np.diag([-1.0, 3.0]) @ rotation.T).tolist()
    args = ["evaluate", "sgd", "--hess-min", json.dumps(h_min), "--hess-saddle",
            json.dumps(h_saddle), "--barrier", "1", "--lr", "0.1", "--batch-size", "4", "--s", "0.5"]  # fmt: skip
    assert main(args) == 0
    assert "misalignment = 0\n" in capsys.readouterr().out
    h_min[0][1] = h_min[1][0] = h_min[0][1] + 0.3  # now really misaligned
    assert main([*args[:3], json.dumps(h_min), *args[4:]]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "misalignment" in x)
    assert float(line.rsplit("= ", 1)[1]) > 0.01
