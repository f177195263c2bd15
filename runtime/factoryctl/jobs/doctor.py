"""`factoryctl doctor`: tell stuck from idle, act on it, and learn skills from work that landed.

Reads each session's window (cycles, landings, pause flags, holds, tmux pane, heartbeat),
classifies it with the pure rules in `rules/doctor.py`, and carries out the planned actions
(de-duplicated alerts, optionally pausing an error-looping session, restarting a dead pane).
A paused session is reported but not acted on again. One model call, only when there is
something to learn (a landing, or an unhealthy session not paused) and the budget holds
nothing back, suggests cycle-prompt changes (a diff in the report, never applied) and skill files,
which are written only when they pass `rules/skills.py`.
"""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from factoryctl.core.clock import age_s, format_ts
from factoryctl.core.defaults import SECRET_ENV
from factoryctl.core.errors import FactoryError
from factoryctl.core.records import BUDGET, RESOURCES, Alert, as_dict
from factoryctl.core.skill import Skill
from factoryctl.jobs import prompting
from factoryctl.jobs.context import Context
from factoryctl.jobs.markdown import escape, fence
from factoryctl.jobs.sessions import Sessions, tmux_name
from factoryctl.rules.doctor import (
    CycleSeen,
    DoctorAction,
    DoctorAnswer,
    Limits,
    SessionSeen,
    diagnose,
    discard_rate,
    parse_doctor_answer,
    plan_actions,
    provenance_problem,
)
from factoryctl.rules.doctor import (
    Pane as PaneState,
)
from factoryctl.rules.skills import RetireCandidate, SkillRefused, check_new_skill, retire_candidates
from factoryctl.state.alerts import AlertSink
from factoryctl.state.eventlog import EventFilter
from factoryctl.state.pauses import label
from factoryctl.state.skills import SkillStore
from factoryctl.state.stores import atomic_write_text


@dataclass(frozen=True)
class Landed:
    branch: str
    commit: str
    session: str | None
    summary: str = ""
    files: tuple[str, ...] = ()


@dataclass
class Findings:
    seen: list[SessionSeen]
    landed: list[Landed]
    cycles: list[CycleSeen]  # every session's, for the discard rate
    panes_known: bool = True


