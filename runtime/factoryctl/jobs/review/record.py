"""The one place a gate decision is carried out: the branch on origin, the queue, the task, the event.

Every ending of a branch's review, whether the gate or a person decided it, goes through
`Recorder.apply`, in this order: origin (archive and delete a decided branch), the
queue entry, the task, the `cto_review` event, an alert if a person should look, and one
line of progress. A dry run records nothing and only says what would happen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from factoryctl.core.clock import format_ts
from factoryctl.core.errors import NotFound
from factoryctl.core.records import LIVE, Alert, QueueStatus, ReviewEntry
from factoryctl.jobs.context import Context
from factoryctl.jobs.review.tree import ReviewTree
from factoryctl.rules.gate import FINAL, Decision, GateVerdict
from factoryctl.state.alerts import LogSink
from factoryctl.state.baselines import checks_key

# How a decision reads in the review's progress lines (approve and awaiting_human have their own).
_SAID = {GateVerdict.REJECT: "rejected", GateVerdict.PENDING: "left in the queue", GateVerdict.HUMAN_APPROVE:
         "approved by a person", GateVerdict.RESTORED: "restored to the queue"}  # fmt: skip


class Recorder:
    def __init__(self, ctx: Context, tree: ReviewTree, say: Callable[[str], None], *, dry_run: bool = False) -> None:
        self.ctx = ctx
        self.tree = tree
        self.say = say
        self.dry_run = dry_run
        self.alerts = ctx.alerts([LogSink(say)])
        self.decisions: list[Decision] = []

    def apply(self, entry: ReviewEntry, decision: Decision) -> Decision:
        self.decisions.append(decision)
        if self.dry_run:
            self.say(f"{decision.branch}: {decision.verdict.value} (dry run): {'; '.join(decision.reasons)}")
            return decision
        verdict = decision.verdict
        if verdict in FINAL:
            self.tree.archive_and_delete(entry.branch)  # a no-op when it is already gone
        changes = self._queue_changes(decision)
        if decision.failed_review:  # counts towards rejecting a branch whose review keeps failing
            changes["failures"] = entry.failures + 1
        self.ctx.review_queue().update(entry.branch, **changes)
        if verdict in FINAL:
            self._settle_task(entry, decision)
        self.ctx.log.append("cto_review", session=entry.session, data=self._event(entry, decision))
        if decision.alert:
            self.alerts.send(Alert(f"review:{verdict.value}:{entry.branch}", decision.alert, session=entry.session))
        self.say(self._line(decision))
        return decision

    def _queue_changes(self, decision: Decision) -> dict[str, Any]:
        now = format_ts(self.ctx.clock())
        reasons = decision.reasons
        match decision.verdict:
            case GateVerdict.LANDED:
                return {"status": QueueStatus.LANDED, "landed": decision.landed, "reasons": reasons, "decided": now}
            case GateVerdict.REJECT:
                changes: dict[str, Any] = {"status": QueueStatus.REJECTED, "reasons": reasons, "decided": now}
                if decision.after:  # rejected on the merge result: what it said there replaces the cycle's
                    changes |= {"before": {n: vars(c) for n, c in decision.before.items()},
                                "after": {n: vars(r.counts) for n, r in decision.after.items()},
                                "evidence": _evidence(decision)}  # fmt: skip
                return changes
            case GateVerdict.AWAITING_HUMAN:
                review = decision.review.as_dict() if decision.review else None
                return {
                    "awaiting": "human",
                    "reviewer_verdict": review,
                    "reasons": reasons,
                    "tested": decision.tested,
                    "tested_key": checks_key(self.ctx.settings.checks) if decision.tested else None,
                }
            case GateVerdict.HUMAN_APPROVE:
                return {"human_approved": True}
            case GateVerdict.RESTORED:
                return {"status": QueueStatus.PENDING, "reasons": (), "restored": now, "human_approved": False,
                        "awaiting": None, "landed": None, "decided": None, "tested": None,
                        "tested_key": None}  # fmt: skip
            case _:  # pending: stays as it is, with why
                return {"reasons": reasons}

    def _settle_task(self, entry: ReviewEntry, decision: Decision) -> None:
        if entry.task is None:
            return
        tasks = self.ctx.tasks()
        try:
            task = tasks.get(entry.task)
        except NotFound:
            return
        if task.status not in LIVE:
            return  # cancelled or finished meanwhile
        if decision.verdict is GateVerdict.LANDED:
            tasks.transition(task.id, "done", note=f"landed {entry.branch}")
        else:  # another try; the scheduler parks it after scheduler.max_task_failures attempts
            tasks.transition(task.id, "requeued", note="rejected: " + "; ".join(decision.reasons)[:300])

    @staticmethod
    def _event(entry: ReviewEntry, d: Decision) -> dict[str, Any]:
        return {
            "branch": entry.branch, "session": entry.session, "task": entry.task, "verdict": d.verdict.value,
            "reasons": list(d.reasons), "risk": d.review.risk if d.review else None,
            "issues": list(d.review.issues) if d.review else [],
            "before": {n: vars(c) for n, c in d.before.items()},
            "after": {n: vars(r.counts) for n, r in d.after.items()},
            "evidence": _evidence(d),  # what the checks said on the merge result: the failing tests, the errors
            "landed": d.landed, "tested": d.tested, "check_runs": d.check_runs, "duration_s": round(d.duration_s, 3),
        }  # fmt: skip

    def _line(self, d: Decision) -> str:
        main = self.ctx.settings.repo.main
        match d.verdict:
            case GateVerdict.LANDED:
                return f"{d.branch}: landed; {main} is now {(d.landed or '?')[:10]}"
            case GateVerdict.AWAITING_HUMAN:
                return f"{d.branch}: approved by the reviewer; waiting for `factoryctl queue approve`"
            case _:
                said = _SAID.get(d.verdict, d.verdict.value.replace("_", " "))
                return f"{d.branch}: {said}" + (f": {'; '.join(d.reasons)}" if d.reasons else "")


def _evidence(d: Decision) -> dict[str, list[str]]:
    """What each check said on the merge result (bounded by the check adapter), for checks that said something."""
    return {name: list(run.evidence) for name, run in d.after.items() if run.evidence}
