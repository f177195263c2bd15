"""`factoryctl standup`: the team's three-round meeting (cron every 2 h, bot and HTTP triggers)."""

from __future__ import annotations

import typer

from factoryctl.cli import terminal as render
from factoryctl.cli.options import JsonOpt, say
from factoryctl.cli.skills import plain
from factoryctl.core.signals import stop_on_signals
from factoryctl.jobs.context import Context


def standup(json: JsonOpt = False) -> None:
    """Hold the standup: facts, three rounds and a summary; tasks and advice for what comes next."""
    from factoryctl.jobs.standup import Standup  # imported here: every other command starts faster

    with stop_on_signals():
        data = Standup(Context.load(), progress=None if json else say).run()
    if json:
        render.emit_json(data)
    elif data.get("skipped"):
        render.emit(f"no standup: {data['reason']}")
    else:
        render.emit(f"standup held: {data['calls']} call(s), ${data['cost_usd']:.4f}, transcript {data['transcript']}")
        render.emit(plain(str(data["summary"])))


def register(app: typer.Typer) -> None:
    app.command("standup")(standup)
