"""`factoryctl init REPO [--home DIR]`: a new factory for a repository, its checks detected."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from factoryctl.cli import terminal as render
from factoryctl.cli.options import JsonOpt
from factoryctl.core.errors import UsageError
from factoryctl.core.paths import factory_home
from factoryctl.jobs.init import InitReport, init


def command(
    repo: Annotated[str, typer.Argument(help="A local git repository or a git URL to clone.")],
    home: Annotated[
        Path | None, typer.Option("--home", help="The new factory's home (default $FACTORY_HOME or ~/factory).")
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="The agent's command line (default: claude -p ...).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Clone REPO into a new factory home and write a factory.toml with its detected checks."""
    try:
        agent_argv = shlex.split(agent) if agent else []
    except ValueError as exc:
        raise UsageError(f"--agent: {exc}") from None
    target = home.expanduser().absolute() if home is not None else factory_home()
    report = init(repo, target, agent=agent_argv)
    render.emit_json(report.as_dict()) if json else render.emit(describe(report))


def describe(report: InitReport) -> str:
    d = report.detected
    lines = [f"cloned {report.origin} into {report.repo} (main branch: {report.main})"]
    if report.origin != str(report.repo) and report.origin.startswith(str(report.home)):
        lines.append(f"  shared remote: {report.origin} (get landed work: git pull {report.origin} {report.main})")
    lines += ["", "found:"] + [f"  {line}" for line in d.found or ("nothing this version recognises",)]
    lines.append("setup:  " + (shlex.join(d.setup) if d.setup else "(none)"))
    lines += ["checks:"] + [f"  {c['name']}: {shlex.join(c['command'])} (parser {c['parser']})" for c in d.checks]
    if not d.checks:
        lines.append("  none: the gate waits for a person (review.allow_without_checks = false)")
    lines += [f"check by hand: {note}" for note in d.notes]
    lines += ["", f"wrote {report.home / 'factory.toml'}; try it:",
              f"  export FACTORY_HOME={shlex.quote(str(report.home))}",
              "  factoryctl config show && factoryctl cycle s1 && factoryctl review"]  # fmt: skip
    return "\n".join(lines)
