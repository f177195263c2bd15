"""Batches (bors-style): ask the reviewer about each branch, then merge and test the approved ones together.

A batch that passes lands in one compare-and-swap push. A batch that fails is split in
two halves; a half known to hold the failure (its parent failed, the other half passed)
is split again at once, without being tested whole. A lone branch that fails after its
batch failed too is rejected (the batch was its retry). Conflicts within a batch, and
everything left when main moves meanwhile, go one by one afterwards.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from factoryctl.core.records import ReviewEntry
from factoryctl.jobs.review.tree import MainMoved
from factoryctl.jobs.workspace import SetupFailed
from factoryctl.rules import gate as rules
from factoryctl.rules.changes import no_checks_reason
from factoryctl.rules.verdict import ReviewerVerdict

if TYPE_CHECKING:
    from factoryctl.jobs.review.gate import MergeGate


def review_batch(gate: MergeGate, pending: list[ReviewEntry]) -> list[ReviewEntry]:
    """Decide what the reviewer rejects, land what passes together; returns what is left for one by one."""
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
        gate.finish(entry, decided, started=started, check_runs=0)
    bisection = Bisection(gate, approved)
    try:
        bisection.land(main_sha, [entry for entry, _ in approved.values()], suspect=False)
    except MainMoved:
        gate.say(f"{gate.main} moved during the batch; the rest goes one by one")
    decided_now = {d.branch for d in gate.decisions}
    return [entry for entry, _ in approved.values() if entry.branch not in decided_now]


class Bisection:
    def __init__(self, gate: MergeGate, approved: dict[str, tuple[ReviewEntry, ReviewerVerdict]]) -> None:
        self.gate = gate
        self.approved = approved
        self.started = time.monotonic()

    def land(self, base: str, batch: list[ReviewEntry], *, suspect: bool) -> tuple[str, bool]:
        """Land what passes of `batch` on `base`; returns (new main, whether all of it landed)."""
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
                    gate.finish(batch[0], rules.setup_failed(batch[0].branch, str(exc)), started=self.started,
                                check_runs=0)  # fmt: skip
                    return base, False
                left, right = rules.batch_split(batch)  # which one broke the setup: halve and merge again
                tip, all_left = self.land(base, left, suspect=False)
                tip, all_right = self.land(tip, right, suspect=all_left)
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
                    gate.finish(entry, decision.measured(baseline, after), started=self.started, check_runs=share)
                return merge.tip, len(merged) == len(batch)
            if len(merged) == 1:
                rejected = rules.after_checks(merged[0].branch, reasons)
                assert rejected is not None
                rejected = replace(rejected.measured(baseline, after), tested=merge.tip)
                gate.finish(merged[0], rejected, started=self.started, check_runs=share)
                return base, False
            batch = merged
        left, right = rules.batch_split(batch)
        tip, all_left = self.land(base, left, suspect=False)
        tip, all_right = self.land(tip, right, suspect=all_left)
        return tip, all_left and all_right
