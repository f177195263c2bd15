"""factoryctl: the command line. This module only wires commands to functions."""

from __future__ import annotations

import json as jsonlib
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from . import __version__, render
from .config import Settings, settings_as_dict, to_toml
from .context import Context
from .errors import AlreadyRunning, FactoryError, UsageError
from .eventlog import Event, EventFilter, format_ts
from .git import check_branch_name
from .locks import job_lock
from .signals import StopRequested, stop_on_signals
from .status import collect
from .tasks import PRIORITIES, STATUSES

app = typer.Typer(
    help="Run and steer the agent factory. State lives under $FACTORY_HOME (default ~/factory).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
task_app = typer.Typer(help="The task queue: what the agents should build.", no_args_is_help=True)
log_app = typer.Typer(help="The experiment log: every cycle, review, call and alert.", no_args_is_help=True)
config_app = typer.Typer(help="The configuration (factory.toml).", no_args_is_help=True)
queue_app = typer.Typer(help="The review queue: pushed branches waiting for the merge gate.", no_args_is_help=True)
app.add_typer(task_app, name="task")
app.add_typer(log_app, name="log")
app.add_typer(config_app, name="config")
app.add_typer(queue_app, name="queue")
sessions_app = typer.Typer(
    help="The agents' tmux sessions (factory-s1..sN, each running `loop`).", no_args_is_help=True
)
app.add_typer(sessions_app, name="sessions")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _version(value: bool) -> None:
    if value:
        render.emit(f"factoryctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Run and steer the agent factory. State lives under $FACTORY_HOME (default ~/factory)."""


@app.command()
def status(json: JsonOpt = False) -> None:
    """Sessions, queue sizes, today's spend and the last events."""
    report = collect(Context.load())
    render.emit_json(report) if json else render.emit(render.status_text(report))


@app.command()
def paths(json: JsonOpt = False) -> None:
    """Where the factory keeps its configuration, state, worktrees and reports."""
    ctx = Context.load()
    found = ctx.paths.as_dict(ctx.settings.repo.path)
    if json:
        render.emit_json(found)
        return
    width = max(map(len, found))
    for name, path in found.items():
        render.emit(f"{name:<{width}}  {path}")


@config_app.command("show")
def config_show(
    json: JsonOpt = False,
    defaults: Annotated[bool, typer.Option("--defaults", help="Show the built-in defaults instead.")] = False,
) -> None:
    """Print the effective configuration (factory.toml over the defaults)."""
    settings = Settings() if defaults else Context.load().settings
    data = settings_as_dict(settings)
    render.emit_json(data) if json else render.emit(to_toml(data).rstrip())


# -- tasks ---------------------------------------------------------------------------


@task_app.command("add")
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


@task_app.command("list")
def task_list(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include finished and cancelled tasks.")] = False,
    status: Annotated[str | None, typer.Option("--status", help="|".join(STATUSES))] = None,
    json: JsonOpt = False,
) -> None:
    """List open tasks, highest priority first."""
    if status is not None and status not in STATUSES:
        raise UsageError(f"unknown status {status!r}; allowed: {', '.join(STATUSES)}")
    tasks = sorted(Context.load().tasks().all(), key=lambda t: t.sort_key())
    if status is not None:
        tasks = [t for t in tasks if t.status == status]
    elif not all_:
        tasks = [t for t in tasks if t.status in ("queued", "assigned", "in_progress")]
    if json:
        render.emit_json([t.__dict__ for t in tasks])
    elif not tasks:
        render.emit("no tasks" + ("" if all_ else " open (--all shows finished ones)"))
    else:
        for task in tasks:
            render.emit(render.task_line(task))


@task_app.command("show")
def task_show(task_id: Annotated[int, typer.Argument(help="The task number.")], json: JsonOpt = False) -> None:
    """One task with its history."""
    task = Context.load().tasks().get(task_id)
    render.emit_json(task.__dict__) if json else render.emit(render.task_detail(task))


@task_app.command("retry")
def task_retry(task_id: Annotated[int, typer.Argument(help="The task number.")]) -> None:
    """Queue a parked or failed task again, with a fresh count of attempts."""
    ctx = Context.load()
    task = ctx.tasks().get(task_id)
    if task.status not in ("parked", "failed"):
        raise UsageError(f"task {task_id} is {task.status}; only parked or failed tasks can be retried")
    ctx.tasks().transition(task_id, "requeued", note="retried by a person")
    render.emit(f"queued task #{task_id} again: {task.title}")


@task_app.command("cancel")
def task_cancel(task_id: Annotated[int, typer.Argument(help="The task number.")]) -> None:
    """Cancel an open task (a cycle working on it finishes, but its branch is not pushed for it)."""
    task = Context.load().tasks().cancel(task_id)
    render.emit(f"cancelled task #{task.id}: {task.title}")


# -- log -----------------------------------------------------------------------------


def _since(text: str | None) -> str | None:
    """'2h', '30m', '1d' ago, or an ISO date/time (UTC), as a log timestamp."""
    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in units:
        try:
            return format_ts(datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]]))
        except (OverflowError, ValueError):
            raise UsageError(f"--since {text!r} reaches back before the year 1") from None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r}: use 30m, 2h, 1d or an ISO time like 2026-11-24T08:00") from None
    return format_ts(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


@log_app.command("tail")
def log_tail(
    n: Annotated[int, typer.Option("-n", "--lines", min=0, help="How many events.")] = 20,
    type_: Annotated[list[str] | None, typer.Option("--type", "-t", help="Only this type (repeatable).")] = None,
    session: Annotated[str | None, typer.Option("--session", "-s", help="Only this session.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="30m, 2h, 1d, or an ISO time.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")] = False,
    json: JsonOpt = False,
) -> None:
    """The last events of the experiment log, oldest first (JSON: one object a line)."""
    ctx = Context.load()
    if session is not None:
        ctx.session(session)
    flt = EventFilter(types=frozenset(type_ or ()), session=session, since=_since(since))

    def show(event: Event) -> None:
        line = jsonlib.dumps(event.as_dict(), ensure_ascii=False) if json else render.event_line(event)
        sys.stdout.write(line + "\n")

    for event in ctx.log.tail(n, flt):
        show(event)
    if follow:
        sys.stdout.flush()
        try:
            for event in ctx.log.follow(flt):
                show(event)
                sys.stdout.flush()
        except KeyboardInterrupt:
            pass


@app.command()
def cycle(
    session: Annotated[str, typer.Argument(help="The session, e.g. s1.")],
    json: JsonOpt = False,
) -> None:
    """Run one work cycle for SESSION: fresh branch, one agent call, checks before and after."""
    from .cycle import Cycle

    ctx = Context.load()
    with stop_on_signals():
        report = Cycle(ctx, session, progress=None if json else render.emit).run()
    if json:
        render.emit_json(report.as_event())
    else:
        render.emit(f"{report.verdict}: {report.reason}" + (f" ({report.branch})" if report.branch else ""))
    if report.verdict == "failed":
        raise typer.Exit(1)


@app.command()
def loop(
    session: Annotated[str, typer.Argument(help="The session, e.g. s1.")],
    max_cycles: Annotated[int | None, typer.Option("--max-cycles", min=1, help="Stop after N cycles.")] = None,
) -> None:
    """Run cycles for SESSION forever (every cycle.interval_s), printing progress; SIGTERM stops it cleanly."""
    from .loop import Loop

    def out(text: str) -> None:
        render.emit(text)
        sys.stdout.flush()

    raise typer.Exit(Loop(Context.load(), session, out=out, max_cycles=max_cycles).run())


@app.command()
def review(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Merge and test, but land, reject and ask nothing.")
    ] = False,
    branch: Annotated[str | None, typer.Option("--branch", help="Only this pending branch.")] = None,
    json: JsonOpt = False,
) -> None:
    """The merge gate: merge each pending branch onto main, test, review, land or reject."""
    from .review import Gate

    ctx = Context.load()
    gate = Gate(ctx, progress=None if json else render.emit, dry_run=dry_run)
    with stop_on_signals():  # SIGTERM: the checks and the reviewer call are killed with their children
        outcomes = gate.run(only=branch)
    summary = {"check_runs": gate.check_runs, "outcomes": [o.__dict__ for o in outcomes]}
    if json:
        render.emit_json(summary)
    else:
        render.emit(f"reviewed {len(outcomes)} branch(es) with {gate.check_runs} check run(s)")


@queue_app.command("list")
def queue_list(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include approved and rejected branches.")] = False,
    json: JsonOpt = False,
) -> None:
    """Branches waiting for review (oldest first)."""
    entries = Context.load().review_queue().read().get("branches", [])
    if not all_:
        entries = [e for e in entries if e.get("status") == "pending"]
    if json:
        render.emit_json(entries)
    elif not entries:
        render.emit("the review queue is empty" + ("" if all_ else " (--all shows decided branches)"))
    else:
        for e in entries:
            render.emit(render.queue_line(e))


@queue_app.command("show")
def queue_show(branch: Annotated[str, typer.Argument(help="The branch name.")], json: JsonOpt = False) -> None:
    """One queued branch with its counts and the reviewer's reasons."""
    from .review import find_entry

    entry = find_entry(Context.load(), branch)
    render.emit_json(entry) if json else render.emit(render.queue_detail(entry))


@queue_app.command("approve")
def queue_approve(branch: Annotated[str, typer.Argument(help="The branch name.")]) -> None:
    """Approve a pending branch as a person (review.mode = "human") and land it now if the gate is free."""
    from .review import Gate, approve

    ctx = Context.load()
    check_branch_name(branch)
    approve(ctx, branch)
    render.emit(f"approved {branch}")
    try:
        for outcome in Gate(ctx, progress=render.emit).run(only=branch):
            render.emit(
                f"{outcome.branch}: {outcome.verdict}" + (f" ({'; '.join(outcome.reasons)})" if outcome.reasons else "")
            )
    except AlreadyRunning:
        render.emit("a review is running; the branch lands at the next review")


@queue_app.command("reject")
def queue_reject(
    branch: Annotated[str, typer.Argument(help="The branch name.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why: the session reads it.")] = "no reason given",
) -> None:
    """Reject a pending branch as a person: archived, deleted, reasons sent to its session."""
    from .review import reject

    check_branch_name(branch)
    reject(Context.load(), branch, reason)
    render.emit(f"rejected {branch} (archived under refs/archive/{branch})")


@queue_app.command("restore")
def queue_restore(branch: Annotated[str, typer.Argument(help="The branch name.")]) -> None:
    """Bring a rejected branch back from its archive ref as pending."""
    from .review import restore

    check_branch_name(branch)
    restore(Context.load(), branch)
    render.emit(f"restored {branch}; it is pending again")


# -- scheduler, sessions, pause -----------------------------------------------------


def _say(text: str) -> None:
    render.emit(text)
    sys.stdout.flush()


@app.command()
def scheduler(
    once: Annotated[bool, typer.Option("--once", help="One tick, then exit.")] = False,
    json: JsonOpt = False,
) -> None:
    """Keep the factory running: gates, sessions, task assignment, budget, PM2 watchdog (every scheduler.tick_s)."""
    from .pm2 import own_app
    from .scheduler import Scheduler

    ctx = Context.load()
    self_app = own_app()
    if json:
        sched = Scheduler(ctx, self_app=self_app)
        with job_lock(ctx.paths.locks_dir, "scheduler"):
            render.emit_json(sched.tick().__dict__)
        return
    raise typer.Exit(Scheduler(ctx, out=_say, self_app=self_app).run(once=once))


SessionArg = Annotated[str | None, typer.Argument(help="One session, e.g. s1 (default: all).")]


def _pick(ctx: Context, session: str | None) -> list[str]:
    return list(ctx.settings.session_names) if session is None else [ctx.session(session)]


@sessions_app.command("list")
def sessions_list(json: JsonOpt = False) -> None:
    """Each session: tmux state, loop state, current task, last cycle, heartbeat age."""
    from .sessions import Sessions

    rows = Sessions(Context.load()).overview()
    if json:
        render.emit_json(rows)
        return
    for row in rows:
        render.emit(render.session_line(row))


@sessions_app.command("start")
def sessions_start(session: SessionArg = None) -> None:
    """Start the missing sessions (or one)."""
    from .sessions import Sessions

    ctx = Context.load()
    sessions = Sessions(ctx)
    for name in _pick(ctx, session):
        render.emit(f"{name}: {'started' if sessions.start(name) else 'already running'}")


@sessions_app.command("stop")
def sessions_stop(session: SessionArg = None) -> None:
    """Stop sessions cleanly: SIGTERM to the loop, which drops its half-made branch (the scheduler restarts them)."""
    from .sessions import Sessions

    ctx = Context.load()
    stopped = Sessions(ctx).stop(_pick(ctx, session))
    render.emit(f"stopped {', '.join(stopped)}" if stopped else "nothing to stop")
    if stopped:
        render.emit("(a running scheduler starts them again at its next tick; `factoryctl pause` keeps them idle)")


@sessions_app.command("restart")
def sessions_restart(session: SessionArg = None) -> None:
    """Stop sessions cleanly and start them again, to pick up a new configuration."""
    from .sessions import Sessions

    ctx = Context.load()
    sessions = Sessions(ctx)
    names = _pick(ctx, session)
    sessions.stop(names)
    for name in names:
        sessions.start(name)
    render.emit(f"restarted {', '.join(names)}")


@sessions_app.command("attach")
def sessions_attach(
    session: Annotated[str, typer.Argument(help="The session, e.g. s1.")],
    print_only: Annotated[bool, typer.Option("--print", help="Only print the tmux command.")] = False,
) -> None:
    """Watch a session's loop in tmux (detach with Ctrl-b d)."""
    import os
    import shlex

    from .sessions import Sessions

    ctx = Context.load()
    argv = Sessions(ctx).attach_command(ctx.session(session))
    if print_only or not sys.stdin.isatty():
        render.emit(shlex.join(argv))
        return
    os.execvp(argv[0], argv)  # an interactive terminal program: it takes over this process


@app.command()
def pause(
    session: SessionArg = None,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Shown while it waits.")] = "",
) -> None:
    """Pause the factory (or one session): running cycles finish, no new one starts."""
    ctx = Context.load()
    flag = ctx.paths.pause_flag(None if session is None else ctx.session(session))
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text(reason.strip() + "\n" if reason.strip() else "")
    render.emit(f"paused {session or 'the factory'}; `factoryctl resume{' ' + session if session else ''}` undoes it")


@app.command()
def resume(session: SessionArg = None) -> None:
    """Resume the factory (or one session) after `factoryctl pause`."""
    ctx = Context.load()
    flag = ctx.paths.pause_flag(None if session is None else ctx.session(session))
    if not flag.exists():
        render.emit(f"{session or 'the factory'} was not paused")
        return
    flag.unlink()
    render.emit(f"resumed {session or 'the factory'}")


@log_app.command("path")
def log_path() -> None:
    """Print the log file's path."""
    render.emit(str(Context.load().paths.log_file))


def main(argv: list[str] | None = None) -> int:
    """Entry point: expected failures become one line on stderr and a non-zero exit.

    Typer (standalone) prints usage errors itself and exits through SystemExit; a
    FactoryError raised by a command propagates here.
    """
    try:
        app(args=argv, prog_name="factoryctl")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except StopRequested as exc:
        sys.stderr.write(f"interrupted ({exc}); state was settled before exiting\n")
        return 130
    except AlreadyRunning as exc:
        sys.stderr.write(f"{exc}\n")
        return exc.exit_code
    except FactoryError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return exc.exit_code
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
