"""`factoryctl log ...`: the experiment log."""

from __future__ import annotations

import json as jsonlib
import sys
from typing import Annotated

import typer

from factoryctl.cli import terminal as render
from factoryctl.cli.options import JsonOpt
from factoryctl.core.clock import format_ts, parse_since, utcnow
from factoryctl.jobs.context import Context
from factoryctl.state.eventlog import Event, EventFilter

app = typer.Typer(help="The experiment log: every cycle, review, call and alert.", no_args_is_help=True)


def _since(text: str | None) -> str | None:
    """`--since` as a log timestamp: any time back (the log is read from its end until there)."""
    return None if text is None else format_ts(parse_since(text, utcnow(), bound=None, name="--since"))


@app.command("tail")
def log_tail(
    n: Annotated[int, typer.Option("-n", "--lines", min=0, help="How many events.")] = 20,
    type_: Annotated[list[str] | None, typer.Option("--type", "-t", help="Only this type (repeatable).")] = None,
    session: Annotated[str | None, typer.Option("--session", "-s", help="Only this session.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="30m, 2h, 1d, or an ISO time.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")] = False,
    json: JsonOpt = False,
) -> None:
    """The last events of the experiment log, oldest first, one sentence each (--json: full records)."""
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


@app.command("path")
def log_path() -> None:
    """Print the log file's path (with PostgreSQL: the database and its table)."""
    ctx = Context.load()
    render.emit(str(ctx.paths.log_file) if ctx.state.kind == "files" else f"{ctx.state.describe()} factory_events")
