"""The check adapter: run the configured checks and turn their output into counts.

Like a pyinfra fact, a check is a command (`CheckSpec.command`) and a pure parse of its
output (`parsers.parse`). Heavy checks run while holding a heavy slot, which the caller
hands in (the cross-process semaphore lives in `state/locks`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

from factoryctl.adapters.evidence import bound, extract
from factoryctl.adapters.junit import read_report, report_args
from factoryctl.adapters.parsers import parse
from factoryctl.adapters.runner import Completed, run
from factoryctl.adapters.sandbox import Launch
from factoryctl.core.checks import CheckRun, Counts
from factoryctl.core.clock import format_ts
from factoryctl.core.config import CheckSpec
from factoryctl.core.defaults import SECRET_ENV

HeavySlot = Callable[[], AbstractContextManager[object]]


def run_checks(
    specs: Sequence[CheckSpec],
    launch: Launch,
    *,
    heavy_slot: HeavySlot,
    clock: Callable[[], datetime],
    runner: Callable[..., Completed] = run,
) -> dict[str, CheckRun]:
    """Run every check in the launch's workdir; a missing tool or a timeout is a crashed check, not an exception.

    Checks run code the agent wrote: sandboxed, without the network unless the check asks
    for it, with the launch's allow-listed environment (no credential of any kind).
    """
    out: dict[str, CheckRun] = {}
    for spec in specs:
        if spec.heavy:
            with heavy_slot():
                out[spec.name] = _run_one(spec, launch, clock, runner)
        else:
            out[spec.name] = _run_one(spec, launch, clock, runner)
    return out


def check_argv(spec: CheckSpec) -> list[str]:
    """The check's command; `python -m pytest` runs with -P, so a `pytest.py` in the repo cannot stand in for it."""
    argv = list(spec.command)
    if (
        spec.parser == "pytest"
        and len(argv) >= 3
        and Path(argv[0]).name.startswith("python")
        and argv[1:3]
        == [
            "-m",
            "pytest",
        ]
    ):
        argv.insert(1, "-P")
    return argv


def _run_one(
    spec: CheckSpec, launch: Launch, clock: Callable[[], datetime], runner: Callable[..., Completed]
) -> CheckRun:
    started = clock()
    cwd = launch.policy.workdir / spec.cwd
    report = None if launch.policy.home is None else launch.policy.home / "reports" / f"{spec.name}.xml"
    tests = None
    root = str(launch.policy.workdir)  # the path the tools print: taken out of the evidence
    secrets = [os.environ.get(name, "") for name in SECRET_ENV]
    try:
        argv = check_argv(spec)
        if report is not None:
            report.parent.mkdir(parents=True, exist_ok=True)
            report.unlink(missing_ok=True)  # only what this run wrote counts
            argv += report_args(spec.parser, report)
        done = runner(launch.argv(argv, cwd=cwd, network=spec.network), cwd=cwd, timeout=spec.timeout_s,
                      env=dict(launch.env))  # fmt: skip
        counts = parse(spec.parser, done.stdout, done.stderr, done.returncode, pattern=spec.pattern)
        evidence = extract(spec.parser, done.stdout, done.stderr, done.returncode, counts, root=root, secrets=secrets)
        if report is not None and report_args(spec.parser, report):
            tests = read_report(report)
        took = done.duration_s
    except Exception as exc:  # a missing binary or bad cwd is a crashed check
        counts = Counts(crashed=True, note=str(exc)[:160])
        evidence = bound([counts.note], root=root, secrets=secrets)
        took = 0.0
    ended = clock()
    return CheckRun(spec.name, counts, format_ts(started), format_ts(ended), took, spec.heavy, evidence, tests=tests)
