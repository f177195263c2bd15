"""The scheduler's holds: what holds new cycles back, and which agent they use.

One document per host (`holds.json` on one host, `holds/<host>.json` in a fleet: resources are
each host's own; the budget entries are the same everywhere, decided from the shared spend).
Written whole by the host's scheduler at every tick; read by its loops before every cycle and by
`factoryctl status` (on the gate host: every host's). The schema:

    {"updated": "2026-11-24T08:05:00.000Z",
     "day": "2026-11-24",                      # the UTC day the budget entries were made for
     "closed": {"resources": "RAM 91% >= 85%",  # holds every session
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
from factoryctl.core.records import Holds
from factoryctl.state.stores import atomic_write_text

if TYPE_CHECKING:
    from factoryctl.state.backend import Document


def holds_name(host: str) -> str:
    """The holds document of `host` ("": the one host of a factory that is not a fleet)."""
    return f"holds/{host}.json" if host else "holds.json"


def read_holds(store: Path | Document) -> Holds:
    """The holds written; none when the scheduler has not written any (or they are damaged)."""
    try:
        if isinstance(store, Path):
            return Holds.from_dict(jsonio.loads(store.read_text(encoding="utf-8")))
        return Holds.from_dict(store.read())
    except StateUnreachable:
        raise
    except (OSError, ValueError, FactoryError):
        return Holds()


def current_holds(store: Path | Document, now: datetime) -> Holds:
    """The holds as they stand at `now` (yesterday's budget entries no longer do)."""
    return read_holds(store).on(day_of(now))


def write_holds(store: Path | Document, holds: Holds) -> None:
    if isinstance(store, Path):
        atomic_write_text(store, json.dumps(holds.as_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        store.write(holds.as_dict())
