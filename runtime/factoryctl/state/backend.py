"""Where the shared state lives: the files under FACTORY_HOME/state (one host), or PostgreSQL.

A backend gives the stores what they are built on: the event log, named JSON documents
(locked read-modify-write), job locks (one holder, a second start is refused) and short
critical sections. `[state] url` picks it; the heavy-check slots and the repository lock
stay on each host whatever the backend (they guard this host's CPUs and worktrees).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import PurePath
from typing import Any, Protocol

from factoryctl.core.paths import Paths
from factoryctl.state.eventlog import EventLog
from factoryctl.state.locks import exclusive, job_lock
from factoryctl.state.stores import JsonStore
from factoryctl.state.tasks import TaskQueue
from factoryctl.state.tasks import empty as empty_tasks

# Jobs a migration must find stopped (with `cycle-sN` for every session and every host's scheduler).
JOBS = ("review", "standup", "doctor", "bot-improve")


def scheduler_lock(host: str) -> str:
    """The scheduler's job lock: one per host (a fleet's job locks are fleet-wide, and every host of
    a fleet runs a scheduler of its own: the gate's and each worker's); `scheduler` on one host."""
    return f"scheduler-{host}" if host else "scheduler"


class Document(Protocol):
    """One named JSON document: a lock-free read and a locked read-modify-write."""

    @property
    def path(self) -> PurePath: ...  # what messages name it by

    def read(self) -> Any: ...

    def update(self) -> AbstractContextManager[Any]: ...

    def write(self, data: Any) -> None: ...

    def delete(self) -> None: ...


class StateBackend(Protocol):
    kind: str  # "files" or "postgresql"

    def describe(self) -> str: ...  # where the state lives, without a password

    def event_log(self, clock: Callable[[], datetime]) -> EventLog: ...

    def document(self, name: str, default: Callable[[], Any]) -> Document: ...

    def task_queue(self, log: EventLog) -> TaskQueue: ...

    def documents(self) -> list[str]: ...  # the names of the documents held

    def job_lock(self, name: str) -> AbstractContextManager[None]: ...

    def exclusive(self, name: str) -> AbstractContextManager[None]: ...

    def check(self) -> None: ...  # reachable, or one FactoryError saying why not

    def close(self) -> None: ...


class FileBackend:
    """Today's default: everything under FACTORY_HOME/state, locked with flock(2)."""

    kind = "files"

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def describe(self) -> str:
        return str(self.paths.state_dir)

    def event_log(self, clock: Callable[[], datetime]) -> EventLog:
        return EventLog(self.paths.log_file, clock=clock)

    def document(self, name: str, default: Callable[[], Any]) -> JsonStore:
        return JsonStore(self.paths.state_dir / name, default)

    def task_queue(self, log: EventLog) -> TaskQueue:
        return TaskQueue(self.document(self.paths.tasks_file.name, empty_tasks), log)

    def documents(self) -> list[str]:
        state = self.paths.state_dir
        if not state.is_dir():
            return []
        names = [state / n for n in DOCUMENTS] + sorted((state / "baselines").glob("*.json"))
        names += sorted((state / "holds").glob("*.json"))
        return [str(p.relative_to(state)) for p in names if p.is_file()]

    def job_lock(self, name: str) -> AbstractContextManager[None]:
        return job_lock(self.paths.locks_dir, name)

    def exclusive(self, name: str) -> AbstractContextManager[None]:
        return exclusive(self.paths.locks_dir / f"{name}.lock")

    def check(self) -> None:
        return None

    def close(self) -> None:
        return None


# The documents a factory keeps besides the baselines and holds of each host (state/baselines/*.json,
# state/holds/*.json). The pause flags become the document `pauses.json` (state/pauses.py).
DOCUMENTS = (
    "tasks.json", "review-queue.json", "sessions.json", "scheduler.json", "bot-notifier.json", "main-health.json",
    "advice.json", "holds.json",
)  # fmt: skip


_DATABASES: dict[str, StateBackend] = {}  # one per URL and process: its connections are reused


def open_backend(url: str, paths: Paths) -> StateBackend:
    """The backend `[state] url` names: "" the files, a postgresql:// URL the database.

    A process that loads its Context again and again (the server, the bot, tests) shares one
    PostgreSQL backend per URL, so it keeps one connection per thread, not one per load.
    """
    if not url:
        return FileBackend(paths)
    if url not in _DATABASES:
        from factoryctl.state.postgres import PgBackend  # psycopg only where PostgreSQL is used

        _DATABASES[url] = PgBackend(url)
    return _DATABASES[url]


@contextlib.contextmanager
def all_jobs_stopped(backend: StateBackend, sessions: tuple[str, ...], hosts: tuple[str, ...]) -> Iterator[None]:
    """Hold every job's lock for the block: AlreadyRunning names the first job still running."""
    with contextlib.ExitStack() as stack:
        for name in (*JOBS, *(scheduler_lock(h) for h in hosts), *(f"cycle-{s}" for s in sessions)):
            stack.enter_context(backend.job_lock(name))
        yield
