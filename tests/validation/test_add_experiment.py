"""The "How to add an experiment" steps of docs/architecture.md, followed literally: the page's
code defines and registers a tiny experiment; the runner, the command line and the report then
find and run it. And the resume key: a point stored by the old code (a hand-written dict of the
shape it wrote) is found by the new typed points; a field added with a default keeps stored
results valid; a version bump invalidates them."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

pytest.importorskip("torch")

from flatminima.cli import main
from flatminima.validation import (
    Point,
    PointStore,
    Result,
    _registry,
    added,
    experiment_names,
    make_executor,
    run_experiment,
)

DOC = Path(__file__).parents[2] / "docs" / "architecture.md"


@pytest.fixture
def coin(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Run the page's code block (it registers ``coin``); unregistered afterwards."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## How to add an experiment") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    monkeypatch.setattr(_registry, "_EXPERIMENTS", dict(_registry._EXPERIMENTS))
    module = types.ModuleType("coin_experiment")  # the one module an experiment is
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(block.group(1), "architecture.md", "exec"), module.__dict__)
    return module.__dict__


def test_the_documented_experiment_runs_through_runner_cli_and_report(coin, tmp_path, capsys):
    assert "coin" in experiment_names()
    analysis = run_experiment(
        "coin", tmp_path, quick=True, executor=make_executor(workers=0), progress=False
    )
    # the numbers are the point's own: 4 × 1000 binomial draws with the documented seeds
    import numpy as np

    heads = sum(int(np.random.default_rng(s).binomial(1000, 0.5)) for s in range(4))
    (case,) = analysis.cases
    assert case.fraction == heads / 4000 and case.held
    saved = json.loads((tmp_path / "coin" / "results.json").read_text())
    assert saved["verdict"]["held"] is True and saved["cases"][0]["fraction"] == heads / 4000
    assert len((tmp_path / "coin" / "points.jsonl").read_text().splitlines()) == 4
    # the command line: listed, and run (resuming: every point is already stored)
    assert main(["experiments"]) == 0
    assert "coin: a fair coin shows heads half of the time" in capsys.readouterr().out
    assert main(["validate", "COIN", "--quick", "--out", str(tmp_path), "--workers", "0"]) == 0
    assert "4 of 4 points already done" in capsys.readouterr().out
    # the report's section for it
    from flatminima.validation.report import _experiment_section

    html = _experiment_section(analysis, tmp_path / "coin")
    assert "Experiment: coin" in html and "fair coin" in html and "heads 0." in html


def test_a_points_file_written_by_the_old_code_resumes(tmp_path) -> None:
    """The first quick covariance point, as the old code's dict (hand-written here), stored;
    the new typed point has the same key, so the sweep skips it."""
    from flatminima.validation._covariance import COVARIANCE
    from flatminima.validation._design import point_seed

    old = {
        "task": "covariance",
        "experiment": "covariance",
        "model": "logistic",
        "dataset": "two-blobs",
        "state": "minimum",
        "hidden": 8,
        "weight_decay": 1e-2,
        "batch_sizes": [4, 16, 64],
        "minibatches": 4000,
        "seed": point_seed("covariance", "logistic", "two-blobs"),
        "device": "cpu",
    }
    store = PointStore(tmp_path / "points.jsonl")
    store.append(old, {"marker": 1})
    new = COVARIANCE.points(True, "cpu")[0]
    assert new.key() in PointStore(tmp_path / "points.jsonl").load()


@dataclass
class _Count(Result):
    value: int
    seconds: float = 0.0


@dataclass(frozen=True)
class _V1(Point):
    TASK: ClassVar[str] = "test-count-v1"
    RESULT: ClassVar[type[Result]] = _Count
    n: int


@dataclass(frozen=True)
class _V1Plus(Point):  # the same point type after a field was added with a default
    TASK: ClassVar[str] = "test-count-v1"
    RESULT: ClassVar[type[Result]] = _Count
    n: int
    scale: float = added(1.0)


@dataclass(frozen=True)
class _V2(Point):  # ... and after a deliberate version bump
    TASK: ClassVar[str] = "test-count-v1"
    VERSION: ClassVar[int] = 2
    RESULT: ClassVar[type[Result]] = _Count
    n: int
    scale: float = added(1.0)


def test_added_field_keeps_the_key_and_a_version_bump_changes_it() -> None:
    old = _V1(n=3, seed=7)
    assert _V1Plus(n=3, seed=7).key() == old.key()
    assert _V1Plus(n=3, seed=7, scale=2.0).key() != old.key()  # a new value is a new point
    assert json.loads(_V1Plus(n=3, seed=7, scale=2.0).key())["scale"] == 2.0
    assert _V2(n=3, seed=7).key() != old.key()
    assert json.loads(_V2(n=3, seed=7).key())["version"] == 2
    with pytest.raises(ValueError, match="version"):
        _V2.from_dict(old.to_dict())  # a stored v1 record is not read as v2
    assert _V1Plus.from_dict(old.to_dict()) == _V1Plus(n=3, seed=7)


@_registry.point_type("test-count-decorated", _Count)
class _Decorated(Point):  # the shipped points' one-line declaration
    n: int


@dataclass(frozen=True)
class _Spelled(Point):  # ... and the class-variable form it stands for
    TASK: ClassVar[str] = "test-count-spelled"
    RESULT: ClassVar[type[Result]] = _Count
    n: int


def test_point_type_declares_what_the_class_variables_do() -> None:
    a, b = _Decorated(n=3, seed=7), _Spelled(n=3, seed=7)
    assert a.TASK == "test-count-decorated"
    assert a.RESULT is _Count
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.n = 4  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(a)] == [f.name for f in dataclasses.fields(b)]
    assert {**a.to_dict(), "task": "x"} == {**b.to_dict(), "task": "x"}
    assert _registry.point_from_dict(a.to_dict()) == a  # registered under its task
    assert _registry.point_from_dict(b.to_dict()) == b
    assert a.result_from({"value": 1}) == _Count(value=1)
