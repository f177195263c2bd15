"""The check adapter: run the configured checks and compare their counts.

Heavy checks run under the cross-process heavy-slot semaphore. The baseline of a main
commit (for one checks configuration) is computed once and shared by every session: the
first session to need it computes it under a lock while the others wait for the file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .agent import agent_env
from .config import CheckSpec
from .eventlog import EventLog, format_ts
from .locks import Semaphore
from .parsers import Counts, parse
from .runner import Completed, run
from .stores import atomic_write_text

HEAVY_WAIT_S = 6 * 3600


@dataclass(frozen=True)
class CheckRun:
    """One check's counts, with when it ran (for the heavy-slot audit) and for how long."""

    name: str
    counts: Counts
    started: str
    ended: str
    duration_s: float
    heavy: bool

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self.counts), "started": self.started, "ended": self.ended,
                "duration_s": round(self.duration_s, 3), "heavy": self.heavy}  # fmt: skip


def counts_of(data: Mapping[str, Any]) -> Counts:
    return Counts(**{k: data[k] for k in Counts.__dataclass_fields__ if k in data})


def run_checks(
    specs: Sequence[CheckSpec],
    cwd: Path,
    *,
    heavy: Semaphore,
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
            with heavy.hold(timeout_s=HEAVY_WAIT_S):
                out[spec.name] = _run_one(spec, cwd, clock, runner, env)
        else:
            out[spec.name] = _run_one(spec, cwd, clock, runner, env)
    return out


def _run_one(
    spec: CheckSpec, cwd: Path, clock: Callable[[], datetime], runner: Callable[..., Completed], env: dict[str, str]
) -> CheckRun:
    started = clock()
    try:
        done = runner(spec.command, cwd=cwd / spec.cwd, timeout=spec.timeout_s, env=env)
        counts = parse(spec.parser, done.stdout, done.stderr, done.returncode, pattern=spec.pattern)
        took = done.duration_s
    except Exception as exc:  # a missing binary or bad cwd is a crashed check
        counts = Counts(crashed=True, note=str(exc)[:160])
        took = 0.0
    ended = clock()
    return CheckRun(spec.name, counts, format_ts(started), format_ts(ended), took, spec.heavy)


def worse(before: Mapping[str, Counts], after: Mapping[str, Counts]) -> list[str]:
    """Why `after` is worse than `before` (empty when it is not): the discard and reject rule."""
    reasons = []
    for name, old in before.items():
        new = after.get(name)
        if new is None:
            reasons.append(f"{name}: did not run")
            continue
        if new.crashed:  # unverifiable is never "not worse", even when main's run crashed too
            reasons.append(f"{name}: crashed ({new.note or 'no report'})")
            continue
        if new.errors > old.errors:
            reasons.append(f"{name}: errors {old.errors} -> {new.errors}")
        if new.failed > old.failed:
            reasons.append(f"{name}: failed tests {old.failed} -> {new.failed}")
        if new.total < old.total:
            reasons.append(f"{name}: tests {old.total} -> {new.total}")
    return reasons


def checks_key(specs: Sequence[CheckSpec]) -> str:
    """A short hash of the checks configuration: a new configuration needs a new baseline."""
    text = json.dumps([s.model_dump(mode="json") for s in specs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class Baselines:
    """Baseline counts per (main commit, checks configuration), computed once, shared."""

    def __init__(self, state_dir: Path, locks_dir: Path, log: EventLog) -> None:
        self.dir = state_dir / "baselines"
        self.locks_dir = locks_dir
        self.log = log

    def path(self, commit: str, key: str) -> Path:
        return self.dir / f"{commit}-{key}.json"

    def read(self, commit: str, key: str) -> dict[str, Counts] | None:
        try:
            data = json.loads(self.path(commit, key).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return {name: counts_of(c) for name, c in data["checks"].items()}

    def put(
        self, commit: str, specs: Sequence[CheckSpec], runs: Mapping[str, CheckRun], *, session: str | None
    ) -> None:
        """Record counts measured on `commit` (e.g. a merge result that became main)."""
        key = checks_key(specs)
        if self.read(commit, key) is None and not any(r.counts.crashed for r in runs.values()):
            doc = {"commit": commit, "key": key, "checks": {n: r.as_dict() for n, r in runs.items()}, "reused": True}
            atomic_write_text(self.path(commit, key), json.dumps(doc, indent=2) + "\n")

    def get(
        self,
        commit: str,
        specs: Sequence[CheckSpec],
        compute: Callable[[], dict[str, CheckRun]],
        *,
        session: str | None,
    ) -> tuple[dict[str, Counts], bool]:
        """(counts, computed_here): read the shared baseline, or compute it while others wait."""
        key = checks_key(specs)
        found = self.read(commit, key)
        if found is not None:
            return found, False
        self.locks_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.locks_dir / f"baseline-{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # another session computing it: wait for its result
            found = self.read(commit, key)
            if found is not None:
                return found, False
            runs = compute()
            doc = {"commit": commit, "key": key, "checks": {n: r.as_dict() for n, r in runs.items()}}
            if not any(r.counts.crashed for r in runs.values()):  # a crash (timeout, load) is not a baseline
                atomic_write_text(self.path(commit, key), json.dumps(doc, indent=2) + "\n")
            self.log.append("baseline", session=session, data=doc)
            return {n: r.counts for n, r in runs.items()}, True
        finally:
            os.close(fd)
