"""`factoryctl state ...`: where the shared state lives, and moving it into PostgreSQL."""

from __future__ import annotations

from typing import Annotated

import typer

from factoryctl.cli import terminal as render
from factoryctl.cli.options import JsonOpt
from factoryctl.jobs.context import Context

app = typer.Typer(help="The shared state: files under FACTORY_HOME, or PostgreSQL.", no_args_is_help=True)


@app.command("show")
def state_show(json: JsonOpt = False) -> None:
    """Where the state lives, and whether it can be reached."""
    ctx = Context.load()
    ctx.state.check()
    where = {"backend": ctx.state.kind, "where": ctx.state.describe(), "documents": len(ctx.state.documents())}
    if json:
        render.emit_json(where)
    else:
        render.emit(f"{ctx.state.kind}: {ctx.state.describe()} ({where['documents']} documents)")


@app.command("migrate")
def state_migrate(
    to: Annotated[str, typer.Option("--to", help="postgresql://USER@HOST:PORT/DB (password: FACTORY_DB_PASSWORD)")],
    json: JsonOpt = False,
) -> None:
    """Copy this factory's state files into an empty PostgreSQL database (every job stopped); verify the counts."""
    from factoryctl.jobs.migrate import migrate  # psycopg only for this command

    done = migrate(Context.load(), to)
    if json:
        render.emit_json(done.__dict__)
    else:
        for line in done.lines():
            render.emit(line)
