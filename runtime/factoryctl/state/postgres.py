"""The shared state in PostgreSQL, for a factory over several hosts (`[state] url`).

Four tables: `factory_events` (the log: append-only, ids in commit order because appends take
one transaction-level advisory lock, so a reader's cursor never skips a late commit),
`factory_tasks` (a row a task, claimed with SKIP LOCKED: `state/pgtasks.py`),
`factory_documents` (each JSON document a row, read-modify-written under a transaction-level
advisory lock on its name) and `factory_locks` (who holds which job lock, for messages; the
lock itself is a session-level advisory lock, freed by the server when its holder's
connection dies). The password comes from FACTORY_DB_PASSWORD (the secrets file), never the
URL. A connection that breaks is one `StateUnreachable` line; the next call reconnects.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, cast

from factoryctl.core import jsonio
from factoryctl.core.clock import utcnow
from factoryctl.core.errors import AlreadyRunning, FactoryError, StateUnreachable
from factoryctl.state.eventlog import Event, EventLog
from factoryctl.state.tasks import TaskQueue

if TYPE_CHECKING:
    import psycopg

PASSWORD_ENV = "FACTORY_DB_PASSWORD"
CONNECT_TIMEOUT_S = 5

SCHEMA = """
CREATE TABLE IF NOT EXISTS factory_events (
    id bigserial PRIMARY KEY,
    ts text NOT NULL,
    type text NOT NULL,
    session text,
    data jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS factory_events_type_id ON factory_events (type, id);
CREATE INDEX IF NOT EXISTS factory_events_ts ON factory_events (ts);
CREATE TABLE IF NOT EXISTS factory_documents (
    name text PRIMARY KEY,
    body jsonb NOT NULL,
    updated timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS factory_tasks (
    id bigint PRIMARY KEY,
    body jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS factory_tasks_status ON factory_tasks ((body->>'status'));
CREATE TABLE IF NOT EXISTS factory_locks (
    name text PRIMARY KEY,
    holder text NOT NULL,
    since timestamptz NOT NULL DEFAULT now()
);
"""


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for `name` (the factory's own namespace)."""
    return int.from_bytes(hashlib.sha256(f"factoryctl:{name}".encode()).digest()[:8], "big", signed=True)


SCHEMA_KEY = lock_key("schema")
LOG_KEY = lock_key("event-log")


def no_nul(value: Any) -> Any:
    """`value` with NUL characters replaced (U+FFFD): PostgreSQL's text and jsonb cannot hold them."""
    if isinstance(value, str):
        return value.replace("\0", "\ufffd") if "\0" in value else value
    if isinstance(value, Mapping):
        return {no_nul(str(k)): no_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [no_nul(v) for v in value]
    return value


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise FactoryError(
            "[state] url names PostgreSQL but psycopg is not installed: pip install 'factoryctl[postgres]'"
        ) from None
    return psycopg


class PgBackend:
    """State in one PostgreSQL database: one connection per thread, one more per held job lock."""

    kind = "postgresql"

    def __init__(self, url: str, password: str | None = None) -> None:
        self.url = url
        self.password = password  # None: FACTORY_DB_PASSWORD at each connection (the secrets file fills it)
        self._local = threading.local()
        self._schema_ready = False
        self._held: dict[str, psycopg.Connection[Any]] = {}  # job locks this process holds, by name

    def describe(self) -> str:
        psycopg = _psycopg()
        try:
            info = psycopg.conninfo.conninfo_to_dict(self.url)
        except psycopg.ProgrammingError:
            return "postgresql://(unparsable url)"
        host, port = info.get("host") or "localhost", info.get("port") or "5432"
        user = f"{info['user']}@" if info.get("user") else ""
        return f"postgresql://{user}{host}:{port}/{info.get('dbname') or ''}"

    # -- connections ---------------------------------------------------------------

    def connect(self, purpose: str = "state") -> psycopg.Connection[Any]:
        """A new connection; `purpose` names it in pg_stat_activity (`factoryctl review lock`)."""
        pg = _psycopg()
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": f"factoryctl {purpose}"[:63],
        }
        password = self.password if self.password is not None else os.environ.get(PASSWORD_ENV)
        if password:
            kwargs["password"] = password
        try:
            conn = cast("psycopg.Connection[Any]", pg.connect(self.url, **kwargs))
        except pg.Error as exc:
            raise self._unreachable(exc) from None
        if not self._schema_ready:
            with self._translated(), conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_KEY,))
                conn.execute(SCHEMA)
            self._schema_ready = True
        return conn

    def _unreachable(self, exc: BaseException) -> StateUnreachable:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        summary = f"the state database {self.describe()} is unreachable"
        return StateUnreachable(f"{summary}: {first}", summary)

    def _conn(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self.connect()
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """psycopg's errors as the factory's: a lost server is StateUnreachable, bad data one line."""
        psycopg = _psycopg()
        try:
            yield
        except psycopg.OperationalError as exc:
            self._drop()
            raise self._unreachable(exc) from None
        except psycopg.DataError as exc:
            first = (str(exc).strip().splitlines() or ["bad data"])[0]
            raise FactoryError(f"the state database refused a value: {first}") from None

    @contextlib.contextmanager
    def cursor(self) -> Iterator[psycopg.Connection[Any]]:
        """This thread's connection, errors translated."""
        with self._translated():
            yield self._conn()

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def check(self) -> None:
        """The database answers, and every job lock this process holds is still held (a lost
        connection, a restarted server, frees a lock: a second holder may have it now)."""
        with self.cursor() as conn:
            conn.execute("SELECT 1")
        psycopg = _psycopg()
        for name, conn in list(self._held.items()):
            try:
                conn.execute("SELECT 1")
            except psycopg.Error:
                raise StateUnreachable(
                    f"the {name} lock was lost with its connection to the state database {self.describe()}"
                ) from None

    def close(self) -> None:
        self._drop()

    # -- what the stores are built on ------------------------------------------------

    def event_log(self, clock: Callable[[], datetime] = utcnow) -> EventLog:
        from factoryctl.state.pglog import PgEventLog

        return PgEventLog(self, clock=clock)

    def document(self, name: str, default: Callable[[], Any]) -> PgDocument:
        return PgDocument(self, name, default)

    def task_queue(self, log: EventLog) -> TaskQueue:
        from factoryctl.state.pgtasks import PgTaskQueue

        return PgTaskQueue(self, log)

    def documents(self) -> list[str]:
        with self.cursor() as conn:
            return [r[0] for r in conn.execute("SELECT name FROM factory_documents ORDER BY name")]

    @contextlib.contextmanager
    def job_lock(self, name: str) -> Iterator[None]:
        """Hold job `name` across the fleet, or raise AlreadyRunning at once.

        A connection of its own holds the advisory lock for the job's whole run: if the holder
        dies (or the server restarts) the lock is freed.
        """
        key = lock_key(f"job:{name}")
        with self._translated():
            conn = self.connect(f"{name} lock")
        try:
            with self._translated():
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                if not (got and got[0]):
                    row = conn.execute("SELECT holder FROM factory_locks WHERE name = %s", (name,)).fetchone()
                    raise AlreadyRunning(f"{name} is already running" + (f" ({row[0]})" if row else ""))
                holder = f"pid {os.getpid()} on {socket.gethostname()}"
                conn.execute(
                    "INSERT INTO factory_locks (name, holder) VALUES (%s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, since = now()",
                    (name, holder),
                )
            self._held[name] = conn
            yield
            with contextlib.suppress(Exception):  # a lost server freed the lock already
                conn.execute("DELETE FROM factory_locks WHERE name = %s", (name,))
        finally:
            self._held.pop(name, None)
            with contextlib.suppress(Exception):
                conn.close()

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """A short critical section across the fleet (waits for the lock)."""
        key = lock_key(f"section:{name}")
        with self.cursor() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                self._conn().execute("SELECT pg_advisory_unlock(%s)", (key,))

    # -- migration ---------------------------------------------------------------------

    def import_events(self, events: Iterable[Event], batch: int = 1000) -> int:
        """Append events as they were (their own timestamps), in order; how many."""
        n = 0
        rows: list[tuple[str, str, str | None, str]] = []
        with self.cursor() as conn:
            for event in events:
                rows.append((event.ts, event.type, event.session, to_json(event.data)))
                if len(rows) >= batch:
                    n += self._insert_events(conn, rows)
            n += self._insert_events(conn, rows)
        return n

    @staticmethod
    def _insert_events(conn: psycopg.Connection[Any], rows: list[tuple[str, str, str | None, str]]) -> int:
        if not rows:
            return 0
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOG_KEY,))
            cur.executemany(
                "INSERT INTO factory_events (ts, type, session, data) VALUES (%s, %s, %s, %s::jsonb)", no_nul(rows)
            )
        n = len(rows)
        rows.clear()
        return n

    def first_id(self) -> int:
        """The id of the oldest event (1 when there is none)."""
        with self.cursor() as conn:
            row = conn.execute("SELECT coalesce(min(id), 1) FROM factory_events").fetchone()
        return int(row[0]) if row else 1

    def counts(self) -> dict[str, int]:
        """How many events and documents the database holds."""
        with self.cursor() as conn:
            events = conn.execute("SELECT count(*) FROM factory_events").fetchone()
            docs = conn.execute("SELECT count(*) FROM factory_documents").fetchone()
            tasks = conn.execute("SELECT count(*) FROM factory_tasks").fetchone()
        return {
            "events": events[0] if events else 0,
            "documents": docs[0] if docs else 0,
            "tasks": tasks[0] if tasks else 0,
        }


