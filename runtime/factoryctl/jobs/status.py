"""What `factoryctl status` reports: sessions, queues, today's spend, the last events.

Everything is read from the end of the log or from small stores, so the cost does not
grow with the log's length (only with today's agent calls).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from factoryctl.adapters.sandbox import SandboxUnavailable
from factoryctl.core.clock import day_of, day_start, format_ts
from factoryctl.core.records import ACTIVE
from factoryctl.jobs.context import Context
from factoryctl.jobs.outcomes import today
from factoryctl.rules.budget import decide_budget
from factoryctl.rules.changes import NO_CHECKS
from factoryctl.state.baselines import Baselines
from factoryctl.state.eventlog import Event
from factoryctl.state.gates import read_gates
from factoryctl.state.spend import spend_of, spend_since


def warnings(ctx: Context) -> list[str]:
    """What a person must know before trusting the factory: no checks, a broken main, unreadable records."""
    out = [] if ctx.settings.checks else [NO_CHECKS]
    commit, problems = Baselines(ctx.paths.state_dir, ctx.paths.locks_dir, ctx.log).health()
    out += [f"{p} (main {commit[:12]}); cycles wait without calling the agent" for p in problems]
    out += [f"skipped: {p}" for p in ctx.tasks().problems()]
    return out


def collect(ctx: Context, last: int = 5, today_events: Sequence[Event] | None = None) -> dict[str, Any]:
    """The status report; `today_events` (since UTC midnight, already read) saves reading them again."""
    now = ctx.clock()
    tasks = ctx.tasks().all()
    by_session = {t.session: t for t in tasks if t.session and t.status in ACTIVE}
    session_state = ctx.heartbeats().read()
    sessions = []
    for name in ctx.settings.session_names:
        task = by_session.get(name)
        info = session_state.get(name, {})
        sessions.append(
            {
                "name": name,
                "state": info.get("state", "unknown"),
                "task": None if task is None else {"id": task.id, "title": task.title, "status": task.status},
                "last_cycle": info.get("last_cycle"),
                "doing": info.get("doing") if info.get("state") == "cycle" else None,  # the agent's last tool call
            }
        )
    queue = ctx.review_queue().read()
    review = Counter(e.status.value for e in queue.entries)
    if queue.problems:
        review["unreadable"] = len(queue.problems)
    spend = spend_since(ctx.log, day_start(now)) if today_events is None else spend_of(today_events)
    budget = ctx.settings.budget.daily_usd
    verdict = decide_budget(spend["total_usd"], ctx.settings.budget, ctx.settings.session_names)
    gates = read_gates(ctx.paths.gates_file)
    current = gates.on(day_of(now))
    paused = [f.name for f in [ctx.paths.pause_flag(), *map(ctx.paths.pause_flag, ctx.settings.session_names)]
              if f.exists()]  # fmt: skip
    figures = today(ctx, today_events)
    return {
        "home": str(ctx.paths.home),
        "sandbox": sandbox_state(ctx),
        "now": format_ts(now),
        "sessions": sessions,
        "tasks": dict(Counter(t.status for t in tasks)),
        "review_queue": dict(review),
        "spend_today": spend,
        "summary": figures.line("today"),
        "today": figures.as_dict(),
        "budget": {
            "daily_usd": budget,
            "left_usd": round(max(0.0, budget - spend["total_usd"]), 4),
            "soft_usd": round(verdict.soft_usd, 4),
            "state": verdict.state,
            "degrade": ctx.settings.budget.degrade,
        },
        "gates": {
            "updated": gates.updated or None,
            "closed": dict(current.closed),
            "sessions": dict(current.sessions),
            "agent": current.agent,
            "resources": dict(gates.resources),
            "paused": paused,
        },
        "warnings": warnings(ctx) + [f"skipped: {p}" for p in queue.problems],
        "last_events": [e.as_dict() for e in ctx.log.tail(last)],
    }


def sandbox_state(ctx: Context) -> dict[str, Any]:
    """Whether untrusted code runs sandboxed here: on and working, off (said loudly), or broken."""
    if not ctx.settings.sandbox.enabled:
        return {"enabled": False, "ok": False, "text": "agents are NOT sandboxed (sandbox.enabled = false)"}
    try:
        ctx.sandbox().check()
    except SandboxUnavailable as exc:
        return {"enabled": True, "ok": False, "text": f"BROKEN, no cycle or review will run: {exc}"}
    return {"enabled": True, "ok": True, "text": "on (bubblewrap: agent, reviewer, setup and checks)"}
