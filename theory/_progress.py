"""Progress of long computations on stderr, with an ETA (no tqdm, no torch: both layers use it).

A call whose work is estimated to take more than ``THRESHOLD_S`` seconds shows a line such as
``mfpt_1d: precision: again at 80 digits 3/8 (38%) | 69 panels built | elapsed 0:06 ETA 0:10``
on stderr, redrawn
in place at most twice a second, when stderr is a terminal. ``progress=True`` (an option of
the long-running functions) shows it whatever the estimate and wherever stderr goes (plain
lines then, at most one a second); ``progress=False`` never. Under pytest, in pipes and in logs
nothing is shown unless asked. Calls made inside a call that shows progress (the checks of
``verify=True``, the levels of ``mfpt_2d``) report into the same line instead of opening one.

The ETA is ``elapsed / done · (total − done)`` once some of the work, counted in known units, is
done; before that (or in an adaptive refinement whose size is not known yet) it is the
remaining part of the up-front estimate (the budget's time model), marked ``~``. The last line
says ``done in m:ss``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, TextIO

from flatminima.errors import ParameterError

__all__ = ["THRESHOLD_S", "Progress", "check_progress", "current", "format_seconds", "progress"]

#: Work estimated to take longer than this (seconds) shows progress on a terminal.
THRESHOLD_S = 2.0

#: The ``progress=`` option in force (None: automatic) and the line currently shown, if any.
_OPTION: ContextVar[bool | None] = ContextVar("flatminima_progress", default=None)
_CURRENT: ContextVar[Progress | None] = ContextVar("flatminima_progress_line", default=None)


def check_progress(value: Any) -> bool | None:
    """The ``progress=`` option: True, False or None (automatic)."""
    if value is None:
        return None
    if type(value).__name__ == "bool_" or isinstance(value, bool):
        return bool(value)
    raise ParameterError("progress", "True, False or None (automatic)", value)


def format_seconds(seconds: float) -> str:
    """``h:mm:ss`` (or ``m:ss`` under an hour)."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """One progress line: a stage (``what``, ``done`` of ``total`` units), a detail, the time.

    Created by `progress`; ``update`` and ``detail`` are cheap when nothing is shown.
    """

    def __init__(self, label: str, estimate_s: float, shown: bool, stream: TextIO) -> None:
        self.label, self.estimate_s, self.shown, self.stream = label, estimate_s, shown, stream
        self.terminal = bool(getattr(stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.what, self.done, self.note = "", 0.0, ""
        self.total: float | None = None
        self._last = -1e9
        self._drawn = False

    def update(self, what: str, done: float, total: float | None = None) -> None:
        """The current stage: ``done`` of ``total`` units (None: not known yet)."""
        self.what, self.done, self.total = what, done, total
        self._draw()

    def detail(self, note: str) -> None:
        """A detail after the stage (e.g. the panels built so far)."""
        self.note = note
        self._draw()

    def line(self) -> str:
        """The text of the line now."""
        elapsed = time.perf_counter() - self.start
        words = [f"{self.label}:"]
        if self.what:
            words.append(self.what)
        if self.total:
            share = min(self.done / self.total, 1.0)
            counted = float(self.done).is_integer() and float(self.total).is_integer()
            words.append(
                f"{self.done:.0f}/{self.total:.0f} ({share:.0%})" if counted else f"({share:.0%})"
            )
        if self.total and self.done:
            shown_eta = format_seconds(max(elapsed / self.done * (self.total - self.done), 0.0))
        else:
            shown_eta = "~" + format_seconds(max(self.estimate_s - elapsed, 0.0))
        text = " ".join(words)
        if self.note:
            text += f" | {self.note}"
        return f"{text} | elapsed {format_seconds(elapsed)} ETA {shown_eta}"

    def _draw(self) -> None:
        if not self.shown:
            return
        now = time.perf_counter()
        interval = 0.5 if self.terminal else 1.0
        if self._drawn and now - self._last < interval:
            return
        self._last, self._drawn = now, True
        if self.terminal:
            self.stream.write("\r\x1b[K" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        """The last line: what was done last and the time it all took."""
        if self.shown and self._drawn:
            elapsed = format_seconds(time.perf_counter() - self.start)
            last = " | ".join(part for part in (self.what, self.note) if part)
            last = f" (last: {last})" if last else ""
            text = f"{self.label}: done in {elapsed}{last}"
            self.stream.write(("\r\x1b[K" if self.terminal else "") + text + "\n")
            self.stream.flush()


class _Quiet(Progress):
    """The line of a call nested in another one: forwards its stage as the outer line's detail."""

    def __init__(self, outer: Progress, label: str) -> None:
        super().__init__(label, 0.0, False, outer.stream)
        self.outer = outer

    def update(self, what: str, done: float, total: float | None = None) -> None:
        amount = f"{done:.0f}" if total is None else f"{done:.0f}/{total:.0f}"
        self.outer.detail(f"{what} {amount}".strip())

    def detail(self, note: str) -> None:
        self.outer.detail(note)

    def close(self) -> None:
        return


@contextlib.contextmanager
def progress(
    label: str, estimate_s: float, option: Any = None, stream: TextIO | None = None
) -> Iterator[Progress]:
    """The progress line of one call (see the module docstring for when it is shown).

    ``option`` is the call's ``progress=`` argument; None inherits an enclosing call's.
    """
    chosen = check_progress(option)
    outer = _CURRENT.get()
    if outer is not None and chosen is None:
        yield _Quiet(outer, label)
        return
    if chosen is None:
        chosen = _OPTION.get()
    target = stream if stream is not None else sys.stderr
    if chosen is None:
        terminal = bool(getattr(target, "isatty", lambda: False)())
        shown = terminal and estimate_s > THRESHOLD_S
    else:
        shown = chosen
    line = Progress(label, estimate_s, shown, target)
    token = _CURRENT.set(line if shown else None)
    option_token = _OPTION.set(chosen if chosen is not None else None)
    try:
        yield line
    finally:
        _OPTION.reset(option_token)
        _CURRENT.reset(token)
        line.close()


def current() -> Progress:
    """The line of the call being shown, or a silent one: inner code reports without asking."""
    line = _CURRENT.get()
    return line if line is not None else _SILENT


_SILENT = Progress("", 0.0, False, sys.stderr)