@dataclass
class Outcome:
    diagnoses: list[Any] = field(default_factory=list)
    actions: list[dict[str, str]] = field(default_factory=list)
    call: str = "not needed"  # what became of the model call
    cost_usd: float = 0.0
    answer: DoctorAnswer | None = None
    prompt_diff: str = ""
    written: list[dict[str, str]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    retire: list[RetireCandidate] = field(default_factory=list)


class Doctor:
    def __init__(
        self,
        ctx: Context,
        *,
        sessions: Sessions | None = None,
        notifiers: list[AlertSink] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.sessions = sessions or Sessions(ctx)
        self.alerts = ctx.alerts(notifiers or ())
        self.say = progress or (lambda text: None)
        self.store = SkillStore(ctx.paths.skills_dir)

    def run(self) -> dict[str, Any]:
        with self.ctx.job_lock("doctor"):
            started = time.monotonic()
            findings = self.gather()
            s = self.ctx.settings
            limits = Limits(s.cycle.interval_s, s.scheduler.stall_after_s, s.doctor.error_loop_after, s.doctor.window_s)
            out = Outcome(diagnoses=[diagnose(seen, limits) for seen in findings.seen])
            actions = plan_actions(
                out.diagnoses, pause_error_looping=s.doctor.pause_error_looping, restart_dead=s.doctor.restart_dead
            )
            if not findings.panes_known:  # without tmux the doctor cannot tell a dead pane: no restarts
                actions = [a for a in actions if a.kind != "restart"]
            out.actions = [self._act(a) for a in actions]
            rate = discard_rate(findings.cycles)
            self._learn(findings, out, rate)
            out.retire = retire_candidates(
                self.store.all(), self.ctx.clock(), timedelta(days=s.skills.retire_after_days), rate
            )
            return self.record(out, time.monotonic() - started)

    # -- facts --------------------------------------------------------------------------

    def gather(self) -> Findings:
        ctx = self.ctx
        now = ctx.clock()
        since = format_ts(now - timedelta(seconds=ctx.settings.doctor.window_s))
        flt = EventFilter(types=frozenset({"ralph_cycle", "cto_review"}), since=since)
        events = list(reversed(list(ctx.log.iter_reverse(flt))))
        names = ctx.settings.session_names
        cycles: dict[str, list[CycleSeen]] = {n: [] for n in names}
        cycle_of: dict[str, Any] = {}
        landed: list[Landed] = []
        for e in events:
            d = e.data
            if e.type == "ralph_cycle" and e.session in cycles:
                outcome = d.get("agent_outcome")
                seen = CycleSeen(e.ts, str(d.get("verdict")), str(d.get("reason") or ""),
                                 outcome if isinstance(outcome, str) else None, d.get("branch"))  # fmt: skip
                cycles[e.session].append(seen)
                if d.get("branch"):
                    cycle_of[str(d["branch"])] = d
            elif e.type == "cto_review" and d.get("verdict") == "approve" and isinstance(d.get("landed"), str):
                branch = str(d.get("branch"))
                c = cycle_of.get(branch, {})
                files = tuple(str(f) for f in c.get("files") or [])[:20]
                landed.append(Landed(branch, d["landed"], e.session, str(c.get("summary") or "")[:300], files))
        try:  # another host's panes are not seen from here (a gate sees none)
            panes: dict[str, Any] | None = self.sessions.panes() if ctx.settings.local_sessions == names else None
        except FactoryError:
            panes = None
        pauses = ctx.pauses()
        state = ctx.heartbeats().read()
        tasks = ctx.tasks().all()
        free_task = any(t.status == "queued" and t.session is None for t in tasks)
        seen_all = []
        for name in names:
            entry = as_dict(state.get(name))
            note = next((n for n in (pauses.note(None), pauses.note(name)) if n is not None), None)
            holds = ctx.holds_of(name)
            pane: PaneState = "unknown"
            if panes is not None:
                pane = "missing" if name not in panes else ("alive" if panes[name].alive else "dead")
            seen_all.append(SessionSeen(
                session=name, cycles=tuple(cycles[name]),
                landed=tuple(x.branch for x in landed if x.session == name),
                paused=None if note is None else note[:200],
                holds=tuple(h for h in (BUDGET, RESOURCES) if h in holds.closed), held=holds.sessions.get(name),
                pane=pane, state=str(entry.get("state", "unknown")),
                heartbeat_age_s=age_s(entry.get("heartbeat"), now),
                cycle_age_s=age_s(entry.get("cycle_started"), now) if entry.get("state") == "cycle" else None,
                first_cycle_age_s=age_s(cycles[name][0].ts, now) if cycles[name] else None,
                next_cycle_in_s=-age if (age := age_s(entry.get("next_cycle"), now)) is not None else None,
                open_task=free_task or any(t.session == name and t.status in ("queued", "assigned") for t in tasks),
            ))  # fmt: skip
        every = [c for n in names for c in cycles[n]]
        return Findings(seen_all, landed, every, panes_known=panes is not None)

    # -- acting -------------------------------------------------------------------------

    def _act(self, action: DoctorAction) -> dict[str, str]:
        done = {"kind": action.kind, "session": action.session, "text": action.text}
        if action.kind == "alert":
            key = f"doctor:{action.session}:{action.text.split(':')[0]}"
            sent = self.alerts.send(Alert(key, action.text, session=action.session))
            done["result"] = "sent" if sent else "not repeated within the quiet period"
        elif action.kind == "pause":
            self.ctx.pauses().pause(action.session, action.text)
            done["result"] = f"paused ({label(action.session)}); `factoryctl resume {action.session}` undoes it"
        else:
            self.sessions.tmux.kill_session(tmux_name(action.session))
            done["result"] = "restarted" if self.sessions.start(action.session) else "already running"
        said = {"alert": f"alert {done['result']}: {action.text}", "pause": done["result"]}
        self.say(f"{action.session}: " + said.get(action.kind, f"its tmux session {done['result']}"))
        return done

    def _learn(self, findings: Findings, out: Outcome, rate: float | None) -> None:
        if not findings.landed and not any(d.actionable for d in out.diagnoses):
            return
        holds = self.ctx.holds()
        if BUDGET in holds.closed:
            out.call = f"skipped: the budget holds new cycles back ({holds.closed[BUDGET]})"
            return
        home_prompts = self.ctx.paths.home / "prompts"
        cycle_path = home_prompts / "cycle.md"
        current = (cycle_path if cycle_path.is_file() else prompting.PACKAGED / "cycle.md").read_text(encoding="utf-8")
        existing = self.store.all()
        values = {"diagnoses": out.diagnoses, "landed": findings.landed, "skills": existing, "cycle_prompt": current}
        prompt = prompting.render_prompt(prompting.load_template(home_prompts, "doctor"), values)
        with self.ctx.model_room("doctor") as (room, launch):
            result = self.ctx.reviewer().call(prompt, cwd=room, session=None, purpose="doctor", launch=launch)
        out.cost_usd = result.cost_usd
        if not result.ok:
            out.call = f"failed: {result.outcome.value}: {result.reason}"
            return
        try:
            out.answer = answer = parse_doctor_answer(result.text)
        except ValueError as exc:
            out.call = f"answer rejected: {exc}"
            return
        out.call = "answered"
        if answer.cycle_prompt.strip() and answer.cycle_prompt.strip() != current.strip():
            out.prompt_diff = "".join(difflib.unified_diff(
                current.splitlines(keepends=True), (answer.cycle_prompt.rstrip() + "\n").splitlines(keepends=True),
                "prompts/cycle.md (current)", "prompts/cycle.md (suggested)",
            ))  # fmt: skip
        self._skills(answer, findings, existing, out, rate)

    def _skills(
        self, answer: DoctorAnswer, findings: Findings, existing: list[Skill], out: Outcome, rate: float | None
    ) -> None:
        s = self.ctx.settings.skills
        landed = {x.branch: x.commit for x in findings.landed}
        secrets = [os.environ.get(name, "") for name in SECRET_ENV]
        now = format_ts(self.ctx.clock())
        for p in answer.skills:
            skill = Skill(p.name, p.when, p.body, p.source_branch, p.source_commit, created=now, discard_rate=rate)
            try:
                problem = provenance_problem(p, landed)
                if problem:
                    raise SkillRefused(problem)
                check_new_skill(skill, existing, max_count=s.max_count, max_chars=s.max_chars,
                                threshold=s.similarity, secrets=secrets)  # fmt: skip
            except SkillRefused as exc:
                out.refused.append({"name": p.name[:60], "reason": str(exc)})
                continue
            self.store.write(skill)
            existing.append(skill)
            out.written.append({"name": skill.name, "source_branch": p.source_branch, "source_commit": p.source_commit})

    # -- recording ----------------------------------------------------------------------

    def record(self, out: Outcome, took: float) -> dict[str, Any]:
        ctx = self.ctx
        stamp = ctx.clock().strftime("%Y%m%dT%H%M%SZ")
        report = ctx.paths.doctor_dir / f"{stamp}.md"
        summary = summary_text(out)
        atomic_write_text(report, render_report(out, format_ts(ctx.clock()), summary))
        data = {
            "report": str(report),
            "sessions": {d.session: d.as_dict() for d in out.diagnoses},
            "actions": out.actions,
            "call": out.call,
            "calls": 0 if out.call.startswith(("not needed", "skipped")) else 1,
            "cost_usd": out.cost_usd,
            "prompt_change_suggested": bool(out.prompt_diff),
            "skills_written": out.written,
            "skills_refused": out.refused,
            "retire_candidates": [vars(r) for r in out.retire],
            "duration_s": round(took, 3),
            "summary": summary,
        }
        ctx.log.append("doctor_analysis", data=data)
        return data


def summary_text(out: Outcome) -> str:
    states = ", ".join(f"{d.session} {d.health.value}" for d in out.diagnoses)
    parts = [f"Sessions: {states}."]
    sick = [f"{d.session}: {d.reason}" for d in out.diagnoses if d.unhealthy]
    if sick:
        parts.append("Needs attention: " + "; ".join(sick) + ".")
    if out.written:
        parts.append("New skills: " + ", ".join(w["name"] for w in out.written) + ".")
    if out.prompt_diff:
        parts.append("A cycle-prompt change is suggested (see the report).")
    return " ".join(parts)


def render_report(out: Outcome, now: str, summary: str) -> str:
    lines = [f"# Doctor {now}", "", escape(summary), "", "## Sessions", ""]
    for d in out.diagnoses:
        lines.append(f"- **{d.session}**: {d.health.value}: {escape(d.reason)}")
        lines += [f"  - {escape(e)}" for e in d.evidence]
    lines += ["", "## Actions", ""]
    lines += [f"- {a['kind']} {a['session']}: {escape(a['text'])} ({escape(a['result'])})" for a in out.actions] or [
        "- none"
    ]
    lines += ["", "## Model call", "", f"- {escape(out.call)} (${out.cost_usd:.4f})"]
    if out.answer is not None and out.answer.notes:
        lines += ["", escape(out.answer.notes)]
    lines += ["", "## Suggested cycle-prompt change (not applied)", ""]
    lines += [fence(out.prompt_diff, "diff")] if out.prompt_diff else ["- none"]
    lines += ["", "## Skills", ""]
    lines += [f"- written: {w['name']} (from {escape(w['source_branch'])} at {w['source_commit'][:12]})"
              for w in out.written]  # fmt: skip
    lines += [f"- refused: {escape(r['name'])}: {escape(r['reason'])}" for r in out.refused]
    lines += [f"- retire candidate: {r.name}: {escape(r.reason)}" for r in out.retire]
    if not (out.written or out.refused or out.retire):
        lines.append("- nothing new")
    return "\n".join(lines) + "\n"
