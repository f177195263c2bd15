"""`factoryctl task ...`: the task queue."""

from __future__ import annotations

from typing import Annotated

import typer

from factoryctl.cli import terminal as render
from factoryctl.cli.options import JsonOpt
from factoryctl.core.errors import UsageError
from factoryctl.core.records import OPEN, PRIORITIES, STATUSES
from factoryctl.jobs.context import Context

app = typer.Typer(help="The task queue: what the agents should build.", no_args_is_help=True)


@app.command("add")
def task_add(
    title: Annotated[str, typer.Argument(help="One line: what to build or fix.")],
    body: Annotated[str, typer.Option("--body", "-b", help="Details, acceptance criteria.")] = "",
    priority: Annotated[str, typer.Option("--priority", "-p", help="|".join(PRIORITIES))] = "normal",
    session: Annotated[str | None, typer.Option("--session", "-s", help="Reserve it for one session.")] = None,
    json: JsonOpt = False,
) -> None:
    """Queue a task for the agents."""
    ctx = Context.load()
    if session is not None:
        ctx.session(session)
    task = ctx.tasks().add(title, body=body, priority=priority, session=session)
    render.emit_json(task.__dict__) if json else render.emit(f"queued task #{task.id}: {task.title}")


@app.command("list")
def task_list(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include finished and cancelled tasks.")] = False,
    status: Annotated[str | None, typer.Option("--status", help="|".join(STATUSES))] = None,
    json: JsonOpt = False,
) -> None:
    """List open tasks, highest priority first."""
    if status is not None and status not in STATUSES:
        raise UsageError(f"unknown status {status!r}; allowed: {', '.join(STATUSES)}")
    queue = Context.load().tasks()
    for problem in queue.problems():
        render.warn(f"skipped: {problem}")
    tasks = sorted(queue.all(), key=lambda t: t.sort_key())
    if status is not None:
        tasks = [t for t in tasks if t.status == status]
    elif not all_:
        tasks = [t for t in tasks if t.status in OPEN]
    if json:
        render.emit_json([t.__dict__ for t in tasks])
    elif not tasks:
        render.emit("no tasks" + ("" if all_ else " open (--all shows finished ones)"))
    else:
        for task in tasks:
            render.emit(render.task_line(task))


@app.command("show")
def task_show(task_id: Annotated[int, typer.Argument(help="The task number.")], json: JsonOpt = False) -> None:
    """One task with its history."""
    task = Context.load().tasks().get(task_id)
    render.emit_json(task.__dict__) if json else render.emit(render.task_detail(task))


@app.command("retry")
def task_retry(task_id: Annotated[int, typer.Argument(help="The task number.")]) -> None:
    """Queue a parked or failed task again, with a fresh count of attempts."""
    ctx = Context.load()
    task = ctx.tasks().get(task_id)
    if task.status not in ("parked", "failed"):
        raise UsageError(f"task {task_id} is {task.status}; only parked or failed tasks can be retried")
    ctx.tasks().transition(task_id, "requeued", note="retried by a person")
    render.emit(f"queued task #{task_id} again: {task.title}")


@app.command("cancel")
def task_cancel(task_id: Annotated[int, typer.Argument(help="The task number.")]) -> None:
    """Cancel an open task (a cycle working on it finishes, but its branch is not pushed for it)."""
    task = Context.load().tasks().cancel(task_id)
    render.emit(f"cancelled task #{task.id}: {task.title}")
