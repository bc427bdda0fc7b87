"""Progress of a sweep: a tqdm bar on a terminal (when tqdm is installed), plain lines otherwise.

Plain lines (logs, CI, pipes, or no tqdm) read
``[batch-size 2/5] 3/12 (25%) elapsed 0:12 ETA 0:36 | noise=sgd B=0.02 escapes=412 (1.2 s)``.
Numbers in a point are rounded to 4 significant digits (``lr=0.3889``, not the float's repr).
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ._registry import JSONRecord, Point

__all__ = ["Progress", "format_point", "format_seconds"]

_SHOWN = ("model", "dataset", "landscape", "noise", "state", "k", "lr", "eta", "batch_size", "B")


def format_seconds(seconds: float) -> str:
    """``h:mm:ss`` (or ``m:ss`` under an hour)."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _round(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_point(point: Point, result: JSONRecord | None = None) -> str:
    """A point's identity (its fields as in its resume key) and main result (the stored JSON
    record: its escapes and seconds) as ``key=value`` words, floats to 4 digits."""
    fields = point.to_dict()
    words = [f"{k}={_round(fields[k])}" for k in _SHOWN if k in fields]
    if result is not None:
        if "escapes" in result:
            words.append(f"escapes={result['escapes']}")
        if "seconds" in result:
            words.append(f"({float(result['seconds']):.1f} s)")
    return " ".join(words)


class Progress:
    """Counts finished points; shows count, percentage, elapsed time and ETA.

    Parameters
    ----------
    total
        Number of points to run.
    label
        Shown before the counts (e.g. ``"batch-size 2/5"``).
    stream
        Where plain lines go (default ``sys.stdout``); tqdm writes to ``sys.stderr``.
    bar
        True: a tqdm bar; False: plain lines; None (default): a bar when tqdm is installed and
        the stream is a terminal.
    """

    def __init__(
        self, total: int, label: str, stream: TextIO | None = None, bar: bool | None = None
    ) -> None:
        self.total, self.label = total, label
        self.stream = stream if stream is not None else sys.stdout
        self.count = 0
        self.start = time.perf_counter()
        self._bar: Any = None
        if bar is None:
            bar = bool(getattr(self.stream, "isatty", lambda: False)())
        if bar and total:
            try:
                from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]
            except ImportError:
                pass
            else:
                self._bar = tqdm(total=total, desc=label, unit="point", dynamic_ncols=True)

    def line(self, detail: str = "") -> str:
        """The plain progress line for the current count."""
        elapsed = time.perf_counter() - self.start
        share = self.count / self.total if self.total else 1.0
        eta = elapsed / self.count * (self.total - self.count) if self.count else None
        text = (
            f"[{self.label}] {self.count}/{self.total} ({share:.0%}) "
            f"elapsed {format_seconds(elapsed)} ETA {'?' if eta is None else format_seconds(eta)}"
        )
        return f"{text} | {detail}" if detail else text

    def update(self, detail: str = "") -> None:
        """One more point finished; ``detail`` says which."""
        self.count += 1
        if self._bar is not None:
            self._bar.set_postfix_str(detail, refresh=False)
            self._bar.update(1)
        else:
            print(self.line(detail), file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
