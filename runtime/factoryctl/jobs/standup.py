"""`factoryctl standup`: a three-round meeting of the sessions, grounded on facts, that changes what happens next.

StandupFacts first (cycles, gate decisions, branches, commits, tasks, pane tails, overlaps since
the last standup); no model call when nothing happened or the budget holds new cycles back.
Round 1 reports, round 2 responds, round 3 commits to one next task and one proposal,
then one summary call. Round calls run concurrently (`standup.parallel`). An answer that
does not fit its schema or names something the facts do not hold is rejected; a failed
call costs that session its turn, not the meeting. `record()` carries the outcome out:
tasks reserved per session, advice for the next prompts, the transcript, one event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from factoryctl.adapters.git import Git
from factoryctl.adapters.runner import CommandFailed
from factoryctl.adapters.tmux import Tmux
from factoryctl.core.clock import format_ts
from factoryctl.core.errors import FactoryError
from factoryctl.core.records import BUDGET, LIVE, ReviewEntry
from factoryctl.jobs import prompting
from factoryctl.jobs.context import Context
from factoryctl.jobs.markdown import escape, fence
from factoryctl.jobs.sessions import tmux_name
from factoryctl.rules.standup import (
    AnswerRejected,
    CycleFact,
    ReviewFact,
    StandupFacts,
    StandupSession,
    duplicate_of,
    grounded,
    overlaps,
)
from factoryctl.rules.words import plural
from factoryctl.state.eventlog import EventFilter
from factoryctl.state.stores import atomic_write_text

ROUNDS = (1, 2, 3)
SUMMARY = 0


@dataclass(frozen=True)
class Turn:
    round: int
    session: str  # "chair" for the summary
    answer: dict[str, Any] | None
    problem: str = ""  # why there is no answer: a failed call or a rejected one
    cost_usd: float = 0.0
    duration_s: float = 0.0


@dataclass
class Meeting:
    facts: StandupFacts
    turns: list[Turn] = field(default_factory=list)
    skipped: str = ""  # why no meeting was held

    def answers(self, round_no: int) -> dict[str, dict[str, Any]]:
        return {t.session: t.answer for t in self.turns if t.round == round_no and t.answer is not None}


# -- facts ------------------------------------------------------------------------------


def gather(ctx: Context, tmux: Tmux | None = None) -> StandupFacts:
    """Everything the meeting may talk about, since the last standup (at most `standup.lookback_s`)."""
    now = ctx.clock()
    floor = format_ts(now - timedelta(seconds=ctx.settings.standup.lookback_s))
    last = ctx.log.tail(1, EventFilter(types=frozenset({"team_standup"}), since=floor))
    since = last[0].ts if last else floor
    names = ctx.settings.session_names
    events = ctx.log.tail(1_000_000, EventFilter(types=frozenset({"ralph_cycle", "cto_review"}), since=since))
    cycles: dict[str, list[CycleFact]] = {n: [] for n in names}
    reviews: dict[str, list[ReviewFact]] = {n: [] for n in names}
    for e in events:
        if e.session not in cycles:
            continue
        d = e.data
        if e.type == "ralph_cycle":
            files = tuple(str(f) for f in d.get("files") or [])
            reason, summary = str(d.get("reason") or "")[:300], str(d.get("summary") or "")[:300]
            task = d.get("task") if isinstance(d.get("task"), int) else None
            fact = CycleFact(e.ts, str(d.get("verdict")), reason, d.get("branch"), task, files, summary)
            cycles[e.session].append(fact)
        elif d.get("branch"):
            reasons = tuple(str(r)[:300] for r in d.get("reasons") or [])
            reviews[e.session].append(ReviewFact(e.ts, str(d["branch"]), str(d.get("verdict")), reasons))
    pending = ctx.review_queue().read().pending()
    tasks = ctx.tasks().all()
    current = {t.session: (t.id, t.title) for t in tasks if t.session and t.status in ("assigned", "in_progress")}
    git = Git(ctx.repo_dir)
    tmux = tmux or Tmux.from_env()
    sessions: list[StandupSession] = []
    touched: dict[str, set[str]] = {}
    for name in names:
        mine = [b for b in pending if b.session == name]
        commits, changed = _commits_and_files(git, mine)
        touched[name] = changed | {f for c in cycles[name] for f in c.files}
        sessions.append(StandupSession(
            session=name, cycles=tuple(cycles[name]), reviews=tuple(reviews[name]),
            open_branches=tuple(b.branch for b in mine), commits=tuple(commits),
            task=current.get(name), pane=_pane(tmux, name, ctx.settings.standup.pane_lines),
        ))  # fmt: skip
    return StandupFacts(since, format_ts(now), tuple(sessions), overlaps(touched), {t.id: t.title for t in tasks})


def _commits_and_files(git: Git, entries: Sequence[ReviewEntry]) -> tuple[list[tuple[str, str]], set[str]]:
    commits: list[tuple[str, str]] = []
    files: set[str] = set()
    for entry in entries:
        base, head = entry.base, entry.head
        if base is None or head is None:
            continue
        try:
            for line in git.out("log", "--format=%H%x09%s", f"{base}..{head}", "--").splitlines():
                sha, _, subject = line.partition("\t")
                commits.append((sha, subject[:200]))
            files |= set(git.out("diff", "--name-only", "--no-renames", base, head, "--").splitlines())
        except CommandFailed:
            commits.append((head, entry.summary[:200]))
    return commits, files


def _pane(tmux: Tmux, session: str, lines: int) -> str:
    try:
        return tmux.capture(tmux_name(session), lines) if lines else ""
    except FactoryError:
        return ""


def facts_text(s: StandupSession) -> str:
    """One session's facts as the prompt shows them (plain lines; the text in them is data)."""
    out = [f"### {s.session}"]
    out.append(f"- current task: #{s.task[0]} {s.task[1]}" if s.task else "- current task: none")
    out += [f"- cycle {c.ts}: {c.verdict} ({c.reason}) branch {c.branch or '-'}"
            + (f" task #{c.task}" if c.task else "") + (f" files {', '.join(c.files[:10])}" if c.files else "")
            + (f" - {c.summary}" if c.summary else "") for c in s.cycles[-10:]]  # fmt: skip
    out += [f"- review {r.ts}: {r.branch} {r.verdict}: {'; '.join(r.reasons)}" for r in s.reviews[-10:]]
    out += [f"- open branch: {b}" for b in s.open_branches]
    out += [f"- commit {sha[:12]} {subject}" for sha, subject in s.commits[-10:]]
    if s.pane:
        out.append("- last lines of its terminal:\n" + "\n".join(f"    {line}" for line in s.pane.splitlines()))
    return "\n".join(out)


