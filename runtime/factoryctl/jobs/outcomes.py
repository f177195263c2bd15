"""Read a window of the log from its end and compute the outcome figures (rules.metrics).

The log is in time order, so `iter_reverse` with `since` stops at the window's start:
a report over the last 24 hours costs the same on a log of a thousand events as on one
of a million. Only the event types the figures use are parsed (a byte test first).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from factoryctl.core.clock import day_start, format_ts, parse_since
from factoryctl.jobs.context import Context
from factoryctl.rules import metrics
from factoryctl.state.eventlog import Event, EventFilter

MAX_WINDOW = timedelta(days=366)  # how far back the figures (`report`, /api/report, /api/events) read


def since_for_figures(text: str, now: datetime) -> datetime:
    """`--since` (or `?since=`) for the figures: at most `MAX_WINDOW` back."""
    return parse_since(text, now, bound=MAX_WINDOW)


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


def figures(ctx: Context, since: datetime, events: Sequence[Event] | None = None) -> metrics.Outcomes:
    """The outcome figures from `since` to now (`events`: the window, already read)."""
    now = ctx.clock()
    found = window(ctx, since) if events is None else events
    return metrics.outcomes(found, since=since, until=now, pushed_at=queued_times(ctx))


def today(ctx: Context, events: Sequence[Event] | None = None) -> metrics.Outcomes:
    """Since UTC midnight: what `factoryctl status` summarises in one line."""
    return figures(ctx, day_start(ctx.clock()), events)


def report_dict(ctx: Context, since: datetime, events: Sequence[Event] | None = None) -> dict[str, Any]:
    return figures(ctx, since, events).as_dict()
