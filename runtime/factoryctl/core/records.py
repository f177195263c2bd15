"""Records the state layer stores and the rules decide on: tasks, gates, alerts.

Plain values with their validation when read from disk; the files they live in belong to
`state/`, the decisions about them to `rules/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol


@dataclass(frozen=True)
class Alert:
    key: str  # what it is about, e.g. "budget:closed" or "crashloop:factory-bot"
    message: str  # one line for a person
    session: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


PRIORITIES = ("low", "normal", "high", "urgent")


OPEN = ("queued", "assigned", "in_progress")


# A pushed task waits for the merge gate: it may still land (done) or come back (requeued).
LIVE = (*OPEN, "pushed")


STATUSES = (*OPEN, "pushed", "done", "failed", "cancelled", "parked")


@dataclass
class Task:
    id: int
    title: str
    body: str = ""
    priority: str = "normal"
    status: str = "queued"
    session: str | None = None
    created: str = ""
    updated: str = ""
    attempts: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Task:
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)

    def sort_key(self) -> tuple[int, str, int]:
        """Highest priority first, then oldest."""
        return (-PRIORITIES.index(self.priority), self.created, self.id)


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


class EventSink(Protocol):
    """What records an event: the experiment log (`state.eventlog.EventLog`), as adapters see it."""

    def append(self, type: str, *, session: str | None = None, data: Mapping[str, Any] | None = None) -> object: ...
