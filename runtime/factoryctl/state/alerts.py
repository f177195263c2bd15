"""Alerts: `alert` events with a key, never the same key twice within the quiet period.

Every alert is recorded in the experiment log (that is also how repeats are found, so
several processes share one memory), then handed to the notifiers. The log notifier
prints it to the job's output; the Telegram bot will be another AlertSink. Jobs make
theirs with `Context.alerts`, whose quiet period is `[alerts] quiet_s`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from factoryctl.core.clock import format_ts
from factoryctl.core.defaults import ALERT_QUIET
from factoryctl.core.records import Alert
from factoryctl.state.eventlog import EventFilter, EventLog
from factoryctl.state.locks import exclusive

log = logging.getLogger(__name__)


class AlertSink(Protocol):
    def notify(self, alert: Alert) -> None: ...


class LogSink:
    """Tells the job's own output (the PM2 log); the `alert` event is already in the log."""

    def __init__(self, out: Callable[[str], None] | None = None) -> None:
        self.out = out

    def notify(self, alert: Alert) -> None:
        if self.out is not None:
            self.out(f"ALERT [{alert.key}] {alert.message}")


class Alerts:
    def __init__(
        self,
        events: EventLog,
        section: Path | Callable[[], AbstractContextManager[None]],
        notifiers: Sequence[AlertSink] = (),
        quiet: timedelta = ALERT_QUIET,
    ) -> None:
        """`section`: the critical section that makes look-up and record one step (a locks folder, or
        the state backend's `exclusive("alerts")`)."""
        self.events = events
        self.section = (lambda: exclusive(section / "alerts.lock")) if isinstance(section, Path) else section
        self.notifiers: list[AlertSink] = list(notifiers) or [LogSink()]
        self.quiet = quiet

    def recent(self, key: str) -> bool:
        """Whether an alert with this key was raised within the quiet period."""
        since = format_ts(self.events.clock() - self.quiet)
        flt = EventFilter(types=frozenset({"alert"}), since=since)
        return any(e.data.get("key") == key for e in self.events.iter_reverse(flt))

    def send(self, alert: Alert) -> bool:
        """Record and deliver `alert` unless its key was used within the quiet period; True if sent."""
        with self.section():
            if self.recent(alert.key):
                return False
            self.events.append(
                "alert", session=alert.session, data={"key": alert.key, "message": alert.message, **alert.data}
            )
        for notifier in self.notifiers:
            try:
                notifier.notify(alert)
            except Exception:  # a broken notifier must not stop the scheduler
                log.exception("notifier %s failed", type(notifier).__name__)
        return True
