"""What `factoryctl status` reports: sessions, queues, today's spend, the last events.

`collect` returns a typed `StatusReport`; the terminal, the bot, the page, `/api/status` and
the bot skills' snapshot render that one value (`as_dict()` is the JSON, key for key).
Everything is read from the end of the log or from small stores, so the cost does not
grow with the log's length (only with today's agent calls).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from factoryctl.adapters.sandbox import SandboxUnavailable
from factoryctl.core.clock import day_of, day_start, format_ts
from factoryctl.core.fleet import host_of
from factoryctl.core.records import ACTIVE
from factoryctl.jobs.context import Context
from factoryctl.jobs.outcomes import today
from factoryctl.rules.budget import decide_budget
from factoryctl.rules.changes import NO_CHECKS
from factoryctl.rules.lost import lost_sessions
from factoryctl.state.eventlog import Event
from factoryctl.state.holds import read_holds
from factoryctl.state.spend import spend_of, spend_since


def warnings(ctx: Context) -> list[str]:
    """What a person must know before trusting the factory: no checks, a broken main, unreadable records."""
    out = [] if ctx.settings.checks else [NO_CHECKS]
    commit, problems = ctx.baselines().health()
    out += [f"{p} (main {commit[:12]}); cycles wait without calling the agent" for p in problems]
    out += [f"skipped: {p}" for p in ctx.tasks().problems()]
    return out


@dataclass(frozen=True)
class TaskBrief:
    """The task a session works on: enough to name it in a line."""

    id: int
    title: str
    status: str


@dataclass(frozen=True)
class SessionStatus:
    """One session: its heartbeat state, task, last cycle, what the agent does now, and all that in words."""

    name: str
    state: str
    task: TaskBrief | None
    last_cycle: Mapping[str, Any] | None
    doing: str | None  # the agent's last tool call, while in a cycle
    state_text: str
    text: str
    host: str = ""  # the host that runs it, in a fleet
    lost: str | None = None  # in a fleet: why it is lost (no heartbeat from its host for too long)


@dataclass(frozen=True)
class SandboxStatus:
    enabled: bool
    ok: bool  # enabled and a sandboxed call works here
    text: str  # what a person reads: on, off (said loudly) or broken (why)


@dataclass(frozen=True)
class BudgetStatus:
    daily_usd: float
    left_usd: float
    soft_usd: float
    state: str
    degrade: str


@dataclass(frozen=True)
class HoldsStatus:
    """The scheduler's holds on new cycles as of its last tick, and the pause flags."""

    updated: str | None
    closed: Mapping[str, str]
    sessions: Mapping[str, str]
    agent: str | None
    resources: Mapping[str, Any]
    paused: tuple[str, ...]


@dataclass(frozen=True)
class HostStatus:
    """One worker host of a fleet: its sessions, its holds as its scheduler last wrote them, its lost sessions."""

    name: str
    sessions: tuple[str, ...]
    closed: Mapping[str, str]
    updated: str | None
    lost: tuple[str, ...]


@dataclass(frozen=True)
class StatusReport:
    home: str
    sandbox: SandboxStatus
    now: str
    sessions: tuple[SessionStatus, ...]
    tasks: Mapping[str, int]
    review_queue: Mapping[str, int]
    spend_today: Mapping[str, Any]
    summary: str
    today: Mapping[str, Any]
    budget: BudgetStatus
    holds: HoldsStatus
    warnings: tuple[str, ...]
    last_events: tuple[Mapping[str, Any], ...]  # event records, as `log tail --json` prints them
    hosts: tuple[HostStatus, ...] = ()  # a fleet's worker hosts (empty on one host)

    def as_dict(self) -> dict[str, Any]:
        """The report as `status --json` and `/api/status` print it."""
        return asdict(self)


