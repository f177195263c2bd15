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
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .stores import atomic_write_text

BUDGET = "budget"
RESOURCES = "resources"
CHEAP = "cheap"


def as_dict(value: object) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (state files are read defensively)."""
    return value if isinstance(value, dict) else {}


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if v}


@dataclass(frozen=True)
class Gates:
    closed: Mapping[str, str] = field(default_factory=dict)
    sessions: Mapping[str, str] = field(default_factory=dict)
    agent: str | None = None
    day: str = ""
    updated: str = ""
    resources: Mapping[str, Any] = field(default_factory=dict)
    budget: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: object) -> Gates:
        if not isinstance(raw, dict):
            return cls()
        agent = raw.get("agent")
        return cls(
            closed=_str_map(raw.get("closed")),
            sessions=_str_map(raw.get("sessions")),
            agent=agent if isinstance(agent, str) and agent else None,
            day=str(raw.get("day") or ""),
            updated=str(raw.get("updated") or ""),
            resources=as_dict(raw.get("resources")),
            budget=as_dict(raw.get("budget")),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "updated": self.updated,
            "day": self.day,
            "closed": dict(self.closed),
            "sessions": dict(self.sessions),
            "agent": self.agent,
            "resources": dict(self.resources),
            "budget": dict(self.budget),
        }

    def on(self, day: str) -> Gates:
        """These gates as they hold on `day`: yesterday's budget entries are void."""
        if self.day == day:
            return self
        return replace(self, closed={k: v for k, v in self.closed.items() if k != BUDGET}, sessions={}, agent=None)

    def hold(self, session: str) -> str | None:
        """Why `session` may not start a cycle, or None."""
        if self.closed:
            return "gate closed: " + "; ".join(f"{k}: {v}" for k, v in self.closed.items())
        if session in self.sessions:
            return f"held: {self.sessions[session]}"
        return None

    def same_decision(self, other: Gates) -> bool:
        """Whether two gates hold the same things (the readings in their reasons aside)."""
        mine = (set(self.closed), set(self.sessions), self.agent)
        return mine == (set(other.closed), set(other.sessions), other.agent)


def read_gates(path: Path) -> Gates:
    """The gates on disk; none when the scheduler has not written any (or the file is damaged)."""
    try:
        return Gates.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return Gates()


def write_gates(path: Path, gates: Gates) -> None:
    atomic_write_text(path, json.dumps(gates.as_dict(), indent=2, ensure_ascii=False) + "\n")
