"""`factoryctl report`: the factory's outcome figures over a window."""

from __future__ import annotations

from typing import Annotated

import typer

from factoryctl.cli import terminal as render
from factoryctl.cli.options import JsonOpt
from factoryctl.jobs.context import Context
from factoryctl.jobs.outcomes import report_dict, since_for_figures


def report(
    since: Annotated[str, typer.Option("--since", help="30m, 24h, 7d, or an ISO time (UTC).")] = "24h",
    json: JsonOpt = False,
) -> None:
    """Outcome figures: cycles, verdict mix, discard rate, landings, spend and tokens per landed change."""
    ctx = Context.load()
    figures = report_dict(ctx, since_for_figures(since, ctx.clock()))
    render.emit_json(figures) if json else render.emit(render.report_text(figures))
