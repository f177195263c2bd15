"""The check adapter: run the configured checks and turn their output into counts.

Like a pyinfra fact, a check is a command (`CheckSpec.command`) and a pure parse of its
output (`parsers.parse`). Heavy checks run while holding a heavy slot, which the caller
hands in (the cross-process semaphore lives in `state/locks`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from factoryctl.adapters.evidence import bound, extract
from factoryctl.adapters.git import Git
from factoryctl.adapters.junit import Outcomes, counts_from_report, disagreement, parse_junit, report_args
from factoryctl.adapters.parsers import parse, summary_missing
from factoryctl.adapters.runner import Completed, run
from factoryctl.adapters.sandbox import Launch
from factoryctl.core.checks import CheckRun, Counts
from factoryctl.core.clock import format_ts
from factoryctl.core.config import CheckSpec
from factoryctl.core.defaults import JUNIT_MAX_BYTES, MAX_CAPTURE_BYTES, NOTE_CHARS, SECRET_ENV, STRAYS_SHOWN

HeavySlot = Callable[[], AbstractContextManager[object]]


@dataclass(frozen=True)
class Pristine:
    """The worktree the checks run in, made pristine before each check and looked at after it.

    `keep`: the dependency folders setup made (repo.dependency_dirs), which stay; everything
    else the commit does not have (untracked or ignored: bytecode, caches, a config file a
    test wrote) is removed before each check, and a check that leaves any behind is void.
    """

    git: Git
    keep: tuple[str, ...]

    def clean(self) -> None:
        self.git.clean_all(self.keep)

    def void(self, head: str) -> str | None:
        """Why the check just run did not test `head` as committed (None: it did)."""
        if not self.git.unchanged(head):
            return "it changed HEAD or a tracked file: the run is void"
        strays = self.git.strays(self.keep)
        if not strays:
            return None
        more = f" and {len(strays) - STRAYS_SHOWN} more" if len(strays) > STRAYS_SHOWN else ""
        return f"it left files the commit does not have ({', '.join(strays[:STRAYS_SHOWN])}{more}): the run is void"


def run_checks(
    specs: Sequence[CheckSpec],
    launch: Launch,
    *,
    heavy_slot: HeavySlot,
    clock: Callable[[], datetime],
    runner: Callable[..., Completed] = run,
    pristine: Pristine | None = None,
) -> dict[str, CheckRun]:
    """Run every check in the launch's workdir; a missing tool or a timeout is a crashed check, not an exception.

    Checks run code the agent wrote: sandboxed, without the network unless the check asks
    for it, with the launch's allow-listed environment (no credential of any kind), each in
    a pristine copy of the commit (`pristine`) with a HOME of its own that is gone after it.
    """
    out: dict[str, CheckRun] = {}
    head = None if pristine is None else pristine.git.rev("HEAD")
    for spec in specs:
        if spec.heavy:
            with heavy_slot():
                out[spec.name] = _run_one(spec, launch, clock, runner, pristine, head)
        else:
            out[spec.name] = _run_one(spec, launch, clock, runner, pristine, head)
    if pristine is not None:
        pristine.clean()  # nothing a check wrote is left for what runs next (the agent, another branch)
    return out


def check_argv(spec: CheckSpec) -> list[str]:
    """The check's command; `python [options] -m pytest` runs with -P, so a `pytest.py` in the repo cannot
    stand in for it."""
    argv = list(spec.command)
    if spec.parser == "pytest" and Path(argv[0]).name.startswith("python") and _runs_module(argv, "pytest"):
        argv.insert(1, "-P")
    return argv


def _runs_module(argv: list[str], module: str) -> bool:
    """Whether the interpreter's options in `argv` end in `-m module` (`-X` and `-W` take a value)."""
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == "-m":
            return argv[i + 1 : i + 2] == [module]
        i += 2 if argv[i] in ("-X", "-W") else 1
    return False


def _run_one(
    spec: CheckSpec,
    launch: Launch,
    clock: Callable[[], datetime],
    runner: Callable[..., Completed],
    pristine: Pristine | None,
    head: str | None,
) -> CheckRun:
    started = clock()
    cwd = launch.policy.workdir / spec.cwd
    tests: Outcomes | None = None
    root = str(launch.policy.workdir)  # the path the tools print: taken out of the evidence
    secrets = [os.environ.get(name, "") for name in SECRET_ENV]
    run_dir = Path(tempfile.mkdtemp(prefix="factory-check-"))  # this run's HOME, and its report's folder
    home, verdict = run_dir / "home", run_dir / "report"
    try:
        home.mkdir()
        verdict.mkdir()
        if pristine is not None:
            pristine.clean()
        report = verdict / "junit.xml"  # a named pipe in a folder the check sees read-only
        reporting = bool(report_args(spec.parser, report))
        argv = check_argv(spec) + report_args(spec.parser, report)
        own = launch.fresh(home, verdict)
        done = runner(own.argv(argv, cwd=cwd, network=spec.network), cwd=cwd, timeout=spec.timeout_s,
                      env=dict(own.env), report=report if reporting else None,
                      report_limit=JUNIT_MAX_BYTES)  # fmt: skip
        counts = parse(spec.parser, done.stdout, done.stderr, done.returncode, pattern=spec.pattern)
        evidence = extract(spec.parser, done.stdout, done.stderr, done.returncode, counts, root=root, secrets=secrets)
        if reporting:
            tests = None if done.report is None else parse_junit(done.report.decode("utf-8", errors="replace"))
            if tests is not None and not done.cut and summary_missing(spec.parser, done.stdout, done.returncode):
                counts = counts_from_report(spec.parser, tests, done.returncode)
                failing = [f"FAILED {name}" for name, outcome in tests.items() if outcome == "failed"]
                evidence = bound([*failing, *evidence], root=root, secrets=secrets) if counts.failed else ()
        counts = _trust(counts, done, tests if reporting else {})
        void = None if pristine is None or head is None else pristine.void(head)
        if void is not None:
            counts = replace(counts, crashed=True, note=void[:NOTE_CHARS])
        took = done.duration_s
    except Exception as exc:  # a missing binary or bad cwd is a crashed check
        counts = Counts(crashed=True, note=str(exc)[:160])
        evidence = bound([counts.note], root=root, secrets=secrets)
        took = 0.0
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    ended = clock()
    return CheckRun(spec.name, counts, format_ts(started), format_ts(ended), took, spec.heavy, evidence, tests=tests)


def _trust(counts: Counts, done: Completed, tests: Outcomes | None) -> Counts:
    """The counts, or a crash when the run cannot be believed (fail closed): output cut at the
    capture limit, or a test report missing, cut, unreadable or disagreeing with the summary."""
    if counts.crashed:
        return counts
    why = None
    if done.cut:
        why = f"printed more than {MAX_CAPTURE_BYTES:,} bytes: its output was cut, its summary is not trusted"
    elif tests is None and counts.total:
        why = "its test report is missing, cut or unreadable (written twice?)"
    elif tests:
        why = disagreement(counts, tests)
    return replace(counts, crashed=True, note=why[:NOTE_CHARS]) if why else counts