def collect(ctx: Context, last: int = 5, today_events: Sequence[Event] | None = None) -> StatusReport:
    """The status report; `today_events` (since UTC midnight, already read) saves reading them again."""
    now = ctx.clock()
    tasks = ctx.tasks().all()
    by_session = {t.session: t for t in tasks if t.session and t.status in ACTIVE}
    session_state = ctx.heartbeats().read()
    day = day_of(now)
    fleet = ctx.settings.fleet
    lost = lost_sessions(session_state, ctx.settings.session_names, now, fleet.lost_after_s) if fleet.workers else {}
    sessions = []
    for name in ctx.settings.session_names:
        task = by_session.get(name)
        info = session_state.get(name, {})
        last_cycle = info.get("last_cycle")
        doing = info.get("doing") if info.get("state") == "cycle" else None
        brief = None if task is None else TaskBrief(task.id, task.title, task.status)
        sessions.append(SessionStatus(
            name=name, state=str(info.get("state") or "unknown"), task=brief,
            last_cycle=last_cycle if isinstance(last_cycle, dict) else None,
            doing=doing if isinstance(doing, str) else None,
            state_text=f"lost: {lost[name]}" if name in lost else state_words(info, day),
            text=session_text(name, brief, last_cycle if isinstance(last_cycle, dict) else None, doing, info, day,
                              lost.get(name)),
            host=host_of(name), lost=lost.get(name),
        ))  # fmt: skip
    queue = ctx.review_queue().read()
    review = Counter(e.status.value for e in queue.entries)
    if queue.problems:
        review["unreadable"] = len(queue.problems)
    spend = spend_since(ctx.log, day_start(now)) if today_events is None else spend_of(today_events)
    budget = ctx.settings.budget.daily_usd
    verdict = decide_budget(spend["total_usd"], ctx.settings.budget, ctx.settings.session_names)
    holds = read_holds(ctx.holds_document())
    current = holds.on(day_of(now))
    paused = list(ctx.pauses().all())
    hosts = tuple(
        HostStatus(name=host, sessions=tuple(s.name for s in sessions if s.host == host),
                   closed=dict(h.on(day).closed), updated=h.updated or None,
                   lost=tuple(s for s in lost if host_of(s) == host))
        for host, h in ctx.fleet_holds().items()
    )  # fmt: skip
    figures = today(ctx, today_events)
    return StatusReport(
        home=str(ctx.paths.home),
        sandbox=sandbox_state(ctx),
        now=format_ts(now),
        sessions=tuple(sessions),
        tasks=dict(Counter(t.status for t in tasks)),
        review_queue=dict(review),
        spend_today=spend,
        summary=figures.line("today"),
        today=figures.as_dict(),
        budget=BudgetStatus(
            daily_usd=budget,
            left_usd=round(max(0.0, budget - spend["total_usd"]), 4),
            soft_usd=round(verdict.soft_usd, 4),
            state=verdict.state,
            degrade=ctx.settings.budget.degrade,
        ),
        holds=HoldsStatus(
            updated=holds.updated or None,
            closed=dict(current.closed),
            sessions=dict(current.sessions),
            agent=current.agent,
            resources=dict(holds.resources),
            paused=tuple(paused),
        ),
        warnings=tuple(warnings(ctx) + [f"skipped: {p}" for p in queue.problems]),
        last_events=tuple(e.as_dict() for e in ctx.log.tail(last)),
        hosts=hosts,
    )


def session_lines(report: StatusReport) -> list[str]:
    """The sessions as `status` and the bot's /status list them: one line each, grouped by host in a fleet."""
    if not report.hosts:
        return [f"  {s.text}" for s in report.sessions]
    lines = []
    for host in report.hosts:
        holds = "; ".join(f"{k} ({v})" for k, v in host.closed.items()) or "none"
        lost = f", {len(host.lost)} lost" if host.lost else ""
        lines.append(f"  host {host.name}: {len(host.sessions)} sessions{lost}; holds: {holds}")
        lines += [f"    {s.text}" for s in report.sessions if s.host == host.name]
    return lines