# -- the meeting ----------------------------------------------------------------------


class Standup:
    def __init__(self, ctx: Context, *, progress: Callable[[str], None] | None = None, tmux: Tmux | None = None):
        self.ctx = ctx
        self.say = progress or (lambda text: None)
        self.tmux = tmux
        self.reviewer = ctx.reviewer()
        self.template = prompting.load_template(ctx.paths.home / "prompts", "standup")

    def run(self) -> dict[str, Any]:
        with self.ctx.job_lock("standup"):
            started = time.monotonic()
            facts = gather(self.ctx, self.tmux)
            meeting = Meeting(facts)
            holds = self.ctx.holds()
            if BUDGET in holds.closed:
                meeting.skipped = f"the budget holds new cycles back: {holds.closed[BUDGET]}"
            elif not facts.with_news():
                meeting.skipped = f"nothing new since {facts.since}: no cycle or review decision"
            if meeting.skipped:
                self.say(f"no standup: {meeting.skipped}")
            else:
                self.ctx.require_sandbox()
                self._hold(meeting)
            return self.record(meeting, time.monotonic() - started)

    def _hold(self, meeting: Meeting) -> None:
        facts = meeting.facts
        people = [s.session for s in facts.sessions if s.news or s.open_branches or s.task]
        for round_no in ROUNDS:
            self.say(f"round {round_no}: {plural(len(people), 'model call')}")
            with ThreadPoolExecutor(max_workers=self.ctx.settings.standup.parallel) as pool:
                meeting.turns += list(pool.map(self._turn, [meeting] * len(people), [round_no] * len(people), people))
        self.say("summary")
        meeting.turns.append(self._turn(meeting, SUMMARY, "chair"))

    def _prompt(self, meeting: Meeting, round_no: int, session: str) -> str:
        facts = meeting.facts
        own = [s for s in facts.sessions if s.session == session]
        shown = own if round_no == 1 else [s for s in facts.sessions if s.news or s.open_branches or s.task]
        values = {
            "round": round_no, "session": session, "since": facts.since,
            "facts": "\n\n".join(facts_text(s) for s in shown) or "(none)",
            "overlaps": [o for o in facts.overlaps if round_no != 1 or session in o.sessions],
            "reports": [] if round_no == 1 else _lines(meeting.answers(1)),
            "responses": [] if round_no in (1, 2) else _lines(meeting.answers(2)),
            "commitments": _lines(meeting.answers(3)) if round_no == SUMMARY else [],
        }  # fmt: skip
        return prompting.render_prompt(self.template, values)

    def _turn(self, meeting: Meeting, round_no: int, session: str) -> Turn:
        prompt = self._prompt(meeting, round_no, session)
        who = None if session == "chair" else session
        with self.ctx.model_room("standup") as (room, launch):
            result = self.reviewer.call(prompt, cwd=room, session=who, purpose="standup", launch=launch)
        cost, took = result.cost_usd, result.duration_s
        if not result.ok:
            return Turn(round_no, session, None, f"call failed: {result.outcome.value}: {result.reason}", cost, took)
        try:
            answer = grounded(round_no, result.text, meeting.facts, self.ctx.settings.repo.branch_prefix)
        except AnswerRejected as exc:
            return Turn(round_no, session, None, f"answer rejected: {exc}", cost, took)
        return Turn(round_no, session, answer, "", cost, took)

    # -- carrying it out ------------------------------------------------------------------

    def record(self, meeting: Meeting, took: float) -> dict[str, Any]:
        """Tasks, advice, transcript and the `team_standup` event; returns the event's data."""
        ctx = self.ctx
        facts = meeting.facts
        data: dict[str, Any] = {
            "since": facts.since,
            "overlaps": [{"file": o.file, "sessions": list(o.sessions)} for o in facts.overlaps],
        }
        if meeting.skipped:
            data.update(skipped=True, reason=meeting.skipped, calls=0, cost_usd=0.0)
            ctx.log.append("team_standup", data=data)
            return data
        stamp = ctx.clock().strftime("%Y%m%dT%H%M%SZ")
        transcript = ctx.paths.standups_dir / f"{stamp}.md"
        created = self._tasks(meeting, transcript)
        self._advice(facts, transcript)
        summary = meeting.answers(SUMMARY).get("chair")
        atomic_write_text(transcript, render_transcript(meeting, created))
        data.update(
            skipped=False, transcript=str(transcript), calls=len(meeting.turns),
            failed=[{"round": t.round, "session": t.session, "problem": t.problem} for t in meeting.turns if t.problem],
            cost_usd=round(sum(t.cost_usd for t in meeting.turns), 6), tokens=None, duration_s=round(took, 3),
            tasks_created=created, summary=summary_text(summary),
        )  # fmt: skip
        ctx.log.append("team_standup", data=data)
        return data

    def _tasks(self, meeting: Meeting, transcript: Path) -> list[dict[str, Any]]:
        tasks = self.ctx.tasks()
        open_titles = {t.id: t.title for t in tasks.all() if t.status in LIVE}
        created = []
        for session, answer in sorted(meeting.answers(3).items()):
            title, body = answer["next_task"]["title"], answer["next_task"]["body"]
            dup = duplicate_of(title, open_titles)
            if dup is not None:
                created.append({"session": session, "title": title, "duplicate_of": dup})
                continue
            link = f"From the standup, {transcript.name} ({transcript})."
            task = tasks.add(title, body=f"{body}\n\n{link}".strip(), session=session, source="standup")
            open_titles[task.id] = title
            created.append({"session": session, "title": title, "id": task.id})
        return created

    def _advice(self, facts: StandupFacts, transcript: Path) -> None:
        advice = {
            s.session: [o.advice(s.session) for o in facts.overlaps if s.session in o.sessions] for s in facts.sessions
        }
        doc = {"from": str(transcript), "ts": facts.now, "sessions": {k: v for k, v in advice.items() if v}}
        self.ctx.state.document(self.ctx.paths.advice_file.name, dict).write(doc)


