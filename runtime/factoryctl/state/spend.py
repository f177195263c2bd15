"""Spend: what the agent calls cost since a moment, read from the end of the experiment log."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from factoryctl.core.clock import format_ts
from factoryctl.core.fleet import session_order
from factoryctl.state.eventlog import Event, EventFilter, EventLog


def spend_since(log: EventLog, since: datetime) -> dict[str, Any]:
    """Agent-call costs since `since`: total, per session, per job of the calls of no session, and per job."""
    return spend_of(log.iter_reverse(EventFilter(types=frozenset({"agent_call"}), since=format_ts(since))))


def spend_of(events: Iterable[Event]) -> dict[str, Any]:
    """The same sums over events already read (other types are skipped)."""
    total = 0.0
    by_session: dict[str, float] = defaultdict(float)
    no_session: dict[str, float] = defaultdict(float)  # calls of no session (review, standup) by job
    by_purpose: dict[str, float] = defaultdict(float)
    calls = 0
    for event in events:
        if event.type != "agent_call":
            continue
        cost = event.data.get("cost_usd")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            total += cost
            purpose = event.data.get("purpose")
            job = purpose if isinstance(purpose, str) and purpose else "other"
            if event.session:
                by_session[event.session] += cost
            else:
                no_session[job] += cost
            by_purpose[job] += cost
        calls += 1
    return {
        "total_usd": round(total, 4),
        "calls": calls,
        "by_session": {k: round(v, 4) for k, v in sorted(by_session.items(), key=_session_order)},
        "no_session": {k: round(v, 4) for k, v in sorted(no_session.items())},
        "by_purpose": {k: round(v, 4) for k, v in sorted(by_purpose.items())},
    }


def _session_order(item: tuple[str, float]) -> tuple[int, str, int, str]:
    """s1, s2, ..., s10, or w1-s1, w1-s2, w2-s1 (then any other name)."""
    return session_order(item[0])
