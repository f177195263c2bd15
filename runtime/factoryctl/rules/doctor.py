"""The session doctor's rules: each session's health over a window, with its evidence.

Pure: facts in (cycles, landings, flags, holds, pane, heartbeat), a Diagnosis out. The
order of the rules is the point: a session that is paused or held is never "stuck", and
a cycle that runs long but within the scheduler's stall limit is "working", not "stuck",
because false alarms are what make operators stop reading a watchdog. For the same reason a
paused session is not acted on again: it is still reported (error-looping, paused), not
re-alerted at every run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

from factoryctl.rules.words import plural


class Health(StrEnum):
    PRODUCTIVE = "productive"  # something pushed or landed in the window
    WORKING = "working"  # a cycle within the stall limit, or too few recent cycles: nothing to say yet
    STUCK = "stuck"
    IDLE = "idle"
    ERROR_LOOPING = "error_looping"


class IdleWhy(StrEnum):
    PAUSED = "paused"
    BUDGET = "held by the daily budget (every session)"
    RESOURCES = "held by low resources (every session)"
    HELD = "held by the budget (fewer active sessions)"
    DEAD = "dead tmux pane"
    NO_TASKS = "no tasks and no cycle yet"


Pane = Literal["alive", "dead", "missing", "unknown"]
FAILED = ("failed", "discarded")


@dataclass(frozen=True)
class CycleSeen:
    ts: str
    verdict: str
    reason: str = ""
    agent_outcome: str | None = None
    branch: str | None = None


@dataclass(frozen=True)
class SessionSeen:
    """What the doctor knows about one session (the job reads it; tests write it by hand)."""

    session: str
    cycles: Sequence[CycleSeen] = ()  # within the window, oldest first
    landed: Sequence[str] = ()  # its branches the gate landed within the window
    paused: str | None = None  # the pause flag's text, when one is set
    holds: Sequence[str] = ()  # what holds every session back: "budget", "resources"
    held: str | None = None  # the scheduler holds this one session (budget degrade)
    pane: Pane = "unknown"
    state: str = "unknown"  # sessions.json: cycle | idle | sleeping | paused | stopped
    heartbeat_age_s: float | None = None
    cycle_age_s: float | None = None  # how long the running cycle has been going
    first_cycle_age_s: float | None = None  # how long ago its oldest cycle in the window ran
    next_cycle_in_s: float | None = None  # a sleeping loop's announced next cycle, from now (< 0: overdue)
    open_task: bool = False


@dataclass(frozen=True)
class Limits:
    interval_s: float  # cycle.interval_s
    stall_after_s: float  # scheduler.stall_after_s: a cycle older than this is stalled
    error_loop_after: int  # doctor.error_loop_after
    window_s: float = 10800.0  # doctor.window_s


@dataclass(frozen=True)
class Diagnosis:
    session: str
    health: Health
    reason: str
    evidence: tuple[str, ...] = ()
    paused: bool = False  # a pause flag is set: someone (a person, an earlier doctor run) already acted

    @property
    def unhealthy(self) -> bool:
        return self.health in (Health.STUCK, Health.ERROR_LOOPING) or self.reason == IdleWhy.DEAD

    @property
    def actionable(self) -> bool:
        """Unhealthy and not paused: worth an alert, a pause or a restart, and the doctor's model call."""
        return self.unhealthy and not self.paused

    def as_dict(self) -> dict[str, object]:
        evidence = list(self.evidence)
        return {"state": self.health.value, "reason": self.reason, "evidence": evidence, "paused": self.paused}


_NOISE = re.compile(r"\b0x[0-9a-f]+|\b[0-9a-f]{7,40}\b|\d+(\.\d+)?|/tmp/\S+|brl/\S+|'[^']*'|\"[^\"]*\"")


def signature(cycle: CycleSeen) -> str:
    """A failure's shape with the numbers, hashes, paths and quoted values taken out."""
    reason = _NOISE.sub("#", cycle.reason.lower())
    return f"{cycle.verdict}|{cycle.agent_outcome or '-'}|{' '.join(reason.split())[:120]}"


