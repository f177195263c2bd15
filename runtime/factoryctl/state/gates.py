"""state/gates.json: what the scheduler decided holds new cycles back, and which agent they use.

Written whole and atomically by the scheduler at every tick; read by every loop before it
starts a cycle (and by `factoryctl status`). The schema:

    {"updated": "2026-11-24T08:05:00.000Z",
     "day": "2026-11-24",                      # the UTC day the budget entries were made for
     "closed": {"resources": "RAM 91% >= 85%",  # a closed gate holds every session
                "budget": "spent $20.40 of $20.00 today"},
     "sessions": {"s3": "budget: degraded ..."},  # holds one session (fewer active sessions)
     "agent": "cheap",                          # null, or "cheap": cycles use the cheaper agent
     "resources": {"ram_percent": 91.2, ...},   # the reading and the budget numbers behind it,
     "budget": {"spent_usd": 20.4, ...}}        # for people (status), not for decisions

The budget's entries (closed.budget, sessions, agent) hold only on `day`: the budget
resets at UTC midnight even before the scheduler's next tick.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from factoryctl.core import jsonio
from factoryctl.core.clock import day_of
from factoryctl.core.records import Gates
from factoryctl.state.stores import atomic_write_text


def read_gates(path: Path) -> Gates:
    """The gates on disk; none when the scheduler has not written any (or the file is damaged)."""
    try:
        return Gates.from_dict(jsonio.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return Gates()


def current_gates(path: Path, now: datetime) -> Gates:
    """The gates as they hold at `now` (yesterday's budget entries no longer do)."""
    return read_gates(path).on(day_of(now))


def write_gates(path: Path, gates: Gates) -> None:
    atomic_write_text(path, json.dumps(gates.as_dict(), indent=2, ensure_ascii=False) + "\n")
