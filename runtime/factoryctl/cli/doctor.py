"""`factoryctl doctor`: each session's health with its evidence, actions, skills learned (cron every 3 h)."""

from __future__ import annotations

import typer

from factoryctl.cli import terminal as render
from factoryctl.cli.options import JsonOpt, say
from factoryctl.cli.skills import plain
from factoryctl.core.signals import stop_on_signals
from factoryctl.jobs.context import Context


def doctor(json: JsonOpt = False) -> None:
    """Classify every session (productive, working, stuck, idle, error_looping), act, learn skills."""
    from factoryctl.jobs.doctor import Doctor  # imported here: every other command starts faster

    with stop_on_signals():
        data = Doctor(Context.load(), progress=None if json else say).run()
    if json:
        render.emit_json(data)
        return
    for name, info in data["sessions"].items():
        render.emit(f"{name:<4} {info['state']:<14} {plain(info['reason'])}")
    render.emit(plain(f"model call: {data['call']}; report {data['report']}"))


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
