"""Records the state layer stores and the rules decide on: tasks, holds, alerts.

Plain values with their validation when read from disk; the files they live in belong to
`state/`, the decisions about them to `rules/`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, Literal, Protocol

from factoryctl.core.checks import counts_of
from factoryctl.core.defaults import TASK_MAX_BODY, TASK_MAX_TITLE
from factoryctl.core.errors import BadRecord


@dataclass(frozen=True)
class Alert:
    key: str  # what it is about, e.g. "budget:closed" or "crashloop:factory-bot"
    message: str  # one line for a person
    session: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


def _field(raw: Mapping[str, Any], name: str, kind: type, default: Any) -> Any:
    """raw[name] if it has the right type (a bool is not a number), the default if absent; else BadRecord."""
    value = raw.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BadRecord(f"field {name!r} must be {kind.__name__}, not {type(value).__name__}")
    return value


PRIORITIES = ("low", "normal", "high", "urgent")


# A session holds the task: it is working on it or about to.
ACTIVE = ("assigned", "in_progress")
OPEN = ("queued", *ACTIVE)


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
    def from_dict(cls, raw: object) -> Task:
        """A task from tasks.json, validated field by field (BadRecord names the field)."""
        if not isinstance(raw, dict):
            raise BadRecord(f"a task must be a JSON object, not {type(raw).__name__}")
        task_id = _field(raw, "id", int, None)
        if task_id is None or task_id < 1:
            raise BadRecord("field 'id' must be a positive integer")
        title = _field(raw, "title", str, "")
        if not title.strip():
            raise BadRecord("field 'title' is missing or empty")
        body = _field(raw, "body", str, "")
        if len(title) > TASK_MAX_TITLE or len(body) > TASK_MAX_BODY:
            raise BadRecord(f"field 'title' or 'body' is longer than {TASK_MAX_TITLE}/{TASK_MAX_BODY} characters")
        priority = _field(raw, "priority", str, "normal")
        if priority not in PRIORITIES:
            raise BadRecord(f"field 'priority' must be one of {', '.join(PRIORITIES)}, not {priority!r}")
        status = _field(raw, "status", str, "queued")
        if status not in STATUSES:
            raise BadRecord(f"field 'status' must be one of {', '.join(STATUSES)}, not {status!r}")
        attempts = _field(raw, "attempts", int, 0)
        if attempts < 0:
            raise BadRecord("field 'attempts' must not be negative")
        history = _field(raw, "history", list, [])
        if not all(isinstance(h, dict) for h in history):
            raise BadRecord("field 'history' must be a list of objects")
        return cls(
            id=task_id, title=title, body=body, priority=priority, status=status,
            session=_field(raw, "session", str, None), created=_field(raw, "created", str, ""),
            updated=_field(raw, "updated", str, ""), attempts=attempts, history=[dict(h) for h in history],
        )  # fmt: skip

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
class Holds:
    closed: Mapping[str, str] = field(default_factory=dict)
    sessions: Mapping[str, str] = field(default_factory=dict)
    agent: str | None = None
    day: str = ""
    updated: str = ""
    resources: Mapping[str, Any] = field(default_factory=dict)
    budget: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: object) -> Holds:
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

    def on(self, day: str) -> Holds:
        """These holds as they stand on `day`: yesterday's budget entries are void."""
        if self.day == day:
            return self
        return replace(self, closed={k: v for k, v in self.closed.items() if k != BUDGET}, sessions={}, agent=None)

    def hold(self, session: str) -> str | None:
        """Why `session` may not start a cycle, or None."""
        if self.closed:
            return "new cycles held back: " + "; ".join(f"{k}: {v}" for k, v in self.closed.items())
        if session in self.sessions:
            return f"held: {self.sessions[session]}"
        return None

    def same_decision(self, other: Holds) -> bool:
        """Whether two holds hold back the same things (the readings in their reasons aside)."""
        mine = (set(self.closed), set(self.sessions), self.agent)
        return mine == (set(other.closed), set(other.sessions), other.agent)


