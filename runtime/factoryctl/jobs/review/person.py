"""A person's word on a queued branch (`factoryctl queue approve|reject|restore`, the bot).

Each command is a gate decision like any other and goes through the same `Recorder.apply`:
the queue, the archive ref, the task and the `cto_review` event change exactly as when
the gate decides.
"""

from __future__ import annotations

from collections.abc import Callable

from factoryctl.core.errors import AlreadyRunning, FactoryError, NotFound
from factoryctl.core.records import QueueStatus, ReviewEntry
from factoryctl.jobs.context import Context
from factoryctl.jobs.review.gate import MergeGate
from factoryctl.jobs.review.record import Recorder
from factoryctl.jobs.review.tree import ReviewTree, archive_ref
from factoryctl.rules.gate import Decision, GateVerdict, by_person


def _pending(ctx: Context, branch: str, what: str) -> ReviewEntry:
    entry = ctx.review_queue().find(branch)
    if entry.status is not QueueStatus.PENDING:
        raise FactoryError(f"{branch} is {entry.status.value}; only pending branches can be {what}")
    return entry


def approve(ctx: Context, branch: str, say: Callable[[str], None] = lambda text: None) -> Decision:
    """A person approves a pending branch (human mode, or a wait for a person); the next review lands it."""
    entry = _pending(ctx, branch, "approved")
    tree = ReviewTree(ctx)
    return Recorder(ctx, tree, say).apply(entry, by_person(branch, GateVerdict.HUMAN_APPROVE))


def approve_and_land(
    ctx: Context, branch: str, say: Callable[[str], None], progress: Callable[[str], None] | None = None
) -> None:
    """Approve a pending branch as a person, then land it now if the gate is free (else at the next review).

    `say` hears what happened, a line each (the CLI prints them, the bot sends them); `progress`, the gate's steps.
    """
    approve(ctx, branch)
    say(f"approved {branch}")
    try:
        for decision in MergeGate(ctx, progress=progress).run(only=branch):
            reasons = f" ({'; '.join(decision.reasons)})" if decision.reasons else ""
            say(f"{decision.branch}: {decision.verdict.value}{reasons}")
    except AlreadyRunning:
        say("a review is running; the branch lands at the next review")


def reject(ctx: Context, branch: str, reason: str, say: Callable[[str], None] = lambda text: None) -> Decision:
    """A person rejects a pending branch: archived, deleted, its reasons reach the session."""
    entry = _pending(ctx, branch, "rejected")
    with ctx.job_lock("review"):
        tree = ReviewTree(ctx)
        tree.prepare()
        return Recorder(ctx, tree, say).apply(entry, by_person(branch, GateVerdict.REJECT, reason))


def restore(ctx: Context, branch: str, say: Callable[[str], None] = lambda text: None) -> Decision:
    """Bring a decided branch back from refs/archive/ as pending."""
    entry = ctx.review_queue().find(branch)
    if entry.status is QueueStatus.PENDING:
        raise FactoryError(f"{branch} is already pending")
    tree = ReviewTree(ctx)
    archived = tree.archived(branch)
    if archived is None:
        raise NotFound(f"no archive ref {archive_ref(branch)} on origin")
    tree.restore(branch, archived)
    return Recorder(ctx, tree, say).apply(entry, by_person(branch, GateVerdict.RESTORED))
