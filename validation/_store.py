"""The on-disk store of a sweep: checksummed JSON lines, and a claim per point in flight.

``points.jsonl`` holds one record per finished point::

    {"key": <canonical text of the point>, "point": {...}, "result": {...}, "sha256": "<hex>"}

``sha256`` is the SHA-256 of the canonical JSON text (sorted keys, no spaces, ASCII) of the
other three fields. Reading the file back, a line is used only if it is valid UTF-8, a JSON
object with those four fields, its key is the canonical text of its point, and the checksum
matches. Any other line (``{}``, ``null``, a bad byte, a hand-edited number, a line cut short
by a kill) is rejected with one [`RecordWarning`][flatminima.validation.RecordWarning] naming the
file and line, moved to ``points.jsonl.rejected`` (kept for inspection) and its point is
recomputed. The checksum detects accidents and hand edits; it is not a signature against
someone who recomputes it on purpose.

Concurrency: appends and the rewrite that drops rejected lines hold an exclusive ``flock`` on
``points.jsonl``; readers hold a shared one. A point being computed is *claimed*: an exclusive
``flock`` on ``points.jsonl.claims/<hash>.lock``, held by the sweep process until the record is
written. A second sweep on the same folder skips claimed points, waits for their records, and
computes them itself if the claim goes away without a record (the first sweep was killed: the
kernel releases a dead process's locks). Where ``fcntl`` is missing (Windows) there is no
locking: concurrent sweeps then repeat work but stay correct.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flatminima.errors import ParameterError

from ._registry import JSONRecord

try:  # POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Claim", "OutputError", "PointStore", "RecordWarning", "point_key", "record_checksum"]


_WARN_LINES = 10  # rejected lines warned about one by one; beyond, one warning for the rest


class OutputError(ParameterError):
    """The output folder or one of its files cannot be created, read or written."""


class RecordWarning(RuntimeWarning):
    """A line of ``points.jsonl`` was rejected (malformed, edited or cut short); its point is
    recomputed."""


def point_key(point: JSONRecord) -> str:
    """Canonical text of a point: the identity under which its result is stored."""
    return json.dumps(point, sort_keys=True, separators=(",", ":"))


def record_checksum(key: str, point: JSONRecord, result: JSONRecord) -> str:
    """SHA-256 (hex) of the canonical JSON text of ``{"key", "point", "result"}``."""
    text = json.dumps(
        {"key": key, "point": point, "result": result},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _lock(fd: int, exclusive: bool, blocking: bool = True) -> bool:
    """flock ``fd``; False when ``blocking`` is False and another holder has it."""
    if fcntl is None:  # pragma: no cover - Windows
        return True
    flags = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    if not blocking:
        flags |= fcntl.LOCK_NB
    try:
        fcntl.flock(fd, flags)
    except BlockingIOError:
        return False
    return True


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not replaced or removed)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


class Claim:
    """An exclusive lock on one point, held while it is computed; `release` removes it."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    def release(self) -> None:
        if self._fd is None:
            return
        # unlink while still holding the lock: a sweep that opened the old file finds, once it
        # gets the lock, that the path no longer names it, and tries again on a fresh file
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None


def _describe_line(line: bytes, last: bool) -> tuple[str, JSONRecord | None]:
    """``("", record)`` for a valid record line, else ``(reason, None)``."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte {exc.start + 1})", None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        if last:
            return "incomplete last line (a write cut short, e.g. by a kill)", None
        return "not JSON", None
    if not isinstance(record, dict) or not {"key", "point", "result"} <= set(record):
        return (
            f"not a record (expected an object with key, point, result, sha256): {_short(text)}",
            None,
        )
    if "sha256" not in record:
        return "no checksum (written by flatminima 0.1 or edited by hand)", None
    key, point, result = record["key"], record["point"], record["result"]
    if not isinstance(point, dict) or not isinstance(result, dict) or not isinstance(key, str):
        return "not a record (point and result must be objects, key a string)", None
    if record["sha256"] != record_checksum(key, point, result):
        return "checksum mismatch (edited by hand or corrupted)", None
    if key != point_key(point):
        return "key does not match its point", None
    return "", record


def caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside flatminima (the
    user's call), however deep the generators and experiment code in between."""
    files = [
        getattr(module, "__file__", None)
        for name, module in list(sys.modules.items())
        if name.split(".")[0] == "flatminima"
    ]
    ours = {Path(f).resolve().parent for f in files if f}
    frame: Any = sys._getframe(1)
    level = 1
    while frame is not None and Path(frame.f_code.co_filename).resolve().parent in ours:
        frame, level = frame.f_back, level + 1
    return level


