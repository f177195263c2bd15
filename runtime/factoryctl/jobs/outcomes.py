"""Read a window of the log from its end and compute the outcome figures (rules.metrics).

The log is in time order, so `iter_reverse` with `since` stops at the window's start:
a report over the last 24 hours costs the same on a log of a thousand events as on one
of a million. Only the event types the figures use are parsed (a byte test first).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from factoryctl.core.clock import day_start, format_ts
from factoryctl.core.errors import UsageError
from factoryctl.jobs.context import Context
from factoryctl.rules import metrics
from factoryctl.state.eventlog import Event, EventFilter

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_WINDOW = timedelta(days=366)


def parse_since(text: str, now: datetime) -> datetime:
    """'24h', '30m', '7d' before now, or an ISO time (UTC); at most a year back."""
    text = text.strip()
    if text[:-1].isdigit() and text[-1:] in UNITS and len(text) <= 12:
        span = timedelta(seconds=int(text[:-1]) * UNITS[text[-1]])
        if span > MAX_WINDOW:
            raise UsageError(f"since {text!r}: at most {MAX_WINDOW.days}d back")
        return now - span
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"since {text!r}: use 30m, 24h, 7d or an ISO time like 2026-11-24T08:00") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)
    if moment > now or now - moment > MAX_WINDOW:
        raise UsageError(f"since {text!r}: must be in the past, at most {MAX_WINDOW.days}d back")
    return moment


def window(ctx: Context, since: datetime) -> list[Event]:
    """The events the figures read, from `since` to now, newest first."""
    return list(ctx.log.iter_reverse(EventFilter(types=metrics.TYPES, since=format_ts(since))))


def queued_times(ctx: Context) -> dict[str, str]:
    """When each branch in the review queue was pushed (for landings pushed before a window)."""
    out = {}
    for entry in ctx.review_queue().read().entries:
        if len(entry.queued) == 24 and entry.queued[10] == "T":
            out[entry.branch] = entry.queued
    return out


def report(ctx: Context, since: datetime, events: Sequence[Event] | None = None) -> metrics.Outcomes:
    """The outcome figures from `since` to now (`events`: the window, already read)."""
    now = ctx.clock()
    found = window(ctx, since) if events is None else events
    return metrics.outcomes(found, since=since, until=now, pushed_at=queued_times(ctx))


def today(ctx: Context, events: Sequence[Event] | None = None) -> metrics.Outcomes:
    """Since UTC midnight: what `factoryctl status` summarises in one line."""
    return report(ctx, day_start(ctx.clock()), events)


def report_dict(ctx: Context, since: datetime, events: Sequence[Event] | None = None) -> dict[str, Any]:
    return report(ctx, since, events).as_dict()
