"""`factoryctl config ...`: the configuration."""

from __future__ import annotations

from typing import Annotated

import typer

from factoryctl.cli import terminal as render
from factoryctl.cli.options import JsonOpt
from factoryctl.core.config import Settings
from factoryctl.core.configfile import settings_as_dict
from factoryctl.core.tomltext import to_toml
from factoryctl.jobs.context import Context

app = typer.Typer(help="The configuration (factory.toml).", no_args_is_help=True)


@app.command("show")
def config_show(
    json: JsonOpt = False,
    defaults: Annotated[bool, typer.Option("--defaults", help="Show the built-in defaults instead.")] = False,
) -> None:
    """Print the effective configuration (factory.toml over the defaults)."""
    settings = Settings() if defaults else Context.load().settings
    data = settings_as_dict(settings)
    render.emit_json(data) if json else render.emit(to_toml(data).rstrip())
