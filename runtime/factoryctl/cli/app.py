"""factoryctl: the command line. This module only wires commands to functions."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from factoryctl import __version__
from factoryctl.cli import bot, config, doctor, init, log, queue, report, serve, sessions, skills, standup, state, tasks
from factoryctl.cli import terminal as render
from factoryctl.cli.options import JsonOpt, SessionArg, say
from factoryctl.core.defaults import MODEL_ENV, SECRET_ENV
from factoryctl.core.envfile import fill_environ
from factoryctl.core.errors import AlreadyRunning, FactoryError
from factoryctl.core.paths import Paths, factory_home
from factoryctl.core.signals import StopRequested, stop_on_signals
from factoryctl.jobs.context import Context
from factoryctl.jobs.status import collect
from factoryctl.rules.words import plural

app = typer.Typer(
    help="Run and steer the agent factory. State lives under $FACTORY_HOME (default ~/factory).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(tasks.app, name="task")
app.add_typer(log.app, name="log")
app.add_typer(config.app, name="config")
app.add_typer(queue.app, name="queue")
app.add_typer(sessions.app, name="sessions")
app.add_typer(skills.app, name="skills")
app.add_typer(state.app, name="state")
standup.register(app)
doctor.register(app)
app.command("init")(init.command)
app.command("report")(report.report)
app.command("serve")(serve.serve)
app.add_typer(bot.app, name="bot")


def _version(value: bool) -> None:
    if value:
        render.emit(f"factoryctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Run and steer the agent factory. State lives under $FACTORY_HOME (default ~/factory)."""


@app.command()
def status(json: JsonOpt = False) -> None:
    """Sessions, queue sizes, today's spend and the last events."""
    report = collect(Context.load())
    render.emit_json(report.as_dict()) if json else render.emit(render.status_text(report))


@app.command()
def paths(json: JsonOpt = False) -> None:
    """Where the factory keeps its configuration, state, worktrees and reports."""
    ctx = Context.load()
    found = ctx.paths.as_dict(ctx.settings.repo.path)
    if json:
        render.emit_json(found)
        return
    width = max(map(len, found))
    for name, path in found.items():
        render.emit(f"{name:<{width}}  {path}")


@app.command()
def cycle(
    session: Annotated[str, typer.Argument(help="The session, e.g. s1.")],
    json: JsonOpt = False,
) -> None:
    """Run one work cycle for SESSION: fresh branch, one agent call, checks before and after."""
    from factoryctl.jobs.cycle import Cycle

    ctx = Context.load()
    with stop_on_signals():
        report = Cycle(ctx, session, progress=None if json else render.emit).run()
    if json:
        render.emit_json(report.as_event())
    else:
        render.emit(f"{report.verdict}: {report.reason}" + (f" ({report.branch})" if report.branch else ""))
    if report.verdict == "failed":
        raise typer.Exit(1)


@app.command()
def loop(
    session: Annotated[str, typer.Argument(help="The session, e.g. s1.")],
    max_cycles: Annotated[int | None, typer.Option("--max-cycles", min=1, help="Stop after N cycles.")] = None,
) -> None:
    """Run cycles for SESSION forever (every cycle.interval_s), printing progress; SIGTERM stops it cleanly."""
    from factoryctl.jobs.loop import Loop

    raise typer.Exit(Loop(Context.load(), session, out=say, max_cycles=max_cycles).run())


@app.command()
def review(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Merge and test, but land, reject and ask nothing.")
    ] = False,
    branch: Annotated[str | None, typer.Option("--branch", help="Only this pending branch.")] = None,
    json: JsonOpt = False,
) -> None:
    """The merge gate: merge each pending branch onto main, test, review, land or reject."""
    from factoryctl.jobs.review.gate import MergeGate

    ctx = Context.load()
    gate = MergeGate(ctx, progress=None if json else render.emit, dry_run=dry_run)
    with stop_on_signals():  # SIGTERM: the checks and the reviewer call are killed with their children
        decisions = gate.run(only=branch)
    if json:
        render.emit_json({"check_runs": gate.check_runs, "outcomes": [d.as_dict() for d in decisions]})
    else:
        branches = plural(len(decisions), "branch", "branches")
        render.emit(f"reviewed {branches} with {plural(gate.check_runs, 'check run')}")


# -- scheduler, sessions, pause -----------------------------------------------------


@app.command()
def scheduler(
    once: Annotated[bool, typer.Option("--once", help="One tick, then exit.")] = False,
    json: JsonOpt = False,
) -> None:
    """Keep the factory running: holds, sessions, task assignment, budget, PM2 watchdog (every scheduler.tick_s)."""
    from factoryctl.adapters.pm2 import own_app
    from factoryctl.jobs.scheduler import Scheduler

    ctx = Context.load()
    self_app = own_app()
    if json:
        sched = Scheduler(ctx, self_app=self_app)
        with sched.job_lock():
            render.emit_json(sched.tick().__dict__)
        return
    raise typer.Exit(Scheduler(ctx, out=say, self_app=self_app).run(once=once))


@app.command()
def pause(
    session: SessionArg = None,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Shown while it waits.")] = "",
) -> None:
    """Pause the factory (or one session): running cycles finish, no new one starts."""
    from factoryctl.jobs import pause as pausing

    render.emit(pausing.pause(Context.load(), session, reason))


@app.command()
def resume(session: SessionArg = None) -> None:
    """Resume the factory (or one session) after `factoryctl pause`."""
    from factoryctl.jobs import pause as pausing

    render.emit(pausing.resume(Context.load(), session))


def main(argv: list[str] | None = None) -> int:
    """Entry point: expected failures become one line on stderr and a non-zero exit.

    Typer (standalone) prints usage errors itself and exits through SystemExit; a
    FactoryError raised by a command propagates here.
    """
    # A job started by hand gets the model's credential and settings as cron's and PM2's do.
    fill_environ(Paths(factory_home()).secrets_file, (*SECRET_ENV, *MODEL_ENV))
    try:
        app(args=argv, prog_name="factoryctl")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except StopRequested as exc:
        sys.stderr.write(f"interrupted ({exc}); state was settled before exiting\n")
        return 130
    except AlreadyRunning as exc:
        sys.stderr.write(f"{exc}\n")
        return exc.exit_code
    except FactoryError as exc:
        sys.stderr.write(f"Error: {render.printable(str(exc))}\n")
        return exc.exit_code
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
