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
from factoryctl.jobs.context import Context
from factoryctl.jobs.init import InitReport, init
from factoryctl.jobs.proof import Proof, prove


def command(
    repo: Annotated[str | None, typer.Argument(help="A local git repository or a git URL to clone.")] = None,
    home: Annotated[
        Path | None, typer.Option("--home", help="The new factory's home (default $FACTORY_HOME or ~/factory).")
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="The agent's command line (default: claude -p ...).")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Prove an existing home: tools, setup and every check once on main.")
    ] = False,
    prove_it: Annotated[
        bool, typer.Option("--prove/--no-prove", help="After writing, run setup and every check once on main.")
    ] = True,
    json: JsonOpt = False,
) -> None:
    """Clone REPO into a new factory home, write a factory.toml with its detected checks, and prove it runs."""
    target = home.expanduser().absolute() if home is not None else factory_home()
    if check:
        if repo is not None:
            raise UsageError("init --check proves an existing home: give --home, not a repository")
        proven = prove(Context.load(target))
        render.emit_json(proven.as_dict()) if json else render.emit(describe_proof(proven))
        raise typer.Exit(0 if proven.ok else 1)
    if repo is None:
        raise UsageError("init needs a repository (a local path or a git URL), or --check")
    try:
        agent_argv = shlex.split(agent) if agent else []
    except ValueError as exc:
        raise UsageError(f"--agent: {exc}") from None
    report = init(repo, target, agent=agent_argv)
    proof = prove(Context.load(target)) if prove_it else None
    if json:
        render.emit_json({**report.as_dict(), "proof": None if proof is None else proof.as_dict()})
    else:
        render.emit(describe(report) + ("" if proof is None else "\n\n" + describe_proof(proof)))
    if proof is not None and not proof.ok:
        raise typer.Exit(1)


def describe_proof(proof: Proof) -> str:
    """main's baseline as the factory measures it, and one line per problem with its fix."""
    lines = [f"main's baseline{f' at {proof.commit[:12]}' if proof.commit else ''} (what the factory measures):"]
    for name, c in proof.baseline.items():
        if c.crashed:
            lines.append(f"  {name}: crashed ({c.note})")
        elif c.total or c.failed:
            lines.append(f"  {name}: {c.passed} passed, {c.failed} failed of {c.total}")
        else:
            lines.append(f"  {name}: {c.errors} error(s)")
    if not proof.baseline:
        lines.append("  not measured (see the problems below)")
    if proof.python:
        lines.append(f"python: {proof.python}")
    lines += [f"problem: {p.line()}" for p in proof.problems]
    lines.append("proof: ok" if proof.ok else f"proof: {len(proof.problems)} problem(s); after fixing, run "
                 "factoryctl init --check")  # fmt: skip
    return "\n".join(lines)


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
