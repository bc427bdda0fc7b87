"""The probe as a registered experiment: listed by the registry and the command line, its typed
points with a stable resume key, run by the runner (quick: one small point) and resumed, its
analysis, rows, figures and report section; the numbers against the level passages."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

pytest.importorskip("torch")

from flatminima.cli import main
from flatminima.validation import experiment_names, get_experiment, make_executor, run_experiment
from flatminima.validation._probe_experiment import ProbePoint, ProbePointResult
from flatminima.validation._registry import point_from_dict


def test_probe_is_registered_and_listed(capsys):
    assert "probe" in experiment_names()
    assert main(["experiments"]) == 0
    assert "probe: at a probed minimum, real minibatch SGD escapes" in capsys.readouterr().out


def test_points_are_typed_with_a_stable_resume_key():
    quick = get_experiment("probe").points(True, "cpu")
    full = get_experiment("probe").points(False, "cpu")
    assert len(quick) == 1 and len(full) == 2
    smaller = {"replicas": 256, "max_steps": 4000, "target_escapes": 100}
    assert quick[0] == dataclasses.replace(full[0], **smaller)  # the same case, fewer replicas
    point = quick[0]
    assert isinstance(point, ProbePoint)
    key = json.loads(point.key())
    assert key["task"] == "probe" and key["lr"] == 0.1 and "version" not in key
    assert point_from_dict(key) == point  # the stored key reads back as the same typed point
    assert point_from_dict(json.loads(full[1].key())).lr == 0.05


def test_quick_run_resumes_and_agrees_with_the_level_passages(tmp_path, capsys):
    """One quick point (256 replicas, 100 escapes): the runner stores it, a rerun (the command
    line) finds it done; measured/predicted rates as docs/probe.md reports them at 400
    escapes (level 0.65, full C 0.55, κH 1.23), within the 100-escape Poisson spread."""
    analysis = run_experiment(
        "probe", tmp_path, quick=True, executor=make_executor(workers=0), progress=False
    )
    (case,) = analysis.cases
    m = case.measured
    assert isinstance(m, ProbePointResult) and m.escapes >= 100
    assert case.held and m.agrees_level and m.agrees_full
    assert m.noise_holds and m.off_diagonal < 0.1
    spread = 2.5 / math.sqrt(m.escapes)  # ≈ 2.5 Poisson standard deviations
    for ratio, docs in ((m.ratio_level, 0.65), (m.ratio_full, 0.55), (m.ratio_kappa, 1.23)):
        assert ratio is not None and abs(math.log(ratio / docs)) < spread, (ratio, docs)
    assert m.ratio_full is not None and m.ratio_level is not None
    assert m.ratio_full < m.ratio_level  # the k-D level is reached sooner than the 1-D one
    saved = json.loads((tmp_path / "probe" / "results.json").read_text())
    assert saved["verdict"]["held"] is True and saved["figures"] == ["figures/probe_rates.png"]
    assert (tmp_path / "probe" / "figures" / "probe_rates.png").stat().st_size > 1000
    header = (tmp_path / "probe" / "results.csv").read_text().splitlines()[0]
    assert "ratio_full" in header and "lr" in header
    assert main(["validate", "probe", "--quick", "--out", str(tmp_path), "--workers", "0"]) == 0
    assert "1 of 1 points already done" in capsys.readouterr().out
    from flatminima.validation.report import _experiment_section

    html = _experiment_section(analysis, tmp_path / "probe")
    assert "Experiment: probe" in html and "full-C k-D level" in html
