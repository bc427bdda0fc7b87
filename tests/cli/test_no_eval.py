"""No input is ever evaluated as code: every option of every subcommand, a JSON file, a .npy
file (pickled or of strings) and a points.jsonl line, each given strings that would create a
marker file if anything ran them through eval/exec/sympify. Nothing is created, and each
command answers with one line ``flatminima: error: …`` and exit status 2.

The options are read from the parser itself, so an option added later is covered too."""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flatminima.cli import build_parser, main

PAYLOADS = (
    "__import__('os').system('touch {marker}')",
    "__import__('pathlib').Path('{marker}').touch()",  # no spaces: passes whitespace checks
    "exec(\"open('{marker}','w')\")",
    "lambda: open('{marker}', 'w')",
)

FACTORY = Path(__file__).with_name("probe_factory.py")  # a tiny least-squares model

#: A valid command line per subcommand and noise model; the payload replaces one value.
BASES: dict[str, list[list[str]]] = {
    "formula": [["formula", "white"]],
    "scaling": [["scaling", "sgd"]],
    "evaluate": [
        ["evaluate", "white", "--hess-min", "2", "--hess-saddle", "-3", "--barrier", "1",
         "--diffusion", "0.1"],
        ["evaluate", "sgd", "--hess-min", "2", "--hess-saddle", "-3", "--barrier", "1",
         "--lr", "0.1", "--batch-size", "10", "--s", "0.5"],
        ["evaluate", "loss-dependent", "--hess-min", "2", "--hess-saddle", "-3",
         "--loss-min", "0.1", "--loss-saddle", "1.1", "--h-star", "2", "--lr", "0.1",
         "--batch-size", "10"],
        ["evaluate", "white", "--landscape", "(x**2-1)**2 + y**2 + x*y/2", "--variables", "x,y",
         "--minimum", "1,-0.25", "--saddle", "0,0", "--diffusion", "0.1", "--points", "8"],
        ["evaluate", "white", "--landscape", "(x**2-1)**2 + y**2 + x*y/2", "--minimum",
         "1,-0.25", "--other-minimum", "-1,0.25", "--diffusion", "0.1", "--points", "8"],
    ],
    "validate": [["validate", "covariance", "--quick", "--out", "{out}"]],
    "report": [["report", "--quick", "--out", "{out}"]],
    "probe": [["probe", f"{FACTORY}:make", "--lr", "0.1", "--batch-size", "4", "--k", "2",
               "--out", "{out}"]],
}  # fmt: skip


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _value_options(sub: argparse.ArgumentParser) -> list[argparse.Action]:
    """Every argument that takes a value (positional or option), not flags or --help."""
    return [
        a
        for a in sub._actions
        if a.nargs != 0 and not isinstance(a, argparse._HelpAction | argparse._VersionAction)
    ]


def _cases() -> list[tuple[str, str]]:
    cases = []
    for name, sub in _subparsers().items():
        for action in _value_options(sub):
            cases.append((name, action.option_strings[0] if action.option_strings else action.dest))
    return cases


def _argv(name: str, option: str, value: str, out: str) -> list[str]:
    """The base command line where ``option`` is given (or replaced) as ``value``."""
    sub = _subparsers()[name]
    bases = [[x.format(out=out) for x in base] for base in BASES[name]]
    if not option.startswith("-"):  # a positional: the word after the command
        position = [a.dest for a in sub._actions if not a.option_strings].index(option)
        argv = list(bases[0])
        argv[1 + position] = value
        return argv
    for base in bases:  # the base in which this option is meaningful, else the first
        if option in base:
            argv = list(base)
            argv[argv.index(option) + 1] = value
            return argv
    return [*bases[0], option, value]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        status = exc.code if isinstance(exc.code, int) else 1
    return status, capsys.readouterr().err


def _assert_one_line_error(status: int, err: str, argv: list[str]) -> None:
    # probe's progress lines ("[    0.0 s] loading …") are not error lines
    lines = [ln for ln in err.strip().splitlines() if not re.match(r"\[\s*[\d.]+ s\] ", ln)]
    assert status == 2, (argv, status, err[-2000:])
    assert len(lines) == 1 and lines[0].startswith("flatminima: error: "), (argv, err[-2000:])


def test_every_value_option_is_covered() -> None:
    cases = _cases()
    for name in BASES:
        assert any(case[0] == name for case in cases)
    # a new subcommand that takes a value needs a base command line (`experiments` takes none)
    assert set(BASES) == {n for n, sub in _subparsers().items() if _value_options(sub)}
    assert len(cases) >= 30, cases


@pytest.mark.parametrize(("command", "option"), _cases())
def test_no_option_is_evaluated(
    command: str, option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "PWNED"
    blocker = tmp_path / "a-file"  # an --out under a file cannot be created: a prompt error
    blocker.write_text("")
    for payload in PAYLOADS:
        value = payload.format(marker=marker)
        if option == "--out":
            value = f"{blocker}/{value}"
        argv = _argv(command, option, value, out=str(tmp_path / "out"))
        status, err = _run(argv, capsys)
        assert not marker.exists(), f"{argv} ran the payload"
        _assert_one_line_error(status, err, argv)


def test_base_command_lines_are_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """So that each error above comes from the payload, not from a broken base (the cheap
    commands only: validate and report bases run experiments)."""
    for name in ("formula", "scaling", "evaluate", "probe"):
        for base in BASES[name]:
            argv = [x.format(out=tmp_path / "out") for x in base]
            status, err = _run(argv, capsys)
            assert status == 0, (argv, err)
    assert not Path("{out}").exists()  # the placeholder is never a folder name


class _Boom:
    """Unpickling this creates the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_matrix_files_are_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "PWNED"
    files = []
    json_file = tmp_path / "h.json"
    json_file.write_text(json.dumps([[p.format(marker=marker)] for p in PAYLOADS[:1]]))
    files.append(json_file)
    strings = tmp_path / "strings.npy"
    np.save(strings, np.array([[PAYLOADS[0].format(marker=marker)]]))
    files.append(strings)
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([[_Boom(marker)]], dtype=object), allow_pickle=True)
    files.append(pickled)
    # a .npy with another suffix is still not unpickled (read as JSON text: an error)
    disguised = tmp_path / "pickled.txt"
    disguised.write_bytes(pickled.read_bytes())
    files.append(disguised)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Boom(marker)))
    files.append(raw)
    for file in files:
        for option in ("--hess-min", "--hess-saddle"):
            argv = _argv("evaluate", option, str(file), out="")
            status, err = _run(argv, capsys)
            assert not marker.exists(), f"{argv} ran the payload"
            _assert_one_line_error(status, err, argv)


def test_points_file_lines_are_data(tmp_path: Path) -> None:
    """points.jsonl is read back by every rerun: its strings are data, never code."""
    from flatminima.validation import PointStore, RecordWarning

    marker = tmp_path / "PWNED"
    store = PointStore(tmp_path / "points.jsonl")
    payload = PAYLOADS[0].format(marker=marker)
    store.append({"task": payload, "seed": payload}, {"value": payload})
    with (tmp_path / "points.jsonl").open("a") as handle:
        handle.write(json.dumps({"key": payload, "point": payload, "result": payload}) + "\n")
    with pytest.warns(RecordWarning, match="points.jsonl:2"):
        records = store.load()
    assert [r["result"]["value"] for r in records.values()] == [payload]
    assert not marker.exists()
