"""The merge gate's decisions: for each queued branch, facts in, a `Decision` out. No side effects.

The gate (jobs/review) gathers facts step by step (where the branch is, how the merge
went, what the checks said, what the reviewer answered) and asks these functions after
each step whether the branch's review ends there. `None` means "go on". One place in
the gate (`jobs/review/record.py`) carries a decision out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TypeVar

from factoryctl.core.checks import CheckRun, Counts
from factoryctl.core.records import PRIORITIES, ReviewEntry
from factoryctl.rules.verdict import ReviewerVerdict

T = TypeVar("T")


class GateVerdict(StrEnum):
    """What happened to a branch; the `verdict` of its `cto_review` event."""

    LANDED = "approve"  # landed on main (the value is what the log and the queue have always said)
    REJECT = "reject"  # archived and deleted; the reasons reach its session
    PENDING = "pending"  # left in the queue for the next review, with an alert
    AWAITING_HUMAN = "awaiting_human"  # the reviewer approved; a person has the last word
    WOULD_LAND = "would_land"  # dry run
    WOULD_REJECT = "would_reject"  # dry run
    HUMAN_APPROVE = "human_approve"  # a person approved it (it lands at the next review)
    RESTORED = "restored"  # a person brought a decided branch back from its archive ref


# Decisions that remove the branch from origin (kept under its archive ref).
FINAL = frozenset({GateVerdict.LANDED, GateVerdict.REJECT})


@dataclass(frozen=True)
class Decision:
    """The end of one branch's review in this run, with everything the record needs."""

    branch: str
    verdict: GateVerdict
    reasons: tuple[str, ...] = ()
    landed: str | None = None  # main after the branch landed
    tested: str | None = None  # the merge commit the checks ran on (== landed when it landed now)
    alert: str | None = None  # a line for a person (pending branches)
    review: ReviewerVerdict | None = None
    before: Mapping[str, Counts] = field(default_factory=dict)
    after: Mapping[str, CheckRun] = field(default_factory=dict)
    duration_s: float = 0.0
    check_runs: float = 0.0  # check runs spent on this branch (its share of a batch's)
    failed_review: bool = False  # the review went wrong (not a verdict): counts towards REVIEW_FAILURES

    def as_dict(self) -> dict[str, object]:
        """The decision for scripts (`factoryctl review --json`)."""
        return {"branch": self.branch, "verdict": self.verdict.value, "reasons": list(self.reasons),
                "landed": self.landed, "tested": self.tested, "check_runs": self.check_runs,
                "duration_s": round(self.duration_s, 3)}  # fmt: skip

    def measured(self, before: Mapping[str, Counts], after: Mapping[str, CheckRun] | None) -> Decision:
        return replace(self, before=dict(before), after=dict(after or {}))


@dataclass(frozen=True)
class BranchFacts:
    """Where a queued branch stands before it is merged."""

    head: str | None  # its tip on origin; None when it is gone
    archived: str | None = None  # its archive ref's commit, if any
    head_on_main: bool = False  # its tip is already in main
    archived_on_main: bool = False  # its archived tip is in main
    protected: tuple[str, ...] = ()  # protected paths it touches
    sensitive: tuple[str, ...] = ()  # sensitive paths it changes in a way that matters: a person decides


def before_merge(entry: ReviewEntry, facts: BranchFacts, main_sha: str) -> Decision | None:
    """Branches an earlier (interrupted) run decided, that moved, or that touch protected paths."""
    branch = entry.branch
    if facts.head is None:
        if facts.archived and facts.archived_on_main:
            return Decision(branch, GateVerdict.LANDED, ("landed by an earlier, interrupted review",), landed=main_sha)
        gone = "the branch is gone from origin" + (" (archived)" if facts.archived else "")
        return Decision(branch, GateVerdict.REJECT, (gone,))
    if facts.head_on_main:
        return Decision(branch, GateVerdict.LANDED, ("already on main (an earlier review landed it)",), landed=main_sha)
    if entry.head and facts.head != entry.head:
        moved = f"the branch moved after its cycle tested it ({entry.head[:10]} -> {facts.head[:10]})"
        return Decision(branch, GateVerdict.REJECT, (moved,))
    if facts.protected:
        return Decision(branch, GateVerdict.REJECT, (f"touches protected paths: {', '.join(facts.protected[:5])}",))
    return None


def after_merge(branch: str, conflicts: Mapping[str, Sequence[str]], main: str) -> Decision | None:
    if branch in conflicts:
        return Decision(branch, GateVerdict.REJECT, (f"conflict with {main} in: {', '.join(conflicts[branch])}",))
    return None


def after_checks(branch: str, worse: Sequence[str]) -> Decision | None:
    if worse:
        return Decision(branch, GateVerdict.REJECT, ("checks got worse on the merge result: " + "; ".join(worse),))
    return None


