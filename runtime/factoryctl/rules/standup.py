"""The standup's rules: the facts it is grounded on, the overlaps, and which answers stand.

Pure: the job gathers the facts; these functions find files several sessions touch,
parse each round's answer in its fixed schema, and reject an answer that names a branch,
commit or task the facts do not hold (so every claim traces to the log, git or a pane).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from factoryctl.rules.skills import similarity

MAX_ITEMS = 8
MAX_TEXT = 600
_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)
_TASK_REF = re.compile(r"(?<![\w&])#(\d{1,7})\b")
_HEX = re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b")


class AnswerRejected(ValueError):
    """An answer that does not fit its schema or names something the facts do not hold."""


@dataclass(frozen=True)
class CycleFact:
    ts: str
    verdict: str
    reason: str
    branch: str | None = None
    task: int | None = None
    files: tuple[str, ...] = ()
    summary: str = ""


@dataclass(frozen=True)
class ReviewFact:
    ts: str
    branch: str
    verdict: str
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class StandupSession:
    session: str
    cycles: tuple[CycleFact, ...] = ()
    reviews: tuple[ReviewFact, ...] = ()
    open_branches: tuple[str, ...] = ()
    commits: tuple[tuple[str, str], ...] = ()  # (sha, subject)
    task: tuple[int, str] | None = None
    pane: str = ""

    @property
    def news(self) -> bool:
        return bool(self.cycles or self.reviews)

    def files(self) -> set[str]:
        return {f for c in self.cycles for f in c.files}


@dataclass(frozen=True)
class Overlap:
    file: str
    sessions: tuple[str, ...]

    def advice(self, session: str) -> str:
        others = ", ".join(s for s in self.sessions if s != session)
        return f"{self.file} is also being changed by {others}: coordinate, do not both change it"


@dataclass(frozen=True)
class StandupFacts:
    since: str
    now: str
    sessions: tuple[StandupSession, ...]
    overlaps: tuple[Overlap, ...] = ()
    tasks: Mapping[int, str] = field(default_factory=dict)  # every task id the queue holds -> title

    def branches(self) -> set[str]:
        out: set[str] = set()
        for s in self.sessions:
            out |= set(s.open_branches) | {c.branch for c in s.cycles if c.branch} | {r.branch for r in s.reviews}
        return out

    def commits(self) -> set[str]:
        return {sha for s in self.sessions for sha, _ in s.commits}

    def with_news(self) -> bool:
        return any(s.news for s in self.sessions)


def overlaps(files_by_session: Mapping[str, Iterable[str]]) -> tuple[Overlap, ...]:
    """Files touched by more than one session (open branches or recent cycles), by file name."""
    who: dict[str, set[str]] = {}
    for session, files in files_by_session.items():
        for f in files:
            who.setdefault(f, set()).add(session)
    return tuple(Overlap(f, tuple(sorted(s, key=lambda x: (len(x), x)))) for f, s in sorted(who.items()) if len(s) > 1)


def _json(text: str) -> dict[str, Any]:
    candidates = [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start >= 0 and end > start:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            obj = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    raise AnswerRejected("no JSON object in the answer")


def _texts(obj: Mapping[str, Any], key: str, *, required: bool = False) -> tuple[str, ...]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AnswerRejected(f"{key!r} must be a list of strings")
    if required and not value:
        raise AnswerRejected(f"{key!r} must not be empty")
    return tuple(" ".join(v.split())[:MAX_TEXT] for v in value[:MAX_ITEMS])


def _text(obj: Mapping[str, Any], key: str, limit: int = MAX_TEXT) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise AnswerRejected(f"{key!r} must be a non-empty string")
    return " ".join(value.split())[:limit]


def parse_answer(round_no: int, text: str, sessions: Sequence[str]) -> dict[str, Any]:
    """A round's answer in its schema (1: report, 2: responses, 3: commitment, 0: the summary)."""
    obj = _json(text)
    if round_no == 1:
        return {"done": _texts(obj, "done"), "stuck": _texts(obj, "stuck"), "needs": _texts(obj, "needs")}
    if round_no == 2:
        raw = obj.get("responses", [])
        if not isinstance(raw, list):
            raise AnswerRejected("'responses' must be a list")
        responses = []
        for item in raw[:MAX_ITEMS]:
            if not isinstance(item, dict):
                raise AnswerRejected("each response must be an object with 'to' and 'text'")
            to = item.get("to")
            if to != "team" and to not in sessions:
                raise AnswerRejected(f"response to {to!r}: not a session of this standup (or 'team')")
            responses.append({"to": to, "text": _text(item, "text")})
        return {"responses": tuple(responses)}
    if round_no == 3:
        task = obj.get("next_task")
        if not isinstance(task, dict):
            raise AnswerRejected("'next_task' must be an object with a 'title'")
        body = task.get("body", "")
        if not isinstance(body, str):
            raise AnswerRejected("'next_task.body' must be a string")
        return {
            "next_task": {"title": _text(task, "title", 200), "body": body.strip()[:2000]},
            "proposal": _text(obj, "proposal"),
        }
    return {
        "summary": _text(obj, "summary", 1500),
        "priorities": _texts(obj, "priorities"),
        "blockers": _texts(obj, "blockers"),
    }


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def ungrounded(answer: Mapping[str, Any], facts: StandupFacts, branch_prefix: str) -> list[str]:
    """Branches, commits and tasks an answer names that the facts do not hold."""
    branches, commits = facts.branches(), facts.commits()
    pattern = re.compile(rf"\b{re.escape(branch_prefix)}/[A-Za-z0-9._/-]*[A-Za-z0-9]")
    out: list[str] = []
    for text in _strings(answer):
        out += [f"branch {b}" for b in pattern.findall(text) if b not in branches]
        out += [f"commit {h}" for h in _HEX.findall(text.lower()) if not any(c.startswith(h) for c in commits)]
        out += [f"task #{n}" for n in _TASK_REF.findall(text) if int(n) not in facts.tasks]
    return sorted(set(out))


def grounded(round_no: int, text: str, facts: StandupFacts, branch_prefix: str) -> dict[str, Any]:
    """The parsed answer, or AnswerRejected naming what it made up."""
    answer = parse_answer(round_no, text, [s.session for s in facts.sessions])
    made_up = ungrounded(answer, facts, branch_prefix)
    if made_up:
        raise AnswerRejected("names what the facts do not hold: " + ", ".join(made_up))
    return answer


def duplicate_of(title: str, open_titles: Mapping[int, str], threshold: float = 0.8) -> int | None:
    """The open task this title repeats, if any."""
    for task_id, other in open_titles.items():
        if " ".join(title.lower().split()) == " ".join(other.lower().split()) or similarity(title, other) >= threshold:
            return task_id
    return None