def to_json(data: Any) -> str:
    """`data` as the JSON text PostgreSQL's jsonb accepts (no NUL; NaN is an error, not a record)."""
    try:
        return json.dumps(no_nul(data), ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=str)
    except ValueError:
        raise FactoryError("the state holds only finite numbers (NaN or Infinity was given)") from None


class PgDocument:
    """One JSON document in `factory_documents`, named like its file (`tasks.json`)."""

    def __init__(self, backend: PgBackend, name: str, default: Callable[[], Any]) -> None:
        self.backend = backend
        self.name = name
        self.default = default

    @property
    def path(self) -> PurePath:
        return PurePath(self.name)

    def _load(self, text: str | None) -> Any:
        if text is None:
            return self.default()
        try:
            data = jsonio.loads(text)
        except ValueError as exc:
            raise FactoryError(f"{self.name} in the state database is not valid JSON ({exc})") from None
        expected = type(self.default())
        if not isinstance(data, expected):
            raise FactoryError(
                f"{self.name} in the state database holds a JSON {type(data).__name__} where a "
                f"{expected.__name__} belongs; fix it (factory_documents) or delete the row"
            )
        return data

    def read(self) -> Any:
        with self.backend.cursor() as conn:
            row = conn.execute("SELECT body::text FROM factory_documents WHERE name = %s", (self.name,)).fetchone()
        return self._load(row[0] if row else None)

    @contextlib.contextmanager
    def update(self) -> Iterator[Any]:
        """Yield the document under its lock (a transaction); write it back if the block succeeds."""
        with self.backend.cursor() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(f"doc:{self.name}"),))
            row = conn.execute("SELECT body::text FROM factory_documents WHERE name = %s", (self.name,)).fetchone()
            data = self._load(row[0] if row else None)
            yield data
            self._put(conn, data)

    def _put(self, conn: psycopg.Connection[Any], data: Any) -> None:
        conn.execute(
            "INSERT INTO factory_documents (name, body) VALUES (%s, %s::jsonb) "
            "ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body, updated = now()",
            (self.name, to_json(data)),
        )

    def write(self, data: Any) -> None:
        with self.backend.cursor() as conn:
            self._put(conn, data)

    def delete(self) -> None:
        with self.backend.cursor() as conn:
            conn.execute("DELETE FROM factory_documents WHERE name = %s", (self.name,))