# What each heartbeat state means, for a person (the loop and the cycle write the states).
STATES = {
    "cycle": "in a cycle",
    "idle": "idle between cycles",
    "sleeping": "waiting for its next cycle",
    "paused": "paused",
    "stopped": "stopped (its loop ended)",
    "unknown": "unknown: no heartbeat yet (its loop has not started or not reported)",
}


def state_words(info: Mapping[str, Any], today: str = "") -> str:
    """A session's heartbeat in words: `in a cycle since 10:55`, `waiting for its next cycle at 11:10`."""
    state = str(info.get("state") or "unknown")
    words = STATES.get(state, state)
    if state == "cycle" and isinstance(info.get("cycle_started"), str):
        words += f" since {_clock(info['cycle_started'], today)}"
    elif state == "sleeping" and isinstance(info.get("next_cycle"), str):
        words += f" at {_clock(info['next_cycle'], today)}"
    elif state == "paused" and isinstance(info.get("waiting"), str) and info["waiting"]:
        words += f": {info['waiting']}"
    failures = info.get("failures")
    if isinstance(failures, int) and not isinstance(failures, bool) and failures > 0:
        words += f" ({failures} failed cycles in a row)"
    return words


def session_text(
    name: str,
    task: TaskBrief | None,
    last_cycle: Mapping[str, Any] | None,
    now: object,
    info: Mapping[str, Any],
    today: str = "",
    lost: str | None = None,
) -> str:
    """One session in one line, as `status` and the bot's /status show it: state, task, last cycle."""
    task_text = f"task #{task.id} “{task.title[:60]}” ({task.status})" if task else "no task"
    last = last_cycle or {}
    if last:
        verdict, branch, reason = (str(last.get(k) or "") for k in ("verdict", "branch", "reason"))
        shown = branch if verdict == "pushed" else ""  # a discarded branch is gone
        said = " ".join(p for p in (verdict or "ended", shown) if p) + (f": {reason[:80]}" if reason else "")
        cycle = f"last cycle {_clock(str(last.get('ended') or ''), today)} {said}".replace("  ", " ")
    else:
        cycle = "no cycle yet"
    state = f"LOST ({lost})" if lost else state_words(info, today)
    state += f", now {str(now)[:100]}" if isinstance(now, str) and now and not lost else ""
    return f"{name}: {state}; {task_text}; {cycle}"


def spend_by_session(spend: Mapping[str, Any]) -> str:
    """`s1 $0.02, s2 $0.00; no session: review $0.01`: the calls of no session named by their job."""
    sessions = ", ".join(f"{k} ${v:.2f}" for k, v in (spend.get("by_session") or {}).items())
    others = ", ".join(f"{k} ${v:.2f}" for k, v in (spend.get("no_session") or {}).items())
    return "; ".join(p for p in (sessions, f"no session: {others}" if others else "") if p) or "none"


def _clock(ts: str, today: str = "") -> str:
    """`2026-12-05T10:55:06.1Z` -> `10:55 UTC` when it is `today`, else `2026-12-04 10:55 UTC`."""
    if len(ts) < 16 or ts[10:11] != "T":
        return ts
    return f"{ts[11:16]} UTC" if ts.startswith(today) and today else f"{ts[:10]} {ts[11:16]} UTC"


def sandbox_state(ctx: Context) -> SandboxStatus:
    """Whether untrusted code runs sandboxed here: on and working, off (said loudly), or broken."""
    if not ctx.settings.sandbox.enabled:
        return SandboxStatus(False, False, "agents are NOT sandboxed (sandbox.enabled = false)")
    try:
        ctx.sandbox().check()
    except SandboxUnavailable as exc:
        return SandboxStatus(True, False, f"BROKEN, no cycle or review will run: {exc}")
    return SandboxStatus(True, True, "on (bubblewrap: agent, reviewer, setup and checks)")
