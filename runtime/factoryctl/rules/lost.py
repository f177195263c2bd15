"""Which sessions of a fleet are lost: no heartbeat from their host for longer than a bound.

Pure: the heartbeats (sessions.json), now and the bound in; session -> reason out. The gate's
scheduler requeues a lost session's task; `status`, `sessions list`, the bot and the page show
the reason. A session that never wrote a heartbeat is not lost (it has not started yet).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from factoryctl.core.clock import age_s
from factoryctl.core.fleet import host_of
from factoryctl.rules.words import span


def lost_reason(session: str, entry: Mapping[str, Any], now: datetime, after_s: float) -> str | None:
    """Why `session` is lost (its heartbeat is older than `after_s`), or None."""
    age = age_s(entry.get("heartbeat"), now)
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
