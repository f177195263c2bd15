"""A sliding window of the log kept in memory, for a long-lived reader (the HTTP server).

The first read takes the window from the end of the log; later reads parse only the
bytes appended since (the log only grows), so a request costs what was written since
the last one, not the window. Events are kept slim (`shrink` drops what the reader does
not use), and those older than the window are dropped. A log that shrank (replaced,
truncated) is read again from its end.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from factoryctl.core.clock import format_ts
from factoryctl.state.eventlog import TS_AT, TS_PREFIX, Event, EventLog

BLOCK = 1 << 20  # bytes read at a time while looking for the window's start


class Window:
    """The events of `types` from `span` ago to now; `events(since)` returns them oldest first."""

    def __init__(
        self,
        log: EventLog,
        types: frozenset[str],
        span: timedelta,
        shrink: Callable[[Mapping[str, Any]], Mapping[str, Any]] = dict,
    ) -> None:
        self.log = log
        self.types = types
        self.span = span
        self.shrink = shrink
        self._events: list[Event] = []
        self._offset = -1  # bytes of the log already read; -1: nothing yet
        self._inode: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def events(self, now: datetime, since: datetime | None = None) -> list[Event]:
        """The kept events at or after `since` (default: the whole window), oldest first."""
        with self._lock:
            self._refresh(now)
            lo = format_ts(since) if since is not None else ""
            if not lo:
                return list(self._events)
            # Kept in time order: find the first one at or after `lo`.
            start = _first_at_or_after(self._events, lo)
            return self._events[start:]

    def _refresh(self, now: datetime) -> None:
        edge = format_ts(now - self.span)
        if self.log.kind != "files":
            self._refresh_by_cursor(edge)
            return
        try:
            st = os.stat(self.log.path)
        except FileNotFoundError:
            self._events, self._offset, self._inode = [], 0, None
            return
        inode = (st.st_dev, st.st_ino)
        if self._offset < 0 or inode != self._inode or st.st_size < self._offset:
            self._reload(edge, st.st_size, inode)
        elif st.st_size > self._offset:
            self._read_appended(st.st_size)
        if self._events and self._events[0].ts < edge:
            self._events = self._events[_first_at_or_after(self._events, edge) :]

    def _refresh_by_cursor(self, edge: str) -> None:
        """A log that is not a file (PostgreSQL): read what came after the cursor, by id."""
        if self._offset < 0:
            self._events = []
            self._offset = self.log.cursor_before(edge)
        while True:
            events, cursor = self.log.read_after(self._offset)
            self._events.extend(self._slim(e) for e in events if e.type in self.types)
            if cursor == self._offset:
                break
            self._offset = cursor
        if self._events and self._events[0].ts < edge:
            self._events = self._events[_first_at_or_after(self._events, edge) :]

    def _reload(self, edge: str, size: int, inode: tuple[int, int]) -> None:
        """Read forward from the first block that starts before `edge` up to `size`."""
        self._events, self._inode = [], inode
        self._offset = _start_before(self.log.path, edge.encode(), size)
        self._read_appended(size)

    def _read_appended(self, size: int) -> None:
        """Parse the complete lines between the offset and `size`, a block at a time."""
        with open(self.log.path, "rb") as fh:
            fh.seek(self._offset)
            rest = b""
            while self._offset + len(rest) < size:
                chunk = rest + fh.read(min(BLOCK * 4, size - self._offset - len(rest)))
                end = chunk.rfind(b"\n") + 1  # a torn or half-written last line waits
                if end == 0:
                    if len(chunk) == len(rest):
                        break
                    rest = chunk
                    continue
                for line in chunk[:end].splitlines():
                    event = self._wanted(line)
                    if event is not None:
                        self._events.append(self._slim(event))
                self._offset += end
                rest = chunk[end:]

    def _wanted(self, line: bytes) -> Event | None:
        if not any(t.encode() in line for t in self.types):
            return None
        event = Event.from_line(line)
        return event if event is not None and event.type in self.types else None

    def _slim(self, event: Event) -> Event:
        session = sys.intern(event.session) if event.session is not None else None
        return Event(event.ts, sys.intern(event.type), session, self.shrink(event.data))


def _first_at_or_after(events: list[Event], ts: str) -> int:
    lo, hi = 0, len(events)
    while lo < hi:
        mid = (lo + hi) // 2
        if events[mid].ts < ts:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _start_before(path: os.PathLike[str] | str, edge: bytes, size: int) -> int:
    """The offset of a line start at or before the first line with ts >= edge (0 if none is older)."""
    pos = size
    with open(path, "rb") as fh:
        while pos > 0:
            start = max(0, pos - BLOCK)
            fh.seek(start)
            block = fh.read(pos - start)
            if start == 0:
                return 0
            first = block.find(b"\n") + 1
            if first == 0:  # a line longer than a block: look further back
                pos = start
                continue
            line_start = start + first
            head = block[first : first + TS_AT + len(edge)]
            if head.startswith(TS_PREFIX) and head[TS_AT:] < edge:
                return line_start
            pos = line_start
    return 0
