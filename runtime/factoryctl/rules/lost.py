"""Which sessions of a fleet are lost: no heartbeat from their host for longer than a bound.

Pure: the heartbeats (sessions.json), now and the bound in; session -> reason out. The gate's
scheduler requeues a lost session's task; `status`, `sessions list`, the bot and the page show
the reason. A session that never wrote a heartbeat is not lost (it has not started yet).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from factoryctl.core.clock import parse_ts
from factoryctl.core.fleet import host_of


def span(seconds: float) -> str:
    """A duration as a person says it: `45s`, `3m 10s`, `2h 5m`, `3d 4h`."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def lost_reason(session: str, entry: Mapping[str, Any], now: datetime, after_s: float) -> str | None:
    """Why `session` is lost (its heartbeat is older than `after_s`), or None."""
    stamp = entry.get("heartbeat")
    try:
        age = (now - parse_ts(str(stamp))).total_seconds() if stamp else None
    except ValueError:
        age = None
    if age is None or age <= after_s:
        return None
    host = host_of(session) or str(entry.get("host") or "") or "?"
    return f"no heartbeat from host {host} for {span(age)}"


def lost_sessions(
    heartbeats: Mapping[str, Mapping[str, Any]], names: Iterable[str], now: datetime, after_s: float
) -> dict[str, str]:
    """The lost ones among `names`: session -> reason."""
    out = {}
    for name in names:
        why = lost_reason(name, heartbeats.get(name) or {}, now, after_s)
        if why is not None:
            out[name] = why
    return out
