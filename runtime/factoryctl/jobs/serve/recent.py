"""The server's memory of the recent log: one sliding window that every request reads from.

The page, `/api/status` and `/api/report` over the last two weeks read events the server
already holds (refreshed with what was appended since the last request), so a request
costs the same on a log of a million events as on a new one. Older windows read the log.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from factoryctl.core.clock import day_start
from factoryctl.core.defaults import PAGE_DAYS
from factoryctl.jobs.context import Context
from factoryctl.jobs.outcomes import report_dict
from factoryctl.jobs.status import StatusReport, collect
from factoryctl.rules import metrics
from factoryctl.state.eventlog import Event
from factoryctl.state.window import Window

SPAN = timedelta(days=PAGE_DAYS + 1)
TYPES = metrics.TYPES | {"alert"}


class Recent:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.window = Window(ctx.log, TYPES, SPAN, shrink=metrics.shrink)

    def since(self, moment: datetime, now: datetime | None = None) -> list[Event] | None:
        """The kept events from `moment` on, or None when the window does not reach back so far."""
        now = now or self.ctx.clock()
        if moment < now - SPAN + timedelta(minutes=1):
            return None
        return self.window.events(now, since=moment)

    def status(self, last: int = 5) -> StatusReport:
        now = self.ctx.clock()
        return collect(self.ctx, last, today_events=self.since(day_start(now), now))

    def figures(self, since: datetime) -> dict[str, Any]:
        return report_dict(self.ctx, since, self.since(since))
