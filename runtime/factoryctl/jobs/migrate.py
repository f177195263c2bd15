"""`factoryctl state migrate --to URL`: move a factory's state from its files into PostgreSQL.

Read, decide, act: every document is read and validated before anything is written (a
damaged file stops the move with one line naming it); the target must be empty; every job
lock is held for the whole copy (a running job refuses the move); the counts are compared
after. The files stay where they are: they are the backup until the factory runs on the
database (`[state] url`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from factoryctl.core.config import StateSection
from factoryctl.core.errors import AlreadyRunning, FactoryError, UsageError
from factoryctl.jobs.context import Context
from factoryctl.state.backend import all_jobs_stopped
from factoryctl.state.eventlog import Event
from factoryctl.state.pauses import DOCUMENT as PAUSES
from factoryctl.state.pauses import Pauses
from factoryctl.state.pgtasks import PgTaskQueue
from factoryctl.state.postgres import PgBackend


@dataclass(frozen=True)
class Migration:
    source: str
    target: str
    url: str  # the URL to put in [state] url (it carries no password)
    events: int  # events copied (and found in the target after)
    skipped_lines: int  # lines of the log file that were not events (torn, hand-edited)
    documents: int
    tasks: int
    queued: int  # review queue entries
    bad_tasks: int = 0  # records of tasks.json that do not validate: they stay in the file

    def lines(self) -> list[str]:
        out = [
            f"copied {self.events} events, {self.documents} documents ({self.tasks} tasks, "
            f"{self.queued} review queue entries) from {self.source} to {self.target}; counts verified",
        ]
        if self.skipped_lines:
            out.append(f"{self.skipped_lines} lines of the log were not events and stayed behind in the file")
        if self.bad_tasks:
            out.append(f"{self.bad_tasks} records of tasks.json did not validate and stayed behind in the file")
        out.append(f'next: set [state] url = "{self.url}" in factory.toml and start the jobs again')
        return out


def _raw_lines(ctx: Context) -> int:
    try:
        with open(ctx.paths.log_file, "rb") as fh:
            return sum(1 for line in fh if line.endswith(b"\n") and line.strip())
    except FileNotFoundError:
        return 0


def _bot_cursor(ctx: Context, offset: Any) -> int:
    """The bot's byte offset in the log file as the number of events before it (their ids, from 1)."""
    if not isinstance(offset, int) or offset <= 0:
        return 0
    seen = 0
    with contextlib.suppress(FileNotFoundError), open(ctx.paths.log_file, "rb") as fh:
        for line in fh:
            if fh.tell() > offset:
                break
            seen += 1 if line.endswith(b"\n") and Event.from_line(line) is not None else 0
    return seen


def migrate(ctx: Context, url: str) -> Migration:
    """Copy this factory's files into the empty database at `url`, with every job stopped; verify."""
    if ctx.state.kind != "files":
        raise UsageError(f"this factory's state is already in {ctx.state.describe()}; migrate moves files into one")
    try:
        StateSection(url=url)
    except ValidationError as exc:
        raise UsageError(f"--to {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    if not url:
        raise UsageError("--to needs a postgresql://USER@HOST:PORT/DB URL")
    target = PgBackend(url)
    target.check()
    found = target.counts()
    if any(found.values()):
        raise FactoryError(
            f"{target.describe()} already holds {found['events']} events and {found['documents']} documents; "
            "migrate into an empty database"
        )
    try:
        settings = ctx.settings  # every scheduler this host knows of: its own, and the fleet's workers'
        hosts = tuple(dict.fromkeys((settings.factory.host, *settings.fleet.workers)))
        with all_jobs_stopped(ctx.state, settings.session_names, hosts):
            return _copy(ctx, target)
    except AlreadyRunning as exc:
        raise FactoryError(f"cannot migrate while a job runs: {exc}; stop it (pm2 stop all, cron) and retry") from None
    finally:
        target.close()


def _copy(ctx: Context, target: PgBackend) -> Migration:
    tasks_name = ctx.paths.tasks_file.name  # a table of its own in PostgreSQL, a row a task
    docs = {name: ctx.state.document(name, dict).read() for name in ctx.state.documents()}  # validated before any write
    records = docs.pop(tasks_name, {}).get("tasks", [])
    tasks, queue = len(ctx.tasks().all()), len(ctx.review_queue().entries())
    source_events = sum(1 for _ in ctx.log.iter_forward())
    copied = target.import_events(ctx.log.iter_forward())
    if "bot-notifier.json" in docs:
        cursor = dict(docs["bot-notifier.json"])
        cursor["offset"] = target.first_id() - 1 + _bot_cursor(ctx, cursor.get("offset"))
        docs["bot-notifier.json"] = cursor
    pauses = Pauses(ctx.state, ctx.paths).all()  # flag files here, one shared document there
    if pauses:
        docs[PAUSES] = pauses
    for name, data in docs.items():
        target.document(name, dict).write(data)
    _, bad_tasks = PgTaskQueue(target, ctx.log).import_records(records if isinstance(records, list) else [])
    after = target.counts()
    moved = Context(ctx.paths, ctx.settings.model_copy(update={"state": ctx.settings.state.model_copy(
        update={"url": target.url})}))  # fmt: skip
    try:
        seen = (after["events"], after["documents"], after["tasks"], len(moved.tasks().all()),
                len(moved.review_queue().entries()))  # fmt: skip
    finally:
        moved.state.close()
    wanted = (source_events, len(docs), tasks, tasks, queue)
    if copied != source_events or seen != wanted:
        raise FactoryError(
            "the copy does not match: events, documents, task rows, tasks, queue entries "
            f"are {seen} in the database and {wanted} in the files; the files are unchanged"
        )
    return Migration(
        ctx.state.describe(),
        target.describe(),
        target.url,
        copied,
        _raw_lines(ctx) - source_events,
        len(docs),
        tasks,
        queue,
        bad_tasks,
    )
