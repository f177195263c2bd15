"""`factoryctl standup`: the team's three-round meeting (cron every 2 h, bot and HTTP triggers)."""

from __future__ import annotations

import typer

from factoryctl.cli import terminal as render
from factoryctl.cli.options import JsonOpt, say
from factoryctl.cli.skills import plain
from factoryctl.core.signals import stop_on_signals
from factoryctl.jobs.context import Context
from factoryctl.rules.words import money, plural


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
        created = [t for t in data.get("tasks_created") or [] if "id" in t]
        tasks = f", {plural(len(created), 'task')} created" if created else ""
        render.emit(f"standup held: {plural(data['calls'], 'model call')}, {money(data['cost_usd'])}{tasks}; "
                    f"transcript {data['transcript']}")  # fmt: skip
        # The summary as plain text: the transcript escapes Markdown, Telegram escapes HTML, a terminal neither.
        render.emit("summary:\n" + "\n".join(f"  {line}" for line in plain(str(data["summary"]), keep_lines=True)
                                              .splitlines()))  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("standup")(standup)
