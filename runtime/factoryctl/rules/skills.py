"""Skill files: when a new one is refused, which ones a prompt shows first, which to retire.

Pure functions only: the record is `core/skill.py`, the files belong to `state/skills.py`,
the doctor and the cycle decide with these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from difflib import SequenceMatcher

from factoryctl.core.clock import parse_ts
from factoryctl.core.skill import NAME, Skill

MAX_WHEN = 300
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "if", "in", "into", "is", "it", "its", "of",
     "on", "or", "the", "this", "to", "when", "with", "you", "your", "not", "never", "do", "does", "use")
)  # fmt: skip
# Shapes of credentials: refused outright, whatever the environment holds.
SECRET_SHAPES = (
    re.compile(r"sk-ant-[A-Za-z0-9_-]{10,}"),
    re.compile(r"\bsk-[A-Za-z0-9]{20,}"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\b\d{8,10}:[A-Za-z0-9_-]{35}\b"),  # a Telegram bot token
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)\b(password|passwd|secret|api[_-]?key|token)\s*[:=]\s*['\"]?[A-Za-z0-9/+_.-]{8,}"),
)


class SkillRefused(ValueError):
    """A proposed skill breaks a rule; the message says which."""


def words(text: str) -> list[str]:
    """Lower-case content words, plural `s` dropped (tests ~ test), stop words out."""
    found = (
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in _WORD.findall(text.lower())
    )
    return [w for w in found if w not in _STOP]


def similarity(a: str, b: str) -> float:
    """How alike two texts are, 0..1: word-set overlap, word-order match, or (for texts of
    some length) how much of the shorter one the longer one already covers."""
    wa, wb = words(a), words(b)
    if not wa or not wb:
        return 0.0
    sa, sb = set(wa), set(wb)
    jaccard = len(sa & sb) / len(sa | sb)
    covered = len(sa & sb) / min(len(sa), len(sb)) if min(len(sa), len(sb)) >= 6 else 0.0
    return max(jaccard, covered, SequenceMatcher(None, wa, wb, autojunk=False).ratio())


def secret_in(text: str, secrets: Iterable[str] = ()) -> str | None:
    """What in `text` looks like a credential (a shape, or a value the environment holds), or None."""
    for secret in secrets:
        if len(secret) >= 8 and secret in text:
            return "a secret from the environment"
    for shape in SECRET_SHAPES:
        if shape.search(text):
            return f"something shaped like a credential ({shape.pattern[:24]}...)"
    return None


def check_new_skill(
    skill: Skill,
    existing: Sequence[Skill],
    *,
    max_count: int,
    max_chars: int,
    threshold: float,
    secrets: Iterable[str] = (),
) -> None:
    """Raise SkillRefused unless `skill` may be written next to `existing`."""
    if not NAME.match(skill.name):
        raise SkillRefused(f"name {skill.name!r} must be 3-60 of a-z, 0-9 and '-'")
    if any(s.name == skill.name for s in existing):
        raise SkillRefused(f"a skill named {skill.name!r} exists already")
    if not skill.when.strip() or len(skill.when) > MAX_WHEN:
        raise SkillRefused(f"'when' must say in 1-{MAX_WHEN} characters when to apply it")
    if not skill.body.strip():
        raise SkillRefused("the skill has no body")
    if len(skill.body) > max_chars:
        raise SkillRefused(f"the body is {len(skill.body)} characters; the limit is {max_chars}")
    if len(existing) >= max_count:
        raise SkillRefused(f"there are {len(existing)} skills already (skills.max_count = {max_count})")
    found = secret_in("\n".join((skill.name, skill.when, skill.body)), secrets)
    if found:
        raise SkillRefused(f"it carries {found}")
    mine = f"{skill.when}\n{skill.body}"
    for other in existing:
        score = similarity(mine, f"{other.when}\n{other.body}")
        if score >= threshold:
            raise SkillRefused(f"it nearly duplicates skill {other.name!r} (similarity {score:.2f})")


def rank(skills: Sequence[Skill], context: str) -> list[Skill]:
    """Skills whose name or `when` share words with the task and files at hand first, then the rest."""
    at_hand = set(words(context))

    def score(skill: Skill) -> int:
        return len(at_hand & set(words(f"{skill.name.replace('-', ' ')} {skill.when}")))

    return sorted(skills, key=lambda s: (-score(s), s.name))


@dataclass(frozen=True)
class RetireCandidate:
    name: str
    reason: str


def retire_candidates(
    skills: Sequence[Skill], now: datetime, after: timedelta, discard_rate: float | None, *, margin: float = 0.2
) -> list[RetireCandidate]:
    """Skills not shown within `after`, or whose sessions' discard rate rose by `margin` since they appeared."""
    out = []
    for skill in skills:
        seen = skill.last_shown or skill.created
        try:
            age = now - parse_ts(seen) if seen else None
        except ValueError:
            age = None
        if age is not None and age > after:
            never = "never shown" if not skill.last_shown else f"last shown {skill.last_shown}"
            out.append(RetireCandidate(skill.name, f"{never}; not shown in {after.days} days"))
        elif discard_rate is not None and skill.discard_rate is not None and discard_rate > skill.discard_rate + margin:
            out.append(
                RetireCandidate(
                    skill.name,
                    f"the discard rate rose from {skill.discard_rate:.0%} to {discard_rate:.0%} since it appeared",
                )
            )
    return out


def by_name(skills: Iterable[Skill]) -> Mapping[str, Skill]:
    return {s.name: s for s in skills}
