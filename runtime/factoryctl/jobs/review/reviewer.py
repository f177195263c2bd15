"""The reviewer model's part of the gate: its prompt, and its verdict in a fixed JSON schema."""

from __future__ import annotations

from collections.abc import Mapping

from factoryctl.adapters.agent import Agent
from factoryctl.core.checks import CheckRun, Counts, counts_of
from factoryctl.core.defaults import PROMPT_BUDGET_CONTEXT
from factoryctl.core.errors import NotFound
from factoryctl.core.records import ReviewEntry
from factoryctl.jobs import prompting
from factoryctl.jobs.context import Context
from factoryctl.jobs.review.tree import ReviewTree
from factoryctl.rules.verdict import InvalidVerdict, ReviewerVerdict, parse_verdict

ASKS = 2  # an invalid answer is asked again once


def review_prompt(
    ctx: Context,
    tree: ReviewTree,
    entry: ReviewEntry,
    base: str,
    baseline: Mapping[str, Counts],
    after: Mapping[str, CheckRun] | None,
) -> str:
    """The review prompt: the branch, its checks (the merge result's when `after` is given), context, diff.

    Without `after` (a batch asks before merging) the counts shown are the ones the branch's
    cycle measured on its own, and the prompt says so.
    """
    cuts: list[str] = []
    diff, stat, cut = tree.diff(base, entry.branch, ctx.settings.review.diff_budget_chars)
    if cut:
        cuts.append(cut)
    if after is not None:
        after_counts = {n: r.counts for n, r in after.items()}
        measured_on = "the merge result"
        evidence = {n: list(r.evidence) for n, r in after.items() if r.evidence}
    else:
        after_counts = {n: counts_of(c) for n, c in entry.after.items()}
        measured_on = "the branch as its cycle tested it (the merge result is tested after your verdict)"
        evidence = {n: list(lines) for n, lines in entry.evidence.items()}
    deltas = {n: {"before": vars(baseline[n]), "after": vars(c)} for n, c in after_counts.items() if n in baseline}
    task = None
    if entry.task is not None:
        try:
            found = ctx.tasks().get(entry.task)
            task = {"id": found.id, "title": found.title}
        except NotFound:
            pass
    context = prompting.fit(
        prompting.read_committed(tree.repo, base, ctx.settings.repo.context_files, cuts), PROMPT_BUDGET_CONTEXT // 2,
        "context file", cuts,
    )  # fmt: skip
    values = {
        "branch": entry.branch, "session": entry.session or "?", "task": task, "summary": entry.summary[:1000],
        "deltas": deltas, "measured_on": measured_on, "evidence": evidence, "diff": diff, "stat": stat or "no changes",
        "context_files": context, "cuts": cuts,
    }  # fmt: skip
    return prompting.render_prompt(prompting.load_template(ctx.paths.home / "prompts", "review"), values)


def ask(ctx: Context, reviewer: Agent, prompt: str, entry: ReviewEntry) -> ReviewerVerdict | str:
    """The reviewer's verdict, or why there is none (a failed call or an answer out of schema, twice)."""
    problem = ""
    for _ in range(ASKS):
        # Never in the branch's files: its settings, hooks and CLAUDE.md would steer the reviewer.
        with ctx.model_room("reviewer") as (room, launch):
            result = reviewer.call(prompt, cwd=room, session=entry.session, purpose="review", launch=launch)
        if not result.ok:
            problem = f"reviewer call failed: {result.outcome.value}: {result.reason}"
            continue
        try:
            return parse_verdict(result.text)
        except InvalidVerdict as exc:
            problem = f"invalid reviewer answer: {exc}"
    return problem
