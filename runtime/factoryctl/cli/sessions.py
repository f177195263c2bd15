"""`factoryctl sessions ...`: the agents' tmux sessions."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from factoryctl.cli import terminal as render
from factoryctl.cli.options import JsonOpt, SessionArg
from factoryctl.jobs.context import Context

app = typer.Typer(
    help="The agents' tmux sessions (factory-s1..sN, or factory-HOST-sI in a fleet, each running `loop`).",
    no_args_is_help=True,
)


def _pick(ctx: Context, session: str | None) -> list[str]:
    """The sessions a tmux action touches: this host's (a gate has none), or the one named if it runs here."""
    return list(ctx.settings.local_sessions) if session is None else [ctx.local_session(session)]


@app.command("list")
def sessions_list(json: JsonOpt = False) -> None:
    """Each session: tmux state, loop state, current task, last cycle, heartbeat age."""
    from factoryctl.jobs.sessions import Sessions

    rows = Sessions(Context.load()).overview()
    if json:
        render.emit_json(rows)
        return
    for row in rows:
        render.emit(render.session_line(row))


@app.command("start")
def sessions_start(session: SessionArg = None) -> None:
    """Start the missing sessions (or one)."""
    from factoryctl.jobs.sessions import Sessions

    ctx = Context.load()
    sessions = Sessions(ctx)
    for name in _pick(ctx, session):
        render.emit(f"{name}: {'started' if sessions.start(name) else 'already running'}")


@app.command("stop")
def sessions_stop(session: SessionArg = None) -> None:
    """Stop sessions cleanly: SIGTERM to the loop, which drops its half-made branch (the scheduler restarts them)."""
    from factoryctl.jobs.sessions import Sessions

    ctx = Context.load()
    stopped = Sessions(ctx).stop(_pick(ctx, session))
    render.emit(f"stopped {', '.join(stopped)}" if stopped else "nothing to stop")
    if stopped:
        render.emit("(a running scheduler starts them again at its next tick; `factoryctl pause` keeps them idle)")


@app.command("restart")
def sessions_restart(session: SessionArg = None) -> None:
    """Stop sessions cleanly and start them again, to pick up a new configuration."""
    from factoryctl.jobs.sessions import Sessions

    ctx = Context.load()
    sessions = Sessions(ctx)
    names = _pick(ctx, session)
    sessions.stop(names)
    for name in names:
        sessions.start(name)
    render.emit(f"restarted {', '.join(names)}")


@app.command("attach")
def sessions_attach(
    session: Annotated[str, typer.Argument(help="The session, e.g. s1.")],
    print_only: Annotated[bool, typer.Option("--print", help="Only print the tmux command.")] = False,
) -> None:
    """Watch a session's loop in tmux (detach with Ctrl-b d)."""
    import os
    import shlex

    from factoryctl.jobs.sessions import Sessions

    ctx = Context.load()
    argv = Sessions(ctx).attach_command(ctx.local_session(session))
    if print_only or not sys.stdin.isatty():
        render.emit(shlex.join(argv))
        return
    os.execvp(argv[0], argv)  # an interactive terminal program: it takes over this process
