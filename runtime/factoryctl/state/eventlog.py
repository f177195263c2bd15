"""The experiment log: an append-only JSONL file many processes write at once.

Writers take an exclusive flock, repair a torn last line left by a crashed writer, and
append each event with one write() on an O_APPEND descriptor, checking its length.
Readers never lock: they read from the end in blocks (so the last N events cost the
same on a huge log as on a small one) and skip any line that does not parse.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from factoryctl.core import jsonio
from factoryctl.core.clock import format_ts, utcnow
from factoryctl.core.defaults import BOT_READ_BYTES, LOG_READ_BLOCK, PRIVATE_FILE_MODE, SECRET_ENV
from factoryctl.core.errors import FactoryError

TS_PREFIX = b'{"ts":"'  # every line the writer appends starts so, its timestamp right after
TS_AT = len(TS_PREFIX)


@dataclass(frozen=True)
class Event:
    ts: str
    type: str
    session: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"ts": self.ts, "type": self.type, "session": self.session, "data": dict(self.data)}

    @classmethod
    def from_line(cls, line: bytes) -> Event | None:
        """The event on one line, or None for a line that is not one (torn, hand-edited)."""
        try:
            obj = jsonio.loads(line)
        except ValueError:
            return None
        if not isinstance(obj, dict) or not isinstance(obj.get("ts"), str):
            return None
        kind, session, data = obj.get("type"), obj.get("session"), obj.get("data", {})
        if not isinstance(kind, str) or not isinstance(data, dict):
            return None
        return cls(ts=obj["ts"], type=kind, session=session if isinstance(session, str) else None, data=data)


@dataclass(frozen=True)
class EventFilter:
    """Which events a reader wants; `since`/`until` are timestamps as the log writes them."""

    types: frozenset[str] = frozenset()
    session: str | None = None
    since: str | None = None
    until: str | None = None

    def needles(self) -> tuple[bytes, ...]:
        # Bytes a matching line must contain: a cheap test before json.loads.
        return tuple(t.encode() for t in self.types)

    def matches(self, event: Event) -> bool:
        if self.types and event.type not in self.types:
            return False
        if self.session is not None and event.session != self.session:
            return False
        if self.since is not None and event.ts < self.since:
            return False
        return not (self.until is not None and event.ts > self.until)


class EventLog:
    """Append events, read the newest ones first, follow new ones as they come.

    A cursor (`end_cursor`, `read_after`) is an opaque position a reader keeps (the bot, the
    page): here a byte offset into the file; in PostgreSQL an event id.
    """

    kind = "files"

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], datetime] = utcnow,
        secrets: Iterable[str] | None = None,
    ) -> None:
        self.path = path
        self.clock = clock
        if secrets is None:
            secrets = (os.environ.get(name, "") for name in SECRET_ENV)
        # Secrets never reach the log, whatever a caller puts in an event.
        self._secrets = tuple(s for s in secrets if len(s) >= 8)

    @property
    def torn_file(self) -> Path:
        return self.path.with_name(self.path.name + ".torn")

    def append(self, type: str, *, session: str | None = None, data: Mapping[str, Any] | None = None) -> Event:
        if not type:
            raise FactoryError("an event needs a type")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._repair_torn_tail(fd)
            # The timestamp is taken under the lock, so the file is in time order.
            event = Event(ts=format_ts(self.clock()), type=type, session=session, data=dict(data or {}))
            line = self._redact(json.dumps(event.as_dict(), ensure_ascii=False, separators=(",", ":"), default=str))
            payload = (line + "\n").encode("utf-8")
            stat = os.fstat(fd)
            size = stat.st_size
            if stat.st_mode & 0o777 & ~PRIVATE_FILE_MODE:  # a log an older version left world-readable
                with contextlib.suppress(OSError):
                    os.fchmod(fd, PRIVATE_FILE_MODE)
            written = os.write(fd, payload)
            if written != len(payload):
                os.ftruncate(fd, size)  # never leave half an event behind (disk full)
                raise FactoryError(f"{self.path}: short write ({written} of {len(payload)} bytes); is the disk full?")
            return event
        finally:
            os.close(fd)  # closing drops the flock

    def _redact(self, line: str) -> str:
        for secret in self._secrets:
            line = line.replace(secret, "***")
        return line

    def _repair_torn_tail(self, fd: int) -> None:
        """A crash mid-write can leave a line with no newline: move it aside, truncate."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        cut = _last_newline(lambda start, n: os.pread(fd, n, start), size) + 1
        torn = os.pread(fd, size - cut, cut)
        with open(self.torn_file, "ab") as aside:
            aside.write(format_ts(self.clock()).encode() + b" " + torn + b"\n")
        os.ftruncate(fd, cut)

    # -- reading -------------------------------------------------------------------

    def iter_reverse(self, flt: EventFilter | None = None) -> Iterator[Event]:
        """Events newest first; stops early once `since` is passed (the log is in time order)."""
        flt = flt or EventFilter()
        needles = flt.needles()
        since = flt.since.encode() if flt.since is not None else None
        for raw in _lines_reverse(self.path):
            if needles and not any(n in raw for n in needles):
                # Not wanted, but it still says how far back we are: the writer puts "ts" first.
                if since is not None and raw.startswith(TS_PREFIX) and raw[TS_AT : TS_AT + len(since)] < since:
                    return
                continue
            event = Event.from_line(raw)
            if event is None:
                continue
            if flt.since is not None and event.ts < flt.since:
                return
            if flt.matches(event):
                yield event

    def tail(self, n: int = 50, flt: EventFilter | None = None) -> list[Event]:
        """The last n matching events, oldest first."""
        out: list[Event] = []
        if n <= 0:
            return out
        for event in self.iter_reverse(flt):
            out.append(event)
            if len(out) >= n:
                break
        out.reverse()
        return out

    def iter_forward(self) -> Iterator[Event]:
        """Every event, oldest first (a line that does not parse is skipped)."""
        try:
            with open(self.path, "rb") as fh:
                for raw in fh:
                    if raw.endswith(b"\n") and (event := Event.from_line(raw)) is not None:
                        yield event
        except FileNotFoundError:
            return

    def end_cursor(self) -> int:
        """The cursor after the last event: a reader starting here sees only new ones."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def cursor_before(self, ts: str) -> int:
        """A cursor at or before the first event at or after `ts` (here: the start of the file)."""
        return 0

    def read_after(self, cursor: int, limit: int = BOT_READ_BYTES) -> tuple[list[Event], int]:
        """The complete events after `cursor` (at most `limit` bytes of them) and the cursor after them."""
        try:
            with open(self.path, "rb") as fh:
                size = fh.seek(0, 2)
                if size < cursor:  # replaced or truncated: start over from its beginning
                    cursor = 0
                fh.seek(cursor)
                chunk = fh.read(min(limit, size - cursor))
        except FileNotFoundError:
            return [], 0
        end = chunk.rfind(b"\n")
        if end < 0:
            if len(chunk) >= limit:  # one absurd line: skip it rather than stall forever
                return [], cursor + len(chunk)
            return [], cursor
        events = [e for line in chunk[: end + 1].split(b"\n") if line and (e := Event.from_line(line)) is not None]
        return events, cursor + end + 1

    def follow(
        self,
        flt: EventFilter | None = None,
        *,
        poll_s: float = 0.5,
        stop: Callable[[], bool] = lambda: False,
    ) -> Iterator[Event]:
        """Events appended from now on, as they come (like `tail -f`)."""
        flt = flt or EventFilter()
        pos = self.path.stat().st_size if self.path.exists() else 0
        pending = b""
        while not stop():
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size < pos:  # truncated or replaced: start over
                pos, pending = 0, b""
            if size > pos:
                with open(self.path, "rb") as fh:
                    fh.seek(pos)
                    chunk = fh.read(size - pos)
                pos = size
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    event = Event.from_line(raw)
                    if event is not None and flt.matches(event):
                        yield event
            else:
                time.sleep(poll_s)


def _lines_reverse(path: Path) -> Iterator[bytes]:
    """Complete lines of a file, last first; a last line with no newline is torn: skipped."""
    try:
        with open(path, "rb") as fh:
            yield from _blocks_reverse(fh)
    except FileNotFoundError:
        return


def _blocks_reverse(fh: BinaryIO) -> Iterator[bytes]:
    pos = max(0, _last_newline(lambda start, n: _read_at(fh, start, n), fh.seek(0, os.SEEK_END)))
    rest = b""
    while pos > 0:
        start = max(0, pos - LOG_READ_BLOCK)
        fh.seek(start)
        lines = (fh.read(pos - start) + rest).split(b"\n")
        pos = start
        # The first piece may continue in the block before this one.
        rest = lines.pop(0) if pos > 0 else b""
        for line in reversed(lines):
            if line:
                yield line


def _read_at(fh: BinaryIO, start: int, n: int) -> bytes:
    fh.seek(start)
    return fh.read(n)


def _last_newline(read_at: Callable[[int, int], bytes], end: int) -> int:
    """Offset of the last newline before `end` (-1 if none): what follows it is torn or empty."""
    while end > 0:
        start = max(0, end - LOG_READ_BLOCK)
        nl = read_at(start, end - start).rfind(b"\n")
        if nl >= 0:
            return start + nl
        end = start
    return -1
