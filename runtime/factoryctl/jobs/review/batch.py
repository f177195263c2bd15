"""Batches (bors-style): ask the reviewer about each branch, then merge and test the approved ones together.

A batch that passes lands in one compare-and-swap push. A batch that fails is split in
two halves; a half known to hold the failure (its parent failed, the other half passed)
is split again at once, without being tested whole. A lone branch that fails after its
batch failed too is rejected (the batch was its retry). Conflicts within a batch, and
everything left when main moves meanwhile, go one by one afterwards.

The batch decides and returns its decisions (`Decided`, as they are made); the gate carries
each out. It reaches the gate's steps (merge, test, ask) through `Steps`, never the gate itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from factoryctl.core.checks import CheckRun, Counts
from factoryctl.core.config import Settings
from factoryctl.core.records import ReviewEntry
from factoryctl.jobs.review.tree import MainMoved, ReviewTree
from factoryctl.jobs.workspace import SetupFailed
from factoryctl.rules import gate as rules
from factoryctl.rules.changes import no_checks_reason
from factoryctl.rules.gate import Decision
from factoryctl.rules.verdict import ReviewerVerdict
from factoryctl.state.baselines import Baselines


class Steps(Protocol):
    """The gate's steps a batch uses: its worktree, main's baseline, the checks and the reviewer."""

    settings: Settings
    main: str
    tree: ReviewTree
    baselines: Baselines
    check_runs: int
    say: Callable[[str], None]

    def baseline(self, main_sha: str) -> dict[str, Counts]: ...

    def test(
        self, base: str, baseline: Mapping[str, Counts], *, retry: bool
    ) -> tuple[dict[str, CheckRun], list[str]]: ...

    def ask(
        self, entry: ReviewEntry, base: str, baseline: Mapping[str, Counts], after: Mapping[str, CheckRun] | None
    ) -> ReviewerVerdict | str: ...


@dataclass(frozen=True)
class Decided:
    """One decision of the batch, for the gate to carry out at once (queue, event, archive)."""

    entry: ReviewEntry
    decision: Decision
    started: float
    check_runs: float


def review_batch(gate: Steps, pending: list[ReviewEntry]) -> Iterator[Decided]:
    """Decide what the reviewer rejects, land what passes together, yielding each decision as it is made.

    What it leaves undecided (main moved, or the batch failed) goes one by one afterwards.
    """
    main_sha = gate.tree.refresh_main()
    human = gate.settings.review.mode == "human"
    approved: dict[str, tuple[ReviewEntry, ReviewerVerdict]] = {}
    for entry in pending:
        started = time.monotonic()
        facts = gate.tree.facts(entry, main_sha)
        decided = rules.before_merge(entry, facts, main_sha)
        if decided is None:  # a branch that cannot merge is rejected before a reviewer call is spent on it
            files = gate.tree.conflicts_with(main_sha, entry.branch)
            decided = rules.after_merge(entry.branch, {entry.branch: files} if files else {}, gate.main)
        if decided is None:
            baseline = gate.baseline(main_sha)
            answer = gate.ask(entry, main_sha, baseline, None)
            decided = rules.after_reviewer(entry, answer, human_mode=human, dry_run=False, sensitive=facts.sensitive,
                                           no_checks=no_checks_reason(gate.settings))  # fmt: skip
            if decided is None:
                assert isinstance(answer, ReviewerVerdict)
                approved[entry.branch] = (entry, answer)
                continue
            decided = decided.measured(baseline, None)
        yield Decided(entry, decided, started, 0)
    bisection = Bisection(gate, approved)
    try:
        yield from bisection.land(main_sha, [entry for entry, _ in approved.values()], suspect=False)
    except MainMoved:
        gate.say(f"{gate.main} moved during the batch; the rest goes one by one")


class Bisection:
    def __init__(self, gate: Steps, approved: dict[str, tuple[ReviewEntry, ReviewerVerdict]]) -> None:
        self.gate = gate
        self.approved = approved
        self.started = time.monotonic()

    def land(self, base: str, batch: list[ReviewEntry], *, suspect: bool) -> Generator[Decided, None, tuple[str, bool]]:
        """Land what passes of `batch` on `base`, yielding each decision; returns (new main, whether all landed)."""
        gate = self.gate
        if not batch:
            return base, True
        if not suspect or len(batch) == 1:
            runs = gate.check_runs
            baseline = gate.baseline(base)
            try:
                merge = gate.tree.merge(base, batch)
            except SetupFailed as exc:
                if len(batch) == 1:
                    yield Decided(batch[0], rules.setup_failed(batch[0].branch, str(exc)), self.started, 0)
                    return base, False
                left, right = rules.batch_split(batch)  # which one broke the setup: halve and merge again
                tip, all_left = yield from self.land(base, left, suspect=False)
                tip, all_right = yield from self.land(tip, right, suspect=all_left)
                return tip, all_left and all_right
            merged = [e for e in batch if e.branch in merge.merged]
            if not merged:
                return base, False
            gate.say(f"testing a batch of {len(merged)} on {base[:10]}")
            after, reasons = gate.test(base, baseline, retry=False)
            share = (gate.check_runs - runs) / len(merged)
            if not reasons:
                gate.tree.land(merge.tip, base)
                gate.baselines.put(merge.tip, gate.settings.checks, after)
                for entry in merged:
                    review = self.approved[entry.branch][1]
                    decision = rules.landed(entry.branch, merge.tip, review, batch_of=len(merged))
                    yield Decided(entry, decision.measured(baseline, after), self.started, share)
                return merge.tip, len(merged) == len(batch)
            if len(merged) == 1:
                rejected = rules.after_checks(merged[0].branch, reasons)
                assert rejected is not None
                rejected = replace(rejected.measured(baseline, after), tested=merge.tip)
                yield Decided(merged[0], rejected, self.started, share)
                return base, False
            batch = merged
        left, right = rules.batch_split(batch)
        tip, all_left = yield from self.land(base, left, suspect=False)
        tip, all_right = yield from self.land(tip, right, suspect=all_left)
        return tip, all_left and all_right
