"""What `factoryctl status` reports: sessions, queues, today's spend, the last events.

Everything is read from the end of the log or from small stores, so the cost does not
grow with the log's length (only with today's agent calls).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from .context import Context
from .eventlog import EventFilter, EventLog, day_start, format_ts


def spend_since(log: EventLog, since: datetime) -> dict[str, Any]:
    """Agent-call costs since `since`: total, per session and per purpose."""
    total = 0.0
    by_session: dict[str, float] = defaultdict(float)
    by_purpose: dict[str, float] = defaultdict(float)
    calls = 0
    for event in log.iter_reverse(EventFilter(types=frozenset({"agent_call"}), since=format_ts(since))):
        cost = event.data.get("cost_usd")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            total += cost
            by_session[event.session or "-"] += cost
            by_purpose[str(event.data.get("purpose", "-"))] += cost
        calls += 1
    return {
        "total_usd": round(total, 4),
        "calls": calls,
        "by_session": {k: round(v, 4) for k, v in sorted(by_session.items())},
        "by_purpose": {k: round(v, 4) for k, v in sorted(by_purpose.items())},
    }


def collect(ctx: Context, last: int = 5) -> dict[str, Any]:
    now = ctx.clock()
    tasks = ctx.tasks().all()
    by_session = {t.session: t for t in tasks if t.session and t.status in ("assigned", "in_progress")}
    session_state = ctx.sessions_store().read()
    sessions = []
    for name in ctx.settings.session_names:
        task = by_session.get(name)
        info = session_state.get(name, {}) if isinstance(session_state, dict) else {}
        sessions.append(
            {
                "name": name,
                "state": info.get("state", "unknown"),
                "task": None if task is None else {"id": task.id, "title": task.title, "status": task.status},
                "last_cycle": info.get("last_cycle"),
            }
        )
    review = Counter(str(b.get("status", "?")) for b in ctx.review_queue().read().get("branches", []))
    spend = spend_since(ctx.log, day_start(now))
    budget = ctx.settings.budget.daily_usd
    return {
        "home": str(ctx.paths.home),
        "now": format_ts(now),
        "sessions": sessions,
        "tasks": {k: v for k, v in ctx.tasks().counts().items() if v},
        "review_queue": dict(review),
        "spend_today": spend,
        "budget": {"daily_usd": budget, "left_usd": round(max(0.0, budget - spend["total_usd"]), 4)},
        "last_events": [e.as_dict() for e in ctx.log.tail(last)],
    }
