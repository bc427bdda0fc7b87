"""Long work shows progress (issue 15): a line with the stage and an ETA on stderr, when asked
(``progress=True``) or when the work is estimated at more than 2 s and stderr is a terminal;
silent otherwise (under pytest stderr is not a terminal, so nothing is shown by default)."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import sympy as sp

from flatminima.errors import ParameterError
from flatminima.numerics import escape_time, mfpt_1d, mfpt_2d, splitting_probability
from flatminima.theory import derive_escape_time
from flatminima.theory._progress import THRESHOLD_S, current, format_seconds, progress

x = sp.Symbol("x")
WELL = x**4 / 4 - x**2 / 2
ETA = re.compile(r"elapsed \d+:\d\d ETA ~?(\d+:\d\d|\?)")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_automatic_mode_needs_a_terminal_and_a_long_estimate() -> None:
    for stream, estimate, shown in (
        (_Terminal(), THRESHOLD_S * 5, True),
        (_Terminal(), THRESHOLD_S / 5, False),
        (io.StringIO(), THRESHOLD_S * 5, False),  # a pipe or a log: quiet unless asked
    ):
        with progress("work", estimate, None, stream=stream) as line:
            line.update("stage", 1, 4)
        assert bool(stream.getvalue()) is shown, (estimate, stream.getvalue())
    terminal = _Terminal()
    with progress("work", 10.0, None, stream=terminal) as line:
        line.update("stage", 1, 4)
    assert terminal.getvalue().startswith("\r\x1b[K")  # redrawn in place
    assert terminal.getvalue().endswith("\n")  # and the line is closed at the end


def test_the_option_overrides_the_estimate_and_nested_calls_report_into_one_line() -> None:
    stream = io.StringIO()
    with progress("outer", 0.0, True, stream=stream) as line:
        line.update("stage one", 1, 4)
        with progress("inner", 100.0, None, stream=stream) as inner:
            inner.update("inner stage", 3)
            current().detail("detail from deep inside")
        assert "detail from deep inside" in line.line()
    text = stream.getvalue()
    assert "outer: stage one 1/4 (25%)" in text and "inner:" not in text
    quiet = io.StringIO()
    with progress("work", 100.0, False, stream=quiet) as line:
        line.update("stage", 1, 2)
    assert quiet.getvalue() == ""


def test_eta_is_measured_once_units_are_counted_and_estimated_before() -> None:
    stream = io.StringIO()
    with progress("work", 3600.0, True, stream=stream) as line:
        line.update("adaptive", 5)  # no total: the rest of the estimate, marked ~
        assert "ETA ~0:59:59" in line.line() or "ETA ~1:00:00" in line.line()
        line.start -= 10.0  # 10 s spent on 1 unit of 3: 20 s to go
        line.update("counted", 1, 3)
        assert re.search(r"ETA 0:(19|20|21)\b", line.line()), line.line()
    assert format_seconds(3725) == "1:02:05" and format_seconds(65) == "1:05"


@pytest.mark.parametrize("bad", ["yes", 1, 0.5])
def test_a_bad_progress_option_is_named(bad) -> None:
    with pytest.raises(ParameterError, match=r"^progress"):
        mfpt_1d(WELL, sp.Rational(1, 4), start=-1, end="0.5", dps=15, progress=bad)


def test_mfpt_1d_shows_progress_when_asked_and_is_silent_otherwise(capsys) -> None:
    quiet = mfpt_1d(WELL, sp.Rational(1, 4), start=-1, end="0.5", dps=15)
    assert capsys.readouterr().err == ""
    shown = mfpt_1d(WELL, sp.Rational(1, 4), start=-1, end="0.5", dps=15, progress=True)
    err = capsys.readouterr().err
    assert err.startswith("mfpt_1d: computing") and "panels built" in err, err
    assert ETA.search(err), err
    assert shown.value == quiet.value  # the display does not change the result


def test_verify_reports_its_checks_as_stages(capsys) -> None:
    splitting_probability(WELL, sp.Rational(1, 4), "0.1", -1, 1, dps=15, verify=True)
    assert capsys.readouterr().err == ""
    splitting_probability(WELL, sp.Rational(1, 4), "0.1", -1, 1, dps=15, verify=True, progress=True)
    err = capsys.readouterr().err
    assert err.startswith("splitting_probability: first computation"), err
    assert "splitting_probability: done in" in err, err
    assert ETA.search(err)


def test_mfpt_2d_shows_the_levels(capsys) -> None:
    arguments = {
        "bounds": ((-2, 2), (-1, 1)),
        "shape": (8, 8),
        "start": (-1, 0),
        "absorbing": lambda px, py: px > 0.5,
        "levels": 2,
    }
    loss = lambda px, py: (px**2 - 1) ** 2 + py**2  # noqa: E731
    mfpt_2d(loss, 0.5, **arguments)
    assert capsys.readouterr().err == ""
    mfpt_2d(loss, 0.5, progress=True, **arguments)
    err = capsys.readouterr().err
    assert "mfpt_2d: grid 8×8 (level 1/2) (0%)" in err, err
    assert err.endswith("\n") and "mfpt_2d: done in 0:0" in err, err


def test_escape_time_and_derivations_show_progress_when_asked(capsys, monkeypatch) -> None:
    a, b = np.diag([2.0, 5.0, 3.0]), np.diag([-1.0, 3.0, 4.0])
    escape_time("white", hess_min=a, hess_saddle=b, barrier=1, diffusion=0.1, dps=15)
    assert capsys.readouterr().err == ""
    escape_time("white", hess_min=a, hess_saddle=b, barrier=1, diffusion=0.1, dps=15, progress=True)
    assert "escape_time: eigen-data of the Hessians" in capsys.readouterr().err
    # a derivation not yet cached (the disk cache off, the in-process cache cleared)
    from flatminima.theory import _derive

    monkeypatch.setenv("FLATMINIMA_CACHE_DIR", "off")
    _derive._derive.cache_clear()
    derive_escape_time("white", saddles=3, progress=True)
    err = capsys.readouterr().err
    assert "derive_escape_time: quasi-potential barriers" in err, err
    assert "derive_escape_time: done in" in err
