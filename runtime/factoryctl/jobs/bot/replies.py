"""How the bot's answers read on a phone: short lines, numbers first, from plain data.

Every function takes data already read (status report, tasks, queue entries, events) and
returns a `Reply`; the adapter escapes and splits it. Nothing here reads the world.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from factoryctl.adapters.telegram import Reply
from factoryctl.core.records import Task
from factoryctl.jobs.status import BudgetStatus, HoldsStatus, StatusReport, session_lines, spend_by_session
from factoryctl.rules.botskills import Action, BotSkill
from factoryctl.rules.sentences import sentence
from factoryctl.rules.words import check_change
from factoryctl.state.eventlog import Event

HELP = {
    Action.STATUS: "sessions, queue, spend vs budget, holds, last landings",
    Action.TASKS: "open tasks",
    Action.TASK: "<title>: queue a task",
    Action.QUEUE: "branches waiting for review, numbered",
    Action.REVIEW: "run the merge gate now",
    Action.APPROVE: "<branch or number>: approve as a person",
    Action.REJECT: "<branch or number> [reason]: reject as a person",
    Action.RESTORE: "<branch>: bring a rejected branch back",
    Action.PAUSE: "[session]: hold the factory or one session",
    Action.RESUME: "[session]: let it work again",
    Action.LOG: "[n]: the last n events",
    Action.SPEND: "today's spend by job and session",
    Action.STANDUP: "run the standup now",
    Action.DOCTOR: "run the doctor now",
    Action.HELP: "this list",
}


def status(report: StatusReport, landings: Sequence[Event]) -> Reply:
    spend, budget = report.spend_today, report.budget
    lines = [
        report.summary,  # the same figures as `factoryctl status`, the status page and `factoryctl report`
        f"sessions: {len(report.sessions)}",
        *session_lines(report),  # each session as `factoryctl status` shows it (by host in a fleet)
        f"tasks: {_counts(report.tasks)}",
        f"review queue: {_counts(report.review_queue)}",
        f"spend: ${spend['total_usd']:.2f} of ${budget.daily_usd:.2f} ({budget.state})",
        f"holds: {_holds(report.holds)}",
        "last landings:" if landings else "last landings: none this week",
        *(f"  {e.data.get('branch')} at {e.ts[5:16]}" for e in landings),
    ]
    return Reply(tuple(lines), title=f"Factory status {report.now[:16]}Z")


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items()) or "empty"


def _holds(holds: HoldsStatus) -> str:
    parts = [f"{name} ({why})" for name, why in holds.closed.items()] or ["none"]
    if holds.paused:
        parts.append("paused: " + ", ".join(holds.paused))
    return "; ".join(parts)


def tasks(open_tasks: Sequence[Task]) -> Reply:
    if not open_tasks:
        return Reply.text("no open tasks; /task <title> queues one", title="Tasks")
    lines = [f"#{t.id} {t.status} {t.priority}: {t.title}" + (f" [{t.session}]" if t.session else "")
             for t in open_tasks]  # fmt: skip
    return Reply(tuple(lines), title=f"Tasks ({len(open_tasks)} open)")


def queue(pending: Sequence[Mapping[str, Any]]) -> Reply:
    if not pending:
        return Reply.text("nothing waits for review", title="Review queue")
    lines = []
    for i, entry in enumerate(pending, 1):
        waiting = " (waits for you)" if entry.get("awaiting") == "human" else ""
        lines.append(f"{i}. {entry.get('branch')}{waiting}")
        for name, after in (entry.get("after") or {}).items():
            before = (entry.get("before") or {}).get(name, {})
            lines.append("   " + check_change(name, before, after, ("errors", "failed")))
        reasons = entry.get("reasons") or (entry.get("reviewer_verdict") or {}).get("reasons") or []
        lines += [f"   - {r}" for r in list(reasons)[:3]]
    lines.append("/approve N or /reject N [reason]")
    return Reply(tuple(lines), title=f"Review queue ({len(pending)} pending)")


def log(events: Sequence[Event]) -> Reply:
    if not events:
        return Reply.text("the log is empty", title="Log")
    lines = [f"{e.ts[5:10]} {e.ts[11:16]} {sentence(e, 300)}" for e in events]  # one sentence each, as `log tail`
    return Reply(tuple(lines), title=f"Last {len(events)} events (UTC)")


def spend(report: Mapping[str, Any], budget: BudgetStatus) -> Reply:
    lines = [f"${report['total_usd']:.2f} of ${budget.daily_usd:.2f} today ({report['calls']} agent calls)",
             f"left: ${budget.left_usd:.2f}; state: {budget.state}"]  # fmt: skip
    by_job = ", ".join(f"{k} ${v:.2f}" for k, v in report.get("by_purpose", {}).items())
    by_session = spend_by_session(report) if report.get("by_session") else ""  # else "by job" says it all
    lines += [f"by job: {by_job}"] if by_job else []
    lines += [f"by session: {by_session}"] if by_session else []
    return Reply(tuple(lines), title="Spend today")


def help_text(skills: Sequence[BotSkill]) -> Reply:
    lines = [f"/{action.value} {text}" for action, text in HELP.items()]
    if skills:
        lines += ["", "Learned requests:"]
        lines += [f"  {s.name}: {s.description or s.pattern}"[:200] for s in skills]
    return Reply(tuple(lines), title="What I can do")


def review_outcomes(outcomes: Sequence[Mapping[str, Any]]) -> Reply:
    if not outcomes:
        return Reply.text("nothing was pending", title="Review finished")
    landed = [o for o in outcomes if o.get("landed")]
    lines = [f"landed {len(landed)} of {len(outcomes)}"]
    for o in outcomes:
        why = "; ".join(str(r) for r in o.get("reasons") or [])[:200]
        lines.append(f"{o.get('branch')}: {o.get('verdict')}" + (f" ({why})" if why else ""))
    return Reply(tuple(lines), title="Review finished")
