"""Progress of a sweep: counts, percentage, elapsed time and ETA; rounded numbers; plain lines
when the stream is not a terminal."""

from __future__ import annotations

import io
import re

from flatminima.validation._progress import Progress, format_point, format_seconds


def test_points_are_rounded_not_raw_dicts() -> None:
    from flatminima.validation._rate_points import RatePoint

    point = RatePoint(
        landscape="double-well",
        noise="sgd",
        lr=0.38888888888888884,
        loss_scale=1.0,
        replicas=8,
        batch_size=None,  # None fields are not in the key: not shown
        target_escapes=1,
        max_steps=1,
        k=1.5,
        seed=0,
    )
    text = format_point(point, {"escapes": 412, "seconds": 3.6123})
    assert text == "landscape=double-well noise=sgd k=1.5 lr=0.3889 escapes=412 (3.6 s)"
    assert "{" not in text and "0.3888888" not in text


def test_plain_lines_with_elapsed_and_eta(monkeypatch) -> None:
    clock = iter([100.0, 110.0, 130.0])  # start, after 1 point, after 2 points
    monkeypatch.setattr("flatminima.validation._progress.time.perf_counter", lambda: next(clock))
    stream = io.StringIO()  # not a terminal: plain lines even with tqdm installed
    progress = Progress(4, "batch-size 2/5", stream=stream)
    progress.update("B=0.01")
    progress.update("B=0.02")
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[batch-size 2/5] 1/4 (25%) elapsed 0:10 ETA 0:30 | B=0.01"
    # 30 s for 2 points: 15 s per point, 2 left → ETA 0:30
    assert lines[1] == "[batch-size 2/5] 2/4 (50%) elapsed 0:30 ETA 0:30 | B=0.02"


def test_format_seconds() -> None:
    assert format_seconds(5) == "0:05"
    assert format_seconds(3725.4) == "1:02:05"


def test_tqdm_bar_on_a_terminal_when_installed() -> None:
    import importlib.util

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    progress = Progress(3, "x", stream=Terminal())
    has_tqdm = importlib.util.find_spec("tqdm") is not None
    assert (progress._bar is not None) == has_tqdm
    progress.close()
    assert re.fullmatch(r"\[x\] 0/3 \(0%\) elapsed 0:\d\d ETA \?", progress.line())