def _mins(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def error_loop(cycles: Sequence[CycleSeen], k: int) -> tuple[str, ...] | None:
    """The last k cycles if they all failed the same way, newest last; else None."""
    last = list(cycles[-k:])
    if len(last) < k or any(c.verdict not in FAILED for c in last):
        return None
    if len({signature(c) for c in last}) != 1:
        return None
    return tuple(f"{c.ts} {c.verdict}: {c.reason[:160]}" for c in last)


def diagnose(seen: SessionSeen, limits: Limits) -> Diagnosis:
    """One session's health (the first rule that applies decides), and whether it is paused."""
    return replace(_health(seen, limits), paused=seen.paused is not None)


def _health(seen: SessionSeen, limits: Limits) -> Diagnosis:
    name, cycles = seen.session, list(seen.cycles)
    flag = () if seen.paused is None else (f"pause flag: {seen.paused or '(no reason given)'}",)
    looping = error_loop(cycles, limits.error_loop_after)
    if looping is not None:  # paused or not: the loop is what a person needs to know about
        why = f"the last {len(looping)} cycles failed the same way" + (", paused" if flag else "")
        return Diagnosis(name, Health.ERROR_LOOPING, why, looping + flag)
    pushed = [c for c in cycles if c.verdict == "pushed"]
    if pushed or seen.landed:
        evidence = tuple(f"pushed {c.branch}" for c in pushed) + tuple(f"landed {b}" for b in seen.landed)
        return Diagnosis(name, Health.PRODUCTIVE, f"{len(pushed)} pushed, {len(seen.landed)} landed", evidence)
    if flag:
        return Diagnosis(name, Health.IDLE, IdleWhy.PAUSED, flag)
    if "budget" in seen.holds:
        return Diagnosis(
            name, Health.IDLE, IdleWhy.BUDGET, ("the scheduler holds new cycles back: daily budget reached",)
        )
    if "resources" in seen.holds:
        return Diagnosis(
            name, Health.IDLE, IdleWhy.RESOURCES, ("the scheduler holds new cycles back: low RAM or disk",)
        )
    if seen.held is not None:
        return Diagnosis(name, Health.IDLE, IdleWhy.HELD, (seen.held,))
    if seen.pane in ("dead", "missing"):
        return Diagnosis(name, Health.IDLE, IdleWhy.DEAD, (f"tmux pane {seen.pane}",))
    evidence = tuple(f"{c.ts} {c.verdict}: {c.reason[:160]}" for c in cycles[-5:])
    # Fewer cycles than an error loop needs, all in the window's younger half (the loop has only
    # just started, or just came back): too few to judge. Spread over the window they are stuck.
    too_few = len(cycles) < limits.error_loop_after and (
        seen.first_cycle_age_s is not None and seen.first_cycle_age_s < limits.window_s / 2
    )
    if cycles and not too_few:
        return Diagnosis(name, Health.STUCK, f"{plural(len(cycles), 'cycle')} ran, nothing pushed", evidence)
    if seen.state == "cycle" and seen.cycle_age_s is not None:
        age = f"a cycle running for {_mins(seen.cycle_age_s)}"
        if seen.cycle_age_s > limits.stall_after_s:
            return Diagnosis(name, Health.STUCK, f"{age}, past the stall limit", (age,))
        return Diagnosis(name, Health.WORKING, f"{age}, within the {_mins(limits.stall_after_s)} stall limit", (age,))
    announced = seen.state == "sleeping" and seen.next_cycle_in_s is not None
    overdue = not announced or seen.next_cycle_in_s is None or seen.next_cycle_in_s < -2 * limits.interval_s
    if seen.heartbeat_age_s is not None and seen.heartbeat_age_s > 2 * limits.interval_s and overdue:
        age = f"no heartbeat for {_mins(seen.heartbeat_age_s)} (cycle interval {_mins(limits.interval_s)})"
        return Diagnosis(name, Health.STUCK, "its loop has not moved", (age, f"state: {seen.state}"))
    if cycles:  # too few: an alert now would be a guess (and a second one if it turns into a loop)
        few = f"too few to judge (fewer than {limits.error_loop_after})"
        why = f"{plural(len(cycles), 'recent cycle')}, none pushed yet: {few}"
        return Diagnosis(name, Health.WORKING, why, evidence)
    evidence = ("an open task waits for it",) if seen.open_task else ("no cycle in the window",)
    return Diagnosis(name, Health.IDLE, IdleWhy.NO_TASKS, evidence)


@dataclass(frozen=True)
class DoctorAction:
    kind: Literal["alert", "pause", "restart"]
    session: str
    text: str


def plan_actions(
    diagnoses: Sequence[Diagnosis], *, pause_error_looping: bool, restart_dead: bool
) -> list[DoctorAction]:
    """What the doctor does about each actionable session (alerts are de-duplicated when sent).

    A paused session was already acted on: alerting (and pausing) it again whenever the quiet
    period has passed would send the same message forever.
    """
    out: list[DoctorAction] = []
    for d in diagnoses:
        if not d.actionable:
            continue
        out.append(DoctorAction("alert", d.session, f"{d.session} is {d.health.value}: {d.reason}"))
        if d.health is Health.ERROR_LOOPING and pause_error_looping:
            out.append(DoctorAction("pause", d.session, f"paused by the doctor: {d.reason}"))
        if d.reason == IdleWhy.DEAD and restart_dead:
            out.append(DoctorAction("restart", d.session, "its tmux pane was dead"))
    return out


def discard_rate(cycles: Sequence[CycleSeen]) -> float | None:
    """Share of the finished cycles that were discarded or failed; None without cycles."""
    done = [c for c in cycles if c.verdict in (*FAILED, "pushed")]
    return None if not done else sum(c.verdict in FAILED for c in done) / len(done)


@dataclass(frozen=True)
class ProposedSkill:
    name: str
    when: str
    body: str
    source_branch: str
    source_commit: str


@dataclass(frozen=True)
class DoctorAnswer:
    cycle_prompt: str  # the whole suggested cycle.md, or "" for no change
    skills: tuple[ProposedSkill, ...]
    notes: str


def parse_doctor_answer(text: str, *, max_prompt_chars: int = 30_000, max_skills: int = 5) -> DoctorAnswer:
    """The doctor call's answer in its fixed schema; ValueError saying what does not fit."""
    obj = _json_object(text)
    prompt = obj.get("cycle_prompt", "")
    if not isinstance(prompt, str) or len(prompt) > max_prompt_chars:
        raise ValueError(f"'cycle_prompt' must be a string of at most {max_prompt_chars} characters")
    raw = obj.get("skills", [])
    if not isinstance(raw, list):
        raise ValueError("'skills' must be a list")
    skills = []
    for item in raw[:max_skills]:
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in _SKILL_KEYS):
            raise ValueError(f"each skill needs string fields {', '.join(_SKILL_KEYS)}")
        skills.append(ProposedSkill(*(str(item[k]).strip() for k in _SKILL_KEYS)))
    notes = obj.get("notes", "")
    return DoctorAnswer(prompt, tuple(skills), notes[:2000] if isinstance(notes, str) else "")


_SKILL_KEYS = ("name", "when", "body", "source_branch", "source_commit")


def _json_object(text: str) -> dict[str, object]:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object in the answer")
    try:
        obj = json.loads(text[start : end + 1])
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError("the answer must be a JSON object")
    return obj


def provenance_problem(skill: ProposedSkill, landed: Mapping[str, str]) -> str | None:
    """Why a skill's source is not work that landed (branch -> landed commit), or None."""
    commit = landed.get(skill.source_branch)
    if commit is None:
        return f"source branch {skill.source_branch!r} did not land in the window"
    if len(skill.source_commit) < 7 or not commit.startswith(skill.source_commit.lower()):
        return f"source commit {skill.source_commit!r} is not the commit {skill.source_branch} landed as"
    return None
