"""Options and arguments several commands share."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from factoryctl.cli import terminal

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
SessionArg = Annotated[str | None, typer.Argument(help="One session, e.g. s1 (default: all).")]


def say(text: str) -> None:
    """Progress for a person, flushed at once (PM2 and tmux show it as it comes)."""
    terminal.emit(text)
    sys.stdout.flush()
