"""The task queue as a PostgreSQL table: one row a task, claimed with `FOR UPDATE SKIP LOCKED`.

The rules are the file queue's (`state/tasks.py`: the same transitions, the same order, the
same events); only the locking differs. A claim locks the one row it takes and skips rows
other claims hold, so sessions on many hosts claim at once without waiting for each other.
What must hold across rows takes a transaction-level advisory lock: adding (the next id, one
live task per GitHub issue) and each session's own work (a session's claim and the
scheduler's assignment to that session never both succeed).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from factoryctl.core import jsonio
from factoryctl.core.clock import format_ts
from factoryctl.core.errors import BadRecord, NotFound, UsageError
from factoryctl.core.records import ACTIVE, LIVE, PRIORITIES, STATUSES, Task
from factoryctl.state.eventlog import EventLog
from factoryctl.state.postgres import PgBackend, lock_key, to_json
from factoryctl.state.tasks import TaskQueue as FileTaskQueue
from factoryctl.state.tasks import Valid, changed, claimed, moved, new_task

NAME = "tasks"  # how messages name the table's records ("tasks task 7: ...")
CLAIM_LOOKAHEAD = 20  # candidate rows locked at once by a claim (a bad record among them is skipped)
ADD_LOCK = lock_key("tasks:add")


def _session_lock(session: str) -> int:
    return lock_key(f"tasks:session:{session}")


def _task(text: str) -> Task:
    raw = jsonio.loads(text)
    return Task.from_dict(raw)


class PgTaskQueue(FileTaskQueue):
    """`TaskQueue` on `factory_tasks`; the methods the jobs call, with row locks instead of one file lock."""

    def __init__(self, backend: PgBackend, log: EventLog) -> None:  # no file store: rows
        self.backend = backend
        self.log = log

    def _read(self) -> Valid:
        with self.backend.cursor() as conn:
            rows = conn.execute("SELECT id, body::text FROM factory_tasks ORDER BY id").fetchall()
        valid: list[tuple[dict[str, Any], Task]] = []
        problems: list[str] = []
        for task_id, text in rows:
            try:
                raw = jsonio.loads(text)
                valid.append((raw, Task.from_dict(raw)))
            except (ValueError, BadRecord) as exc:
                problems.append(f"{NAME} task {task_id}: {exc}")
        return Valid(valid, problems)

    def all(self) -> list[Task]:
        return [task for _, task in self._read().tasks]

    def problems(self) -> list[str]:
        return self._read().problems

    def _insert(
        self, title: str, body: str, priority: str, session: str | None, source: str, *, once: str | None
    ) -> tuple[Task, bool]:
        now = format_ts(self.log.clock())
        with self.backend.cursor() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADD_LOCK,))
            if once:
                rows = conn.execute(
                    "SELECT body::text FROM factory_tasks WHERE body->>'status' = ANY(%s) "
                    "AND right(body->>'body', %s) = %s ORDER BY id",
                    (list(LIVE), len(once), once),
                ).fetchall()
                for (text,) in rows:
                    try:
                        return _task(text), False
                    except (ValueError, BadRecord):
                        continue
            row = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM factory_tasks").fetchone()
            task = new_task(int(row[0]) if row else 1, title, body, priority, session, source, now)
            conn.execute(
                "INSERT INTO factory_tasks (id, body) VALUES (%s, %s::jsonb)", (task.id, to_json(asdict(task)))
            )
        data = {"action": "added", "id": task.id, "title": title, "priority": priority}
        self.log.append("task", session=session, data={**data, "source": source} if source else data)
        return task, True

    def _locked(self, conn: Any, task_id: int) -> Task | None:
        row = conn.execute("SELECT body::text FROM factory_tasks WHERE id = %s FOR UPDATE", (task_id,)).fetchone()
        if row is None:
            return None
        try:
            return _task(row[0])
        except (ValueError, BadRecord):
            return None  # a bad record is left as it is, like the file queue's

    @staticmethod
    def _put(conn: Any, task: Task) -> None:
        conn.execute("UPDATE factory_tasks SET body = %s::jsonb WHERE id = %s", (to_json(asdict(task)), task.id))

    def transition(
        self, task_id: int, status: str, *, note: str = "", session: str | None = None, refund: bool = False
    ) -> Task:
        if status not in (*STATUSES, "requeued"):
            raise UsageError(f"unknown task status {status!r}")
        now = format_ts(self.log.clock())
        with self.backend.cursor() as conn, conn.transaction():
            task = self._locked(conn, task_id)
            if task is None:
                raise NotFound(f"no task {task_id} (see `factoryctl task list`)")
            moved(task, status, note=note, session=session, refund=refund, now=now)
            self._put(conn, task)
        self.log.append("task", session=task.session or session, data={"action": status, "id": task_id, "note": note})
        return task

    def claim(self, session: str, max_attempts: int | None = None) -> Task | None:
        """This session's own open task, else the best queued one no other claim holds (SKIP LOCKED)."""
        now = format_ts(self.log.clock())
        with self.backend.cursor() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_session_lock(session),))
            mine = conn.execute(
                "SELECT body::text FROM factory_tasks WHERE body->>'session' = %s AND body->>'status' = ANY(%s) "
                "ORDER BY id",
                (session, list(ACTIVE)),
            ).fetchall()
            for (text,) in mine:
                try:
                    return _task(text)
                except (ValueError, BadRecord):
                    continue
            rows = conn.execute(
                "SELECT body::text FROM factory_tasks WHERE body->>'status' = 'queued' "
                "AND (body->>'session' IS NULL OR body->>'session' = %s) "
                "AND (%s::int IS NULL OR CASE WHEN jsonb_typeof(body->'attempts') = 'number' "
                "     THEN (body->>'attempts')::numeric < %s::int ELSE true END) "
                "ORDER BY coalesce(array_position(%s::text[], body->>'priority'), 0) DESC, body->>'created', id "
                f"LIMIT {CLAIM_LOOKAHEAD} FOR UPDATE SKIP LOCKED",
                (session, max_attempts, max_attempts, list(PRIORITIES)),
            ).fetchall()
            candidates = []
            for (text,) in rows:
                try:
                    candidates.append(_task(text))
                except (ValueError, BadRecord):
                    continue
            free = sorted(
                (t for t in candidates if max_attempts is None or t.attempts < max_attempts), key=Task.sort_key
            )
            if not free:
                return None
            task = free[0]
            claimed(task, session, now)
            self._put(conn, task)
        self.log.append("task", session=session, data={"action": "assigned", "id": task.id})
        return task

    def _change_if(self, task_id: int, ok: Any, status: str, note: str, session: str | None) -> Task | None:
        now = format_ts(self.log.clock())
        with self.backend.cursor() as conn, conn.transaction():
            if session:  # the session it goes to: its own claim must not run meanwhile
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_session_lock(session),))
            task = self._locked(conn, task_id)
            if task is None:
                return None
            others = [t for t in self._read_in(conn) if t.id != task_id]
            if not ok(task, [*others, task]):
                return None
            changed(task, status, note, session, now)
            self._put(conn, task)
        self.log.append("task", session=task.session, data={"action": status, "id": task_id, "note": note})
        return task

    @staticmethod
    def _read_in(conn: Any) -> list[Task]:
        out = []
        for (text,) in conn.execute("SELECT body::text FROM factory_tasks ORDER BY id").fetchall():
            try:
                out.append(_task(text))
            except (ValueError, BadRecord):
                continue
        return out

    def import_records(self, records: list[Any]) -> tuple[int, int]:
        """Rows for tasks.json's records (the migration): (copied, bad records left behind)."""
        copied = bad = 0
        with self.backend.cursor() as conn, conn.transaction():
            for raw in records:
                try:
                    task = Task.from_dict(raw)
                except BadRecord:
                    bad += 1
                    continue
                conn.execute("INSERT INTO factory_tasks (id, body) VALUES (%s, %s::jsonb)", (task.id, to_json(raw)))
                copied += 1
        return copied, bad
