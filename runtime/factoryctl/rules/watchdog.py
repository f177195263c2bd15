"""The crash-loop watchdog's decision: which PM2 apps to stop, from their restart counts.

PM2 gives up on an app only when it dies young (within `min_uptime`) `max_restarts` times;
an app that lives a little longer before each crash is restarted forever. So the
watchdog keeps each app's restart count over a window and stops an app whose count rose
by more than K within it, or that PM2 marked errored. Pure: apps, history and now in,
stops and the new history out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from factoryctl.core.clock import format_ts, parse_ts
from factoryctl.core.facts import App

# [timestamp, restart count] samples per app, oldest first.
History = dict[str, list[tuple[str, int]]]
QUIET_STATUSES = ("stopped", "stopping")


class StopApp(NamedTuple):
    app: str
    why: str


@dataclass(frozen=True)
class WatchResult:
    stops: tuple[StopApp, ...] = ()
    history: History = field(default_factory=dict)


def _samples(raw: object) -> list[tuple[str, int]]:
    out = []
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str):
                out.append((item[0], int(item[1])))
    return out


def load_history(raw: object) -> History:
    return {str(k): _samples(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def watch(
    apps: Sequence[App],
    history: Mapping[str, Sequence[tuple[str, int]]],
    now: datetime,
    *,
    max_restarts: int,
    window_s: float,
    skip: frozenset[str] = frozenset(),
) -> WatchResult:
    """Stop errored apps and apps whose restart count rose by more than max_restarts within window_s."""
    start = now - timedelta(seconds=window_s)
    stops: list[StopApp] = []
    new: History = {}
    for app in apps:
        samples = [(ts, n) for ts, n in history.get(app.name, ()) if parse_ts(ts) >= start]
        if any(n > app.restarts for _, n in samples):
            samples = []  # the counter went down: PM2 reset it or the app was re-added
        samples.append((format_ts(now), app.restarts))
        new[app.name] = samples
        if app.name in skip or app.status in QUIET_STATUSES:
            continue
        if app.status == "errored":
            stops.append(StopApp(app.name, "is errored (PM2 gave up restarting it)"))
            continue
        rise = app.restarts - min(n for _, n in samples)
        if rise > max_restarts:
            span = (now - parse_ts(samples[0][0])).total_seconds()
            stops.append(StopApp(app.name, f"restarted {rise} times in {span:.0f}s (more than {max_restarts})"))
    return WatchResult(stops=tuple(stops), history=new)
