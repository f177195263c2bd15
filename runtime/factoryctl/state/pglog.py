"""The experiment log as PostgreSQL's `factory_events` table: the file log's reads and writes.

Appends take one transaction-level advisory lock, so ids are committed in the order they are
given and a cursor reader (the bot, the page) never skips an event that committed late; reads
page from the end by id with the filter applied by the server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import PurePath
from typing import Any

from factoryctl.core import jsonio
from factoryctl.core.clock import format_ts, utcnow
from factoryctl.core.errors import FactoryError
from factoryctl.state.eventlog import Event, EventFilter, EventLog
from factoryctl.state.postgres import LOG_KEY, PgBackend, no_nul, to_json

PAGE = 500  # events fetched at a time when reading from the end
READ_AFTER_ROWS = 1000  # events a cursor reader gets per call


class PgEventLog(EventLog):
    """The experiment log as the `factory_events` table; the same reads and writes as the file's."""

    kind = "postgresql"

    def __init__(
        self, backend: PgBackend, *, clock: Callable[[], datetime] = utcnow, secrets: Iterable[str] | None = None
    ) -> None:
        super().__init__(PurePath("factory_events"), clock=clock, secrets=secrets)  # type: ignore[arg-type]
        self.backend = backend

    def append(self, type: str, *, session: str | None = None, data: Mapping[str, Any] | None = None) -> Event:
        if not type:
            raise FactoryError("an event needs a type")
        with self.backend.cursor() as conn, conn.transaction():
            # One writer at a time: ids are then committed in order, and timestamps too.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOG_KEY,))
            event = Event(ts=format_ts(self.clock()), type=type, session=session, data=dict(data or {}))
            body = self._redact(to_json(event.data))
            conn.execute(
                "INSERT INTO factory_events (ts, type, session, data) VALUES (%s, %s, %s, %s::jsonb)",
                (event.ts, no_nul(type), no_nul(session), body),
            )
        return event

    def _select(self, where: list[str], args: list[Any], order: str, limit: int) -> list[tuple[Any, ...]]:
        sql = "SELECT id, ts, type, session, data::text FROM factory_events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY id {order} LIMIT {int(limit)}"
        with self.backend.cursor() as conn:
            return list(conn.execute(sql, args))

    @staticmethod
    def _event(row: tuple[Any, ...]) -> Event | None:
        try:
            data = jsonio.loads(row[4])
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        return Event(ts=row[1], type=row[2], session=row[3], data=data)

    @staticmethod
    def _filters(flt: EventFilter) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        if flt.types:
            where.append("type = ANY(%s)")
            args.append(sorted(flt.types))
        if flt.session is not None:
            where.append("session = %s")
            args.append(flt.session)
        if flt.since is not None:
            where.append("ts >= %s")
            args.append(flt.since)
        if flt.until is not None:
            where.append("ts <= %s")
            args.append(flt.until)
        return where, args

    def iter_reverse(self, flt: EventFilter | None = None) -> Iterator[Event]:
        """Events newest first, a page at a time; the filter is applied by the server."""
        where, args = self._filters(flt or EventFilter())
        return self._pages(where, args, newest_first=True)

    def iter_forward(self) -> Iterator[Event]:
        return self._pages([], [], newest_first=False)

    def _pages(self, where: list[str], args: list[Any], *, newest_first: bool) -> Iterator[Event]:
        """The matching events a page at a time, each page after the last id of the one before."""
        mark: int | None = None
        while True:
            page_where, page_args = list(where), list(args)
            if mark is not None:
                page_where.append("id < %s" if newest_first else "id > %s")
                page_args.append(mark)
            rows = self._select(page_where, page_args, "DESC" if newest_first else "ASC", PAGE)
            for row in rows:
                event = self._event(row)
                if event is not None:
                    yield event
            if len(rows) < PAGE:
                return
            mark = rows[-1][0]

    def end_cursor(self) -> int:
        with self.backend.cursor() as conn:
            row = conn.execute("SELECT coalesce(max(id), 0) FROM factory_events").fetchone()
        return int(row[0]) if row else 0

    def cursor_before(self, ts: str) -> int:
        """The id just before the first event at or after `ts` (the end when there is none)."""
        with self.backend.cursor() as conn:
            row = conn.execute(
                "SELECT coalesce((SELECT min(id) - 1 FROM factory_events WHERE ts >= %s), "
                "(SELECT coalesce(max(id), 0) FROM factory_events))",
                (ts,),
            ).fetchone()
        return int(row[0]) if row else 0

    def read_after(self, cursor: int, limit: int = READ_AFTER_ROWS) -> tuple[list[Event], int]:
        """The events after the id `cursor` (at most `limit`) and the id of the last one."""
        if cursor > self.end_cursor():  # the table was emptied or replaced: start over
            cursor = 0
        rows = self._select(["id > %s"], [cursor], "ASC", min(limit, READ_AFTER_ROWS))
        events = [e for row in rows if (e := self._event(row)) is not None]
        return events, (rows[-1][0] if rows else cursor)

    def follow(
        self, flt: EventFilter | None = None, *, poll_s: float = 0.5, stop: Callable[[], bool] = lambda: False
    ) -> Iterator[Event]:
        flt = flt or EventFilter()
        cursor = self.end_cursor()
        while not stop():
            events, cursor_after = self.read_after(cursor)
            for event in events:
                if flt.matches(event):
                    yield event
            if cursor_after == cursor:
                time.sleep(poll_s)
            cursor = cursor_after
