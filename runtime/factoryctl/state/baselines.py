"""Baselines: the check counts of a main commit, per checks configuration, computed once and shared.

The first session to need a baseline computes it under a lock while the others wait for
it; a crashed run is never stored as a baseline. Each baseline is a document of the state
backend (`baselines/COMMIT-KEY.json`, a file under state/ with the file backend).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from factoryctl.core.checks import CheckRun, Counts, counts_of
from factoryctl.core.config import CheckSpec
from factoryctl.core.errors import BadRecord, FactoryError
from factoryctl.state.backend import Document, StateBackend
from factoryctl.state.eventlog import EventLog


def checks_key(specs: Sequence[CheckSpec]) -> str:
    """A short hash of the checks configuration: a new configuration needs a new baseline."""
    text = json.dumps([s.model_dump(mode="json") for s in specs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _lenient(doc: Document) -> Any:
    """What a baseline document holds, or None when it is missing or damaged (measured again)."""
    try:
        return doc.read()
    except (FactoryError, RecursionError):
        return None


class Baselines:
    """Baseline counts per (main commit, checks configuration), computed once, shared."""

    def __init__(self, state: StateBackend, log: EventLog) -> None:
        self.state = state
        self.log = log

    def _doc(self, name: str) -> Document:
        return self.state.document(name, dict)

    def document(self, commit: str, key: str) -> Document:
        return self._doc(f"baselines/{commit}-{key}.json")

    def read(self, commit: str, key: str) -> dict[str, Counts] | None:
        return _counts_in(_lenient(self.document(commit, key)))

    # -- main's health: the last sound baseline, and what is wrong with main now --------

    def sound_document(self, key: str) -> Document:
        return self._doc(f"baselines/sound-{key}.json")

    @property
    def health_document(self) -> Document:
        return self._doc("main-health.json")

    def sound(self, specs: Sequence[CheckSpec]) -> dict[str, Counts] | None:
        """The counts of main's last sound baseline for this checks configuration (None: none yet)."""
        return _counts_in(_lenient(self.sound_document(checks_key(specs))))

    def record_health(self, commit: str, specs: Sequence[CheckSpec], counts: Mapping[str, Counts],
                      problems: Sequence[str], now: str) -> None:  # fmt: skip
        """Record what the cycle found on main: a sound baseline moves the yardstick; problems are kept
        in main-health.json for the scheduler (one alert) and `status`."""
        key = checks_key(specs)
        if not problems:
            self.sound_document(key).write(
                {"commit": commit, "key": key, "checks": {n: vars(c) for n, c in counts.items()}}
            )
        else:  # measured again by the next cycle: a flaky test on main must not hold the factory for good
            self.document(commit, key).delete()
            self.tests_document(commit, key).delete()
        self.health_document.write({"commit": commit, "key": key, "problems": list(problems), "checked": now})

    def health(self) -> tuple[str, tuple[str, ...]]:
        """(main commit, problems) as the last cycle found them; no problems when nothing is known."""
        data = _lenient(self.health_document)
        if not isinstance(data, dict) or not isinstance(data.get("problems"), list):
            return "", ()
        return str(data.get("commit") or ""), tuple(str(p)[:500] for p in data["problems"][:20])

    def tests_document(self, commit: str, key: str) -> Document:
        return self._doc(f"baselines/{commit}-{key}.tests.json")

    def tests(self, commit: str, specs: Sequence[CheckSpec]) -> dict[str, dict[str, str] | None]:
        """Each check's per-test outcomes on `commit` (None where its tool wrote no report)."""
        data = _lenient(self.tests_document(commit, checks_key(specs)))
        if not isinstance(data, dict):
            return {}
        return {str(n): (v if isinstance(v, dict) else None) for n, v in data.items()}

    def _store(self, commit: str, key: str, runs: Mapping[str, CheckRun], doc: Mapping[str, object]) -> None:
        # The per-test outcomes first: whoever finds the counts finds them too.
        tests = {n: (dict(r.tests) if r.tests is not None else None) for n, r in runs.items()}
        self.tests_document(commit, key).write(tests)
        self.document(commit, key).write(dict(doc))

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
        with self.state.exclusive(f"baseline-{key}"):  # another session computing it: wait
            found = self.read(commit, key)
            if found is not None:
                return found, False
            runs = compute()
            doc = {"commit": commit, "key": key, "checks": {n: r.as_dict() for n, r in runs.items()}}
            if not any(r.counts.crashed for r in runs.values()):  # a crash (timeout, load) is not a baseline
                self._store(commit, key, runs, doc)
            self.log.append("baseline", session=session, data=doc)
            return {n: r.counts for n, r in runs.items()}, True


def _counts_in(data: Any) -> dict[str, Counts] | None:
    """The `checks` of a baseline document; None when it is missing or not what a baseline holds."""
    checks = data.get("checks") if isinstance(data, dict) else None
    if not isinstance(checks, dict) or not all(isinstance(c, dict) for c in checks.values()):
        return None
    try:
        return {str(name): counts_of(c) for name, c in checks.items()}
    except BadRecord:
        return None
