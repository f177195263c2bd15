"""The task queue (state/tasks.json): what people asked the factory to build.

Lifecycle: queued -> assigned -> in_progress -> pushed | failed | requeued (-> queued);
pushed -> done (landed) | requeued (rejected); cancelled and parked end it. Every change is
one locked read-modify-write of the store and one `task` event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, NamedTuple

from factoryctl.core.clock import format_ts
from factoryctl.core.defaults import TASK_MAX_BODY, TASK_MAX_TITLE
from factoryctl.core.errors import BadRecord, FactoryError, NotFound, UsageError
from factoryctl.core.records import ACTIVE, LIVE, PRIORITIES, STATUSES, Task
from factoryctl.state.eventlog import EventLog
from factoryctl.state.stores import JsonStore

if TYPE_CHECKING:
    from factoryctl.state.backend import Document


def empty() -> dict[str, Any]:
    return {"next_id": 1, "tasks": []}


class Valid(NamedTuple):
    """The records of tasks.json that validate (with their raw dicts, for writing back) and the rest."""

    tasks: list[tuple[dict[str, Any], Task]]
    problems: list[str]  # one line per record that does not validate: it is left as it is in the file


def _checked(doc: Any, path: Any) -> Valid:
    """tasks.json's records: a wrong top-level field is one error naming it; a bad record is skipped."""
    raw_tasks = doc.get("tasks", [])
    if not isinstance(raw_tasks, list):
        raise FactoryError(f"{path}: field 'tasks' must be a list; fix it or move the file aside")
    next_id = doc.get("next_id", 1)
    if not isinstance(next_id, int) or isinstance(next_id, bool) or next_id < 1:
        raise FactoryError(f"{path}: field 'next_id' must be a positive integer; fix it or move the file aside")
    valid: list[tuple[dict[str, Any], Task]] = []
    problems: list[str] = []
    for i, raw in enumerate(raw_tasks):
        try:
            valid.append((raw, Task.from_dict(raw)))
        except BadRecord as exc:
            problems.append(f"{getattr(path, 'name', path)} task {i}: {exc}")
    return Valid(valid, problems)


class TaskQueue:
    def __init__(self, store: Document, log: EventLog) -> None:
        self.store = store
        self.log = log

    @classmethod
    def at(cls, path: Any, log: EventLog) -> TaskQueue:
        return cls(JsonStore(path, empty), log)

    def all(self) -> list[Task]:
        """The tasks that validate (a bad record is skipped: `problems()` names it)."""
        return [task for _, task in _checked(self.store.read(), self.store.path).tasks]

    def problems(self) -> list[str]:
        """One line per record of tasks.json that does not validate (left as it is in the file)."""
        return _checked(self.store.read(), self.store.path).problems

    def get(self, task_id: int) -> Task:
        for task in self.all():
            if task.id == task_id:
                return task
        raise NotFound(f"no task {task_id} (see `factoryctl task list`)")

    def add(
        self, title: str, body: str = "", priority: str = "normal", session: str | None = None, source: str = ""
    ) -> Task:
        """Queue a task (reserved for `session` if given); `source` says who asked (e.g. "standup")."""
        task, _ = self._insert(_valid(title, body, priority), body, priority, session, source, once=None)
        return task

    def add_once(self, marker: str, title: str, body: str = "", priority: str = "normal",
                 source: str = "") -> tuple[Task, bool]:  # fmt: skip
        """Queue a task unless a live one's body ends with `marker` (the same GitHub issue, asked
        again): (the task, whether it is new). Looked up and added under one lock."""
        return self._insert(_valid(title, body, priority), body, priority, None, source, once=marker)

    def _insert(
        self, title: str, body: str, priority: str, session: str | None, source: str, *, once: str | None
    ) -> tuple[Task, bool]:
        now = format_ts(self.log.clock())
        with self.store.update() as doc:
            found = _checked(doc, self.store.path)
            if once:
                for _, live in found.tasks:
                    if live.status in LIVE and live.body.endswith(once):
                        return live, False
            doc["next_id"] = max([doc.get("next_id", 1), *(t.id + 1 for _, t in found.tasks)])
            doc.setdefault("tasks", [])
            task = new_task(doc["next_id"], title, body, priority, session, source, now)
            doc["next_id"] += 1
            doc["tasks"].append(asdict(task))
        data = {"action": "added", "id": task.id, "title": title, "priority": priority}
        self.log.append("task", session=session, data={**data, "source": source} if source else data)
        return task, True

    def transition(
        self, task_id: int, status: str, *, note: str = "", session: str | None = None, refund: bool = False
    ) -> Task:
        """Move a task to `status` (recording why); cancelled/finished tasks stay put.

        `refund`: the attempt did not really happen (the cycle was interrupted), so it does
        not count towards parking the task. A parked or failed task can be cancelled or
        requeued by a person (`factoryctl task retry`).
        """
        if status not in (*STATUSES, "requeued"):
            raise UsageError(f"unknown task status {status!r}")
        now = format_ts(self.log.clock())
        with self.store.update() as doc:
            pair = next(((r, t) for r, t in _checked(doc, self.store.path).tasks if t.id == task_id), None)
            if pair is None:
                raise NotFound(f"no task {task_id} (see `factoryctl task list`)")
            raw, task = pair
            moved(task, status, note=note, session=session, refund=refund, now=now)
            raw.clear()
            raw.update(asdict(task))
        self.log.append("task", session=task.session or session, data={"action": status, "id": task_id, "note": note})
        return task

    def claim(self, session: str, max_attempts: int | None = None) -> Task | None:
        """The task this session should work on: its own open one, else the best queued one.

        A queued task reserved for another session is left for that session, and one tried
        `max_attempts` times already is left for the scheduler to park.
        """
        now = format_ts(self.log.clock())
        with self.store.update() as doc:
            found = _checked(doc, self.store.path).tasks
            tasks = [t for _, t in found]
            mine = [t for t in tasks if t.session == session and t.status in ACTIVE]
            if mine:
                return mine[0]
            free = sorted(
                (
                    t
                    for t in tasks
                    if t.status == "queued"
                    and t.session in (None, session)
                    and (max_attempts is None or t.attempts < max_attempts)
                ),
                key=Task.sort_key,
            )
            if not free:
                return None
            task = free[0]
            claimed(task, session, now)
            for raw, old in found:
                if old.id == task.id:
                    raw.update(asdict(task))
        self.log.append("task", session=session, data={"action": "assigned", "id": task.id})
        return task

    def _change_if(
        self, task_id: int, ok: Callable[[Task, list[Task]], bool], status: str, note: str, session: str | None
    ) -> Task | None:
        """Move a task to `status` only if `ok(task, all tasks)` holds under the lock; None if not.

        `session` is the task's new session ("" clears it, None keeps it). A compare-and-swap: the cycle
        changes tasks too, and whatever it did meanwhile wins.
        """
        now = format_ts(self.log.clock())
        with self.store.update() as doc:
            found = _checked(doc, self.store.path).tasks
            tasks = [t for _, t in found]
            task = next((t for t in tasks if t.id == task_id), None)
            if task is None or not ok(task, tasks):
                return None
            changed(task, status, note, session, now)
            for raw, old in found:
                if old.id == task_id:
                    raw.clear()
                    raw.update(asdict(task))
        self.log.append("task", session=task.session, data={"action": status, "id": task_id, "note": note})
        return task

    def assign(self, task_id: int, session: str, still_idle: Callable[[str], bool] = lambda s: True) -> Task | None:
        """Give a queued task to an idle session (the scheduler); None if either changed meanwhile.

        `still_idle(session)` is asked under the queue's lock, after everything else holds.
        """

        def ok(task: Task, tasks: list[Task]) -> bool:
            mine = any(t.session == session and t.status in ACTIVE for t in tasks)
            fits = task.status == "queued" and task.session in (None, session) and not mine
            return fits and still_idle(session)

        return self._change_if(task_id, ok, "assigned", f"assigned to {session} by the scheduler", session)

    def release(self, task_id: int, session: str, note: str) -> Task | None:
        """Put a task back in the queue if `session` still holds it open (its session died or stalled)."""

        def ok(task: Task, tasks: list[Task]) -> bool:
            return task.status in ACTIVE and (task.session or "-") == session

        return self._change_if(task_id, ok, "requeued", note, "")

    def park(self, task_id: int, note: str) -> Task | None:
        """Set a queued task aside with the reasons it kept failing; a person revives or cancels it."""
        return self._change_if(task_id, lambda task, tasks: task.status == "queued", "parked", note, None)

    def cancel(self, task_id: int, note: str = "cancelled by a person") -> Task:
        return self.transition(task_id, "cancelled", note=note)


