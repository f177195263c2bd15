"""The scheduler's gates: what holds new cycles back, and which agent they use.

One document per host (`gates.json` on one host, `gates/<host>.json` in a fleet: resources are
each host's own; the budget entries are the same everywhere, decided from the shared spend).
Written whole by the host's scheduler at every tick; read by its loops before every cycle and by
`factoryctl status` (on the gate: every host's). The schema:

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
from typing import TYPE_CHECKING

from factoryctl.core import jsonio
from factoryctl.core.clock import day_of
from factoryctl.core.errors import FactoryError, StateUnreachable
from factoryctl.core.records import Gates
from factoryctl.state.stores import atomic_write_text

if TYPE_CHECKING:
    from factoryctl.state.backend import Document


def gates_name(host: str) -> str:
    """The gates document of `host` ("": the one host of a factory that is not a fleet)."""
    return f"gates/{host}.json" if host else "gates.json"


def read_gates(store: Path | Document) -> Gates:
    """The gates written; none when the scheduler has not written any (or they are damaged)."""
    try:
        if isinstance(store, Path):
            return Gates.from_dict(jsonio.loads(store.read_text(encoding="utf-8")))
        return Gates.from_dict(store.read())
    except StateUnreachable:
        raise
    except (OSError, ValueError, FactoryError):
        return Gates()


def current_gates(store: Path | Document, now: datetime) -> Gates:
    """The gates as they hold at `now` (yesterday's budget entries no longer do)."""
    return read_gates(store).on(day_of(now))


def write_gates(store: Path | Document, gates: Gates) -> None:
    if isinstance(store, Path):
        atomic_write_text(store, json.dumps(gates.as_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        store.write(gates.as_dict())
