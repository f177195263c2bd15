"""The check adapter: run the configured checks and turn their output into counts.

Like a pyinfra fact, a check is a command (`CheckSpec.command`) and a pure parse of its
output (`parsers.parse`). Heavy checks run while holding a heavy slot, which the caller
hands in (the cross-process semaphore lives in `state/locks`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

from factoryctl.adapters.agent import agent_env
from factoryctl.adapters.evidence import bound, extract
from factoryctl.adapters.parsers import parse
from factoryctl.adapters.runner import Completed, run
from factoryctl.core.checks import CheckRun, Counts
from factoryctl.core.clock import format_ts
from factoryctl.core.config import CheckSpec
from factoryctl.core.defaults import SECRET_ENV

HeavySlot = Callable[[], AbstractContextManager[object]]


def run_checks(
    specs: Sequence[CheckSpec],
    cwd: Path,
    *,
    heavy_slot: HeavySlot,
    clock: Callable[[], datetime],
    runner: Callable[..., Completed] = run,
) -> dict[str, CheckRun]:
    """Run every check in `cwd`; a missing tool or a timeout is a crashed check, not an exception.

    Checks run code the agent wrote, so they get the agent's environment (no bot or HTTP token).
    """
    env = agent_env()
    out: dict[str, CheckRun] = {}
    for spec in specs:
        if spec.heavy:
            with heavy_slot():
                out[spec.name] = _run_one(spec, cwd, clock, runner, env)
        else:
            out[spec.name] = _run_one(spec, cwd, clock, runner, env)
    return out


def _run_one(
    spec: CheckSpec, cwd: Path, clock: Callable[[], datetime], runner: Callable[..., Completed], env: dict[str, str]
) -> CheckRun:
    started = clock()
    secrets = [env.get(name, "") for name in SECRET_ENV]
    try:
        done = runner(spec.command, cwd=cwd / spec.cwd, timeout=spec.timeout_s, env=env)
        counts = parse(spec.parser, done.stdout, done.stderr, done.returncode, pattern=spec.pattern)
        evidence = extract(spec.parser, done.stdout, done.stderr, done.returncode, counts, root=str(cwd),
                           secrets=secrets)  # fmt: skip
        took = done.duration_s
    except Exception as exc:  # a missing binary or bad cwd is a crashed check
        counts = Counts(crashed=True, note=str(exc)[:160])
        evidence = bound([counts.note], root=str(cwd), secrets=secrets)
        took = 0.0
    ended = clock()
    return CheckRun(spec.name, counts, format_ts(started), format_ts(ended), took, spec.heavy, evidence)
