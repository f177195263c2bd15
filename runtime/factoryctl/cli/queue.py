"""`factoryctl queue ...`: the review queue and a person's decisions."""

from __future__ import annotations

from typing import Annotated

import typer

from factoryctl.adapters.git import check_branch_name
from factoryctl.cli import terminal as render
from factoryctl.cli.options import JsonOpt
from factoryctl.core.errors import AlreadyRunning
from factoryctl.jobs.context import Context

app = typer.Typer(help="The review queue: pushed branches waiting for the merge gate.", no_args_is_help=True)


@app.command("list")
def queue_list(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include approved and rejected branches.")] = False,
    json: JsonOpt = False,
) -> None:
    """Branches waiting for review (oldest first)."""
    entries = Context.load().review_queue().read().get("branches", [])
    if not all_:
        entries = [e for e in entries if e.get("status") == "pending"]
    if json:
        render.emit_json(entries)
    elif not entries:
        render.emit("the review queue is empty" + ("" if all_ else " (--all shows decided branches)"))
    else:
        for e in entries:
            render.emit(render.queue_line(e))


@app.command("show")
def queue_show(branch: Annotated[str, typer.Argument(help="The branch name.")], json: JsonOpt = False) -> None:
    """One queued branch with its counts and the reviewer's reasons."""
    from factoryctl.jobs.review.gate import find_entry

    entry = find_entry(Context.load(), branch)
    render.emit_json(entry) if json else render.emit(render.queue_detail(entry))


@app.command("approve")
def queue_approve(branch: Annotated[str, typer.Argument(help="The branch name.")]) -> None:
    """Approve a pending branch as a person (review.mode = "human") and land it now if the gate is free."""
    from factoryctl.jobs.review.gate import MergeGate, approve

    ctx = Context.load()
    check_branch_name(branch)
    approve(ctx, branch)
    render.emit(f"approved {branch}")
    try:
        for outcome in MergeGate(ctx, progress=render.emit).run(only=branch):
            render.emit(
                f"{outcome.branch}: {outcome.verdict}" + (f" ({'; '.join(outcome.reasons)})" if outcome.reasons else "")
            )
    except AlreadyRunning:
        render.emit("a review is running; the branch lands at the next review")


@app.command("reject")
def queue_reject(
    branch: Annotated[str, typer.Argument(help="The branch name.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why: the session reads it.")] = "no reason given",
) -> None:
    """Reject a pending branch as a person: archived, deleted, reasons sent to its session."""
    from factoryctl.jobs.review.gate import reject

    check_branch_name(branch)
    reject(Context.load(), branch, reason)
    render.emit(f"rejected {branch} (archived under refs/archive/{branch})")


@app.command("restore")
def queue_restore(branch: Annotated[str, typer.Argument(help="The branch name.")]) -> None:
    """Bring a rejected branch back from its archive ref as pending."""
    from factoryctl.jobs.review.gate import restore

    check_branch_name(branch)
    restore(Context.load(), branch)
    render.emit(f"restored {branch}; it is pending again")