def _lines(answers: dict[str, dict[str, Any]]) -> list[str]:
    return [f"{who}: {json.dumps(a, ensure_ascii=False)}" for who, a in sorted(answers.items())]


def summary_text(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "The standup was held, but the summary call gave no usable answer."
    parts = [summary["summary"]]
    if summary["priorities"]:
        parts.append("Priorities: " + "; ".join(summary["priorities"]))
    if summary["blockers"]:
        parts.append("Blockers: " + "; ".join(summary["blockers"]))
    return "\n".join(parts)


def render_transcript(meeting: Meeting, created: list[dict[str, Any]]) -> str:
    """Who said what, per round, then the summary, then the facts it was grounded on (all escaped)."""
    facts = meeting.facts
    out = [f"# Standup {facts.now}", "", f"Facts since {facts.since}.", ""]
    titles = {1: "Round 1: reports", 2: "Round 2: responses", 3: "Round 3: commitments"}
    for round_no in ROUNDS:
        out += [f"## {titles[round_no]}", ""]
        for turn in (t for t in meeting.turns if t.round == round_no):
            out.append(f"### {turn.session}")
            out += _answer_lines(turn)
            out.append("")
    out += ["## Summary", ""]
    chair = next((t for t in meeting.turns if t.round == SUMMARY), None)
    out += _answer_lines(chair) if chair else ["- (not held)"]
    out += ["", "## Tasks created", ""]
    for c in created:
        what = f"task #{c['id']}" if "id" in c else f"not created: duplicates task #{c['duplicate_of']}"
        out.append(f"- {c['session']}: {escape(c['title'])} ({what})")
    out += ["", "## Overlaps", ""]
    out += [f"- {escape(o.file)}: {', '.join(o.sessions)}" for o in facts.overlaps] or ["- none"]
    out += ["", "## Facts", ""]
    out += [fence(facts_text(s)) + "\n" for s in facts.sessions]
    return "\n".join(out) + "\n"


def _answer_lines(turn: Turn) -> list[str]:
    if turn.answer is None:
        return [f"- (no turn: {escape(turn.problem)})"]
    out = []
    for key, value in turn.answer.items():
        if isinstance(value, tuple | list):
            items = [f"to {v['to']}: {v['text']}" if isinstance(v, dict) else str(v) for v in value]
            out.append(f"- {key}: " + ("; ".join(escape(i) for i in items) if items else "(none)"))
        elif isinstance(value, dict):
            out.append(f"- {key}: " + escape(" - ".join(str(v) for v in value.values() if v)))
        else:
            out.append(f"- {key}: {escape(str(value))}")
    return out