def new_task(task_id: int, title: str, body: str, priority: str, session: str | None, source: str, now: str) -> Task:
    task = Task(id=task_id, title=title, body=body, priority=priority, created=now, updated=now)
    task.history.append({"ts": now, "status": "queued", "note": f"added by {source}" if source else "added"})
    if session is not None:
        task.session = session
    return task


def moved(task: Task, status: str, *, note: str, session: str | None, refund: bool, now: str) -> None:
    """`task` moved to `status` in place (a person's or a job's transition), or a UsageError saying why not."""
    revivable = task.status in ("parked", "failed") and status in ("requeued", "cancelled")
    if task.status not in LIVE and not revivable:
        raise UsageError(f"task {task.id} is {task.status}; only open tasks can change")
    if status == "requeued":
        task.status, task.session = "queued", None
    else:
        task.status = status
        if session is not None:
            task.session = session
    if status == "in_progress":
        task.attempts += 1
    if refund:
        task.attempts = max(0, task.attempts - 1)
    if revivable and status == "requeued":
        task.attempts = 0
    task.updated = now
    task.history.append({"ts": now, "status": status, "note": note})


def changed(task: Task, status: str, note: str, session: str | None, now: str) -> None:
    """`task` moved to `status` by a compare-and-swap (`_change_if`): "" clears its session, None keeps it."""
    task.status = "queued" if status == "requeued" else status
    if session is not None:
        task.session = session or None
    task.updated = now
    task.history.append({"ts": now, "status": status, "note": note})


def claimed(task: Task, session: str, now: str) -> None:
    task.status, task.session, task.updated = "assigned", session, now
    task.history.append({"ts": now, "status": "assigned", "note": f"claimed by {session}"})


def _valid(title: str, body: str, priority: str) -> str:
    """The task's title on one line, or a one-line UsageError about what is wrong."""
    title = " ".join(title.split())
    if not title:
        raise UsageError('a task needs a title: factoryctl task add "what to build"')
    if len(title) > TASK_MAX_TITLE:
        raise UsageError(
            f"the title is {len(title)} characters; keep it under {TASK_MAX_TITLE} (put details in --body)"
        )
    if len(body) > TASK_MAX_BODY:
        raise UsageError(f"the body is {len(body)} characters; the limit is {TASK_MAX_BODY}")
    if priority not in PRIORITIES:
        raise UsageError(f"unknown priority {priority!r}; allowed: {', '.join(PRIORITIES)}")
    return title