class LogEvent(Protocol):
    """An experiment-log event as the rules read it (`state.eventlog.Event` is one)."""

    @property
    def ts(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def session(self) -> str | None: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


class EventSink(Protocol):
    """What records an event: the experiment log (`state.eventlog.EventLog`), as adapters see it."""

    def append(self, type: str, *, session: str | None = None, data: Mapping[str, Any] | None = None) -> object: ...


class CycleVerdict(StrEnum):
    """How a work cycle ended: the `verdict` of its `ralph_cycle` event."""

    PUSHED = "pushed"  # checks held: pushed and queued for review
    DISCARDED = "discarded"  # worse, no change, protected paths, left its branch: the branch is deleted
    FAILED = "failed"  # the agent call failed, or the cycle could not run
    INTERRUPTED = "interrupted"  # SIGTERM before the push
    WAITING = "waiting"  # main's own checks crash or regressed: no agent call until main is sound


# -- the review queue ------------------------------------------------------------------


class QueueStatus(StrEnum):
    PENDING = "pending"
    LANDED = "approved"  # landed on main (the value is what the queue file has always said)
    REJECTED = "rejected"


@dataclass(frozen=True)
class ReviewEntry:
    """One pushed branch in state/review-queue.json, validated field by field when read."""

    branch: str
    status: QueueStatus = QueueStatus.PENDING
    session: str | None = None
    base: str | None = None
    head: str | None = None  # the commit its cycle tested; the gate rejects a branch that moved
    task: int | None = None
    queued: str = ""
    summary: str = ""
    before: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # the cycle's counts
    after: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    evidence: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # check -> what it said (bounded)
    files_changed: int = 0
    lines_added: int = 0
    lines_deleted: int = 0
    reasons: tuple[str, ...] = ()
    awaiting: Literal["human"] | None = None  # the reviewer approved; a person has the last word
    human_approved: bool = False
    reviewer_verdict: Mapping[str, Any] | None = None
    landed: str | None = None  # main after it landed
    decided: str | None = None
    restored: str | None = None
    failures: int = 0  # reviews of it that failed (not decided); at REVIEW_FAILURES it is rejected
    # The merge result the gate tested before asking a person, and the checks configuration it was
    # tested with: a person's approval lands that very commit while main has not moved.
    tested: str | None = None
    tested_key: str | None = None

    @property
    def waits_for_person(self) -> bool:
        return self.awaiting == "human" and not self.human_approved

    @classmethod
    def from_dict(cls, raw: object) -> ReviewEntry:
        if not isinstance(raw, dict):
            raise BadRecord(f"an entry must be a JSON object, not {type(raw).__name__}")
        branch = _field(raw, "branch", str, "")
        if not branch:
            raise BadRecord("field 'branch' is missing or empty")
        status = _field(raw, "status", str, "pending")
        if status not in set(QueueStatus):
            raise BadRecord(f"field 'status' must be one of {', '.join(QueueStatus)}, not {status!r}")
        awaiting = _field(raw, "awaiting", str, None)
        if awaiting not in (None, "human"):
            raise BadRecord(f"field 'awaiting' must be 'human' or absent, not {awaiting!r}")
        reasons = _field(raw, "reasons", list, [])
        if not all(isinstance(r, str) for r in reasons):
            raise BadRecord("field 'reasons' must be a list of strings")
        counts = {name: _field(raw, name, dict, {}) for name in ("before", "after")}
        for name, value in counts.items():
            if not all(isinstance(v, dict) for v in value.values()):
                raise BadRecord(f"field {name!r} must map check names to objects")
            for check, record in value.items():
                try:
                    counts_of(record)
                except BadRecord as exc:
                    raise BadRecord(f"field {name!r}, check {str(check)[:40]!r}: {exc}") from None
        numbers = {}
        for name in ("files_changed", "lines_added", "lines_deleted", "failures"):
            numbers[name] = _field(raw, name, int, 0)
            if numbers[name] < 0:
                raise BadRecord(f"field {name!r} must not be negative")
        task = _field(raw, "task", int, None)
        evidence = _evidence(_field(raw, "evidence", dict, {}))
        tested = _field(raw, "tested", str, None)
        if tested is not None and not _SHA.fullmatch(tested):
            raise BadRecord("field 'tested' must be a commit id (40 hex digits)")
        return cls(
            branch=branch, status=QueueStatus(status), session=_field(raw, "session", str, None),
            base=_field(raw, "base", str, None), head=_field(raw, "head", str, None), task=task,
            queued=_field(raw, "queued", str, ""), summary=_field(raw, "summary", str, ""),
            before=counts["before"], after=counts["after"], evidence=evidence, reasons=tuple(reasons),
            awaiting=awaiting,
            human_approved=_field(raw, "human_approved", bool, False),
            reviewer_verdict=_field(raw, "reviewer_verdict", dict, None), landed=_field(raw, "landed", str, None),
            decided=_field(raw, "decided", str, None), restored=_field(raw, "restored", str, None), **numbers,
            tested=tested, tested_key=_field(raw, "tested_key", str, None),
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        out["reasons"] = list(self.reasons)
        out["evidence"] = {name: list(lines) for name, lines in self.evidence.items()}
        return {k: v for k, v in out.items() if v is not None or k in ("session", "task")}

    def but(self, **changes: Any) -> ReviewEntry:
        """A copy with these fields changed (the queue stores the result)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise BadRecord(f"a review entry has no field {', '.join(sorted(unknown))}")
        return replace(self, **changes)


_SHA = re.compile(r"[0-9a-f]{40}")
MAX_EVIDENCE_CHECKS = 32  # evidence of more checks than this in one entry is a bad record
MAX_EVIDENCE_LINES = 20
MAX_EVIDENCE_CHARS = 1000


def _evidence(raw: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """{check name: lines}, every line a string, bounded (evidence is kept short when written)."""
    if len(raw) > MAX_EVIDENCE_CHECKS:
        raise BadRecord(f"field 'evidence' names {len(raw)} checks; at most {MAX_EVIDENCE_CHECKS}")
    out: dict[str, tuple[str, ...]] = {}
    for name, lines in raw.items():
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise BadRecord("field 'evidence' must map check names to lists of strings")
        if len(lines) > MAX_EVIDENCE_LINES or any(len(x) > MAX_EVIDENCE_CHARS for x in lines):
            raise BadRecord(f"field 'evidence' of {name!r} is longer than evidence is ever kept")
        out[str(name)] = tuple(lines)
    return out
