"""Baselines: the check counts of a main commit, per checks configuration, computed once and shared.

The first session to need a baseline computes it under a lock while the others wait for
its file; a crashed run is never stored as a baseline.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from factoryctl.core.checks import CheckRun, Counts, counts_of
from factoryctl.core.config import CheckSpec
from factoryctl.state.eventlog import EventLog
from factoryctl.state.locks import exclusive
from factoryctl.state.stores import atomic_write_text


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

    def tests_path(self, commit: str, key: str) -> Path:
        return self.dir / f"{commit}-{key}.tests.json"

    def tests(self, commit: str, specs: Sequence[CheckSpec]) -> dict[str, dict[str, str] | None]:
        """Each check's per-test outcomes on `commit` (None where its tool wrote no report)."""
        try:
            data = json.loads(self.tests_path(commit, checks_key(specs)).read_text())
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(n): (v if isinstance(v, dict) else None) for n, v in data.items()}

    def _store(self, commit: str, key: str, runs: Mapping[str, CheckRun], doc: Mapping[str, object]) -> None:
        # The per-test outcomes first: whoever finds the counts finds them too.
        tests = {n: (dict(r.tests) if r.tests is not None else None) for n, r in runs.items()}
        atomic_write_text(self.tests_path(commit, key), json.dumps(tests) + "\n")
        atomic_write_text(self.path(commit, key), json.dumps(doc, indent=2) + "\n")

    def put(self, commit: str, specs: Sequence[CheckSpec], runs: Mapping[str, CheckRun]) -> None:
        """Record counts measured on `commit` (e.g. a merge result that became main)."""
        key = checks_key(specs)
        if self.read(commit, key) is None and not any(r.counts.crashed for r in runs.values()):
            doc = {"commit": commit, "key": key, "checks": {n: r.as_dict() for n, r in runs.items()}, "reused": True}
            self._store(commit, key, runs, doc)

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
        with exclusive(self.locks_dir / f"baseline-{key}.lock"):  # another session computing it: wait
            found = self.read(commit, key)
            if found is not None:
                return found, False
            runs = compute()
            doc = {"commit": commit, "key": key, "checks": {n: r.as_dict() for n, r in runs.items()}}
            if not any(r.counts.crashed for r in runs.values()):  # a crash (timeout, load) is not a baseline
                self._store(commit, key, runs, doc)
            self.log.append("baseline", session=session, data=doc)
            return {n: r.counts for n, r in runs.items()}, True