def _short(text: str, limit: int = 60) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PointStore:
    """Append-only, checksummed JSONL of finished points, with per-point claims.

    ``load()`` returns the valid records by key (warning about, and setting aside, any other
    line); ``refresh()`` returns the valid records appended since the last read (by this or
    another process); ``append`` writes one record (flushed and fsynced, under an exclusive
    lock); ``try_claim`` takes a point for computing, or returns None if another sweep has it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.claims_dir = Path(str(self.path) + ".claims")
        self.rejected_path = Path(str(self.path) + ".rejected")
        self._offset = 0
        self._line_number = 1
        self._stat: os.stat_result | None = None
        self._seen: set[str] = set()

    # ------------------------------------------------------------------ files
    def _error(self, path: Path, what: str, exc: OSError) -> OutputError:
        reason = exc.strerror or type(exc).__name__
        return OutputError("out", what, str(path), f"{reason}: {exc.filename or path}")

    def _ensure_folder(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error(self.path.parent, "a folder that can be created", exc) from None

    @contextlib.contextmanager
    def _open_locked(self, exclusive: bool) -> Iterator[int]:
        """The store file, opened (created if missing) and flocked; reopened if a rewrite
        replaced it between the open and the lock."""
        if exclusive:
            self._ensure_folder()
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND if exclusive else os.O_RDONLY
        while True:
            try:
                fd = os.open(self.path, flags, 0o644)
            except OSError as exc:
                raise self._error(self.path, "a writable file", exc) from None
            try:
                _lock(fd, exclusive)
                if _same_file(fd, self.path):
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        try:
            yield fd
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ reading
    def load(self) -> dict[str, JSONRecord]:
        """Every valid record by key; rejected lines are warned about and set aside."""
        records: dict[str, JSONRecord] = {}
        for _ in range(3):  # a rewrite by a concurrent sweep can interleave: read again
            self._offset, self._line_number, self._stat, self._seen = 0, 1, None, set()
            if not self.path.exists():
                return records
            fresh, rejected = self._refresh()
            records.update(fresh)
            if not rejected:
                break
            self._set_aside()
        return records

    def refresh(self) -> dict[str, JSONRecord]:
        """The valid records written since the last `load`/`refresh` (by any process)."""
        if not self.path.exists():
            return {}
        records, rejected = self._refresh()
        if rejected:
            self._set_aside()
            return self.load() | records
        return records

    def _refresh(self) -> tuple[dict[str, JSONRecord], int]:
        try:
            with self._open_locked(exclusive=False) as fd:
                stat = os.fstat(fd)
                if self._stat is not None and (
                    not os.path.samestat(stat, self._stat) or stat.st_size < self._offset
                ):  # rewritten by another sweep: read it anew
                    self._offset, self._line_number, self._seen = 0, 1, set()
                self._stat = stat
                data = b""
                if stat.st_size > self._offset:
                    data = os.pread(fd, stat.st_size - self._offset, self._offset)
        except OSError as exc:
            raise self._error(self.path, "a readable file", exc) from None
        end = data.rfind(b"\n") + 1  # the complete lines; a tail without newline is re-read
        lines = [(line, False) for line in data[:end].split(b"\n")[:-1]]
        if data[end:].strip():
            lines.append((data[end:], True))
        records: dict[str, JSONRecord] = {}
        rejected = 0
        for number, (line, last) in enumerate(lines, self._line_number):
            if not line.strip():
                continue
            reason, record = _describe_line(line, last)
            if record is None:
                rejected += 1
                if rejected <= _WARN_LINES:
                    warnings.warn(
                        f"{self.path}:{number}: {reason}; line ignored (moved to "
                        f"{self.rejected_path.name}), its point is recomputed",
                        RecordWarning,
                        stacklevel=caller_stacklevel(),
                    )
            elif record["key"] not in self._seen:
                self._seen.add(record["key"])
                records[record["key"]] = record
        if rejected > _WARN_LINES:
            warnings.warn(
                f"{self.path}: {rejected - _WARN_LINES} more lines rejected (moved to "
                f"{self.rejected_path.name}), their points are recomputed",
                RecordWarning,
                stacklevel=caller_stacklevel(),
            )
        self._offset += end
        self._line_number += data[:end].count(b"\n")
        return records, rejected

    def _set_aside(self) -> None:
        """Rewrite the store without its invalid lines (appended to ``.rejected``)."""
        with self._open_locked(exclusive=True) as fd:
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0)
            lines = data.split(b"\n")
            keep: list[bytes] = []
            drop: list[bytes] = []
            for index, line in enumerate(lines):
                if not line.strip():
                    continue
                reason, _ = _describe_line(line, last=index == len(lines) - 1)
                (drop if reason else keep).append(line)
            if not drop:
                return
            try:
                with self.rejected_path.open("ab") as handle:
                    handle.write(b"".join(line + b"\n" for line in drop))
                tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
                with tmp.open("wb") as handle:
                    handle.write(b"".join(line + b"\n" for line in keep))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except OSError as exc:
                raise self._error(self.path, "a writable file", exc) from None

    # ------------------------------------------------------------------ writing
    def append(self, point: JSONRecord, result: JSONRecord) -> None:
        """Append one checksummed record (flushed and fsynced, under an exclusive lock)."""
        key = point_key(point)
        record = {
            "key": key,
            "point": point,
            "result": result,
            "sha256": record_checksum(key, point, result),
        }
        data = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
        with self._open_locked(exclusive=True) as fd:
            try:
                size = os.fstat(fd).st_size
                # a line cut short by a kill has no newline: end it, or this record is glued to it
                if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data
                os.write(fd, data)
                os.fsync(fd)
            except OSError as exc:
                raise self._error(self.path, "a writable file", exc) from None

    # ------------------------------------------------------------------ claims
    def try_claim(self, point: JSONRecord) -> Claim | None:
        """Claim ``point`` for computing: a `Claim` to release once its record is written, or
        None while another process holds it."""
        name = hashlib.sha256(point_key(point).encode("utf-8")).hexdigest()[:32] + ".lock"
        path = self.claims_dir / name
        while True:
            try:
                self.claims_dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # the folder was removed between mkdir and open
                continue
            except OSError as exc:
                raise self._error(path, "a writable claims folder", exc) from None
            if not _lock(fd, exclusive=True, blocking=False):
                os.close(fd)
                return None
            if _same_file(fd, path):
                return Claim(fd, path)
            os.close(fd)  # released and removed by its holder meanwhile: take a fresh one

    def tidy(self) -> None:
        """Remove the claims folder if no claim is left in it."""
        with contextlib.suppress(OSError):
            self.claims_dir.rmdir()
