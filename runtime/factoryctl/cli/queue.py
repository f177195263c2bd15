"""`factoryctl queue ...`: the review queue and a person's decisions."""

from __future__ import annotations

from typing import Annotated

import typer

from factoryctl.adapters.git import check_branch_name
from factoryctl.cli import terminal as render
from factoryctl.cli.options import JsonOpt
from factoryctl.jobs.context import Context

app = typer.Typer(help="The review queue: pushed branches waiting for the merge gate.", no_args_is_help=True)


@app.command("list")
def queue_list(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include approved and rejected branches.")] = False,
    json: JsonOpt = False,
) -> None:
    """Branches waiting for review (oldest first); entries that do not validate are named on stderr."""
    found = Context.load().review_queue().read()
    entries = list(found.entries) if all_ else found.pending()
    for problem in found.problems:
        render.warn(f"skipped: {problem}")
    if json:
        render.emit_json([e.as_dict() for e in entries])
    elif not entries:
        render.emit("the review queue is empty" + ("" if all_ else " (--all shows decided branches)"))
    else:
        for e in entries:
            render.emit(render.queue_line(e))


@app.command("show")
def queue_show(branch: Annotated[str, typer.Argument(help="The branch name.")], json: JsonOpt = False) -> None:
    """One queued branch with its counts and the reviewer's reasons."""
    entry = Context.load().review_queue().find(branch)
    render.emit_json(entry.as_dict()) if json else render.emit(render.queue_detail(entry))


@app.command("approve")
def queue_approve(branch: Annotated[str, typer.Argument(help="The branch name.")]) -> None:
    """Approve a pending branch as a person and land it now if the gate is free (else at the next review)."""
    from factoryctl.jobs.review import person

    check_branch_name(branch)
    person.approve_and_land(Context.load(), branch, say=render.emit, progress=render.emit)


@app.command("reject")
def queue_reject(
    branch: Annotated[str, typer.Argument(help="The branch name.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why: the session reads it.")] = "no reason given",
) -> None:
    """Reject a pending branch as a person: archived, deleted, reasons sent to its session."""
    from factoryctl.jobs.review import person

    check_branch_name(branch)
    person.reject(Context.load(), branch, reason)
    render.emit(f"rejected {branch} (archived under refs/archive/{branch})")


@app.command("restore")
def queue_restore(branch: Annotated[str, typer.Argument(help="The branch name.")]) -> None:
    """Bring a rejected branch back from its archive ref as pending."""
    from factoryctl.jobs.review import person

    check_branch_name(branch)
    person.restore(Context.load(), branch)
    render.emit(f"restored {branch}; it is pending again")