def after_reviewer(
    entry: ReviewEntry,
    answer: ReviewerVerdict | str,
    *,
    human_mode: bool,
    dry_run: bool,
    sensitive: Sequence[str] = (),
    no_checks: str | None = None,
) -> Decision | None:
    """The reviewer's verdict (or why there is none); None: land it.

    An approved branch waits for a person in human mode, and in any mode when it changes a
    sensitive path (how the checks judge, what gets installed), until a person approves it.
    """
    branch = entry.branch
    if isinstance(answer, str):
        return Decision(branch, GateVerdict.PENDING, (answer,), alert=f"{branch}: {answer}; left pending")
    reasons = answer.reasons
    if not answer.approve:
        return Decision(branch, GateVerdict.REJECT, reasons, review=answer)
    if dry_run:
        return Decision(branch, GateVerdict.WOULD_LAND, reasons, review=answer)
    if sensitive and not entry.human_approved:
        why = f"changes sensitive paths ({', '.join(sensitive[:5])}): waits for a person"
        return Decision(branch, GateVerdict.AWAITING_HUMAN, (why, *reasons), review=answer)
    if no_checks and not entry.human_approved:  # nothing measured the change: a person decides
        return Decision(branch, GateVerdict.AWAITING_HUMAN, (no_checks, *reasons), review=answer)
    if human_mode and not entry.human_approved:
        return Decision(branch, GateVerdict.AWAITING_HUMAN, reasons, review=answer)
    return None


def landed(branch: str, tip: str, review: ReviewerVerdict | None, batch_of: int = 1) -> Decision:
    reasons = review.reasons if review is not None else ()
    if batch_of > 1:
        reasons = (*reasons, f"landed in a batch of {batch_of}")
    return Decision(branch, GateVerdict.LANDED, reasons, landed=tip, tested=tip, review=review)


def setup_failed(branch: str, why: str) -> Decision:
    """repo.setup failed on the merge result (the branch's lockfile or manifest): its fault, rejected."""
    return Decision(branch, GateVerdict.REJECT, (f"repo.setup failed on the merge result: {why}",))


def review_failed(entry: ReviewEntry, why: str, limit: int) -> Decision:
    """The review of one branch went wrong (not a verdict): pending with an alert; rejected once it keeps failing."""
    tries = entry.failures + 1
    if tries >= limit:
        return Decision(entry.branch, GateVerdict.REJECT, (f"its review failed {tries} times: {why}",))
    alert = f"{entry.branch}: its review failed ({why}); left pending, tried again at the next review"
    return Decision(entry.branch, GateVerdict.PENDING, (f"review failed: {why}",), alert=alert, failed_review=True)


def main_kept_moving(branch: str, main: str, tries: int) -> Decision:
    why = f"{main} kept moving"
    alert = f"{branch}: {main} moved {tries} times during its review; left pending"
    return Decision(branch, GateVerdict.PENDING, (why,), alert=alert)


def in_dry_run(decision: Decision) -> Decision:
    """A dry run decides but records nothing: landing and rejecting are only what would happen."""
    dry = {GateVerdict.LANDED: GateVerdict.WOULD_LAND, GateVerdict.REJECT: GateVerdict.WOULD_REJECT}
    return replace(decision, verdict=dry.get(decision.verdict, decision.verdict))


def by_person(branch: str, verdict: GateVerdict, reason: str = "") -> Decision:
    """A person's command as a decision: approve, reject (with why) or restore."""
    reasons = {
        GateVerdict.HUMAN_APPROVE: ("approved by a person",),
        GateVerdict.REJECT: (f"rejected by a person: {reason}",),
    }.get(verdict, ())
    return Decision(branch, verdict, reasons)


def review_order(
    entries: Sequence[ReviewEntry], priority_of: Mapping[int, str], *, human_mode: bool, only: str | None
) -> list[ReviewEntry]:
    """What this run reviews, in order: a person's approvals first, then task priority, then oldest.

    A branch waiting for a person was asked about already: it is left out unless named.
    """
    if only is not None:
        chosen = [e for e in entries if e.branch == only]
    else:
        chosen = [e for e in entries if not e.waits_for_person]

    def key(e: ReviewEntry) -> tuple[int, int, str]:
        waiting = 0 if (not human_mode or e.human_approved) else 1
        task_priority = priority_of.get(e.task, "normal") if e.task is not None else "normal"
        rank = PRIORITIES.index(task_priority) if task_priority in PRIORITIES else PRIORITIES.index("normal")
        return (waiting, -rank, e.queued)

    return sorted(chosen, key=key)


def batch_split(batch: Sequence[T]) -> tuple[list[T], list[T]]:
    """Bisection: the first half and the rest."""
    half = len(batch) // 2
    return list(batch[:half]), list(batch[half:])
