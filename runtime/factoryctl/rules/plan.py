"""The scheduler's decision for one tick: facts and now in, a Plan out. No side effects.

`decide` is the whole decision; `Scheduler` (scheduler.py) gathers the facts and carries
the plan out. Tests are data: build Facts by hand, check the Plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from factoryctl.core.clock import day_of, format_ts
from factoryctl.core.config import SchedulerSection, Settings
from factoryctl.core.facts import App, Pane, Reading
from factoryctl.core.records import ACTIVE, BUDGET, RESOURCES, Alert, Holds, Task
from factoryctl.rules.budget import BudgetVerdict, decide_budget
from factoryctl.rules.lost import lost_sessions
from factoryctl.rules.watchdog import History, StopApp, watch

# -- facts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionFacts:
    name: str
    pane: Pane | None  # its tmux session's pane; None when there is no such session
    state: str = "unknown"  # what its loop last wrote to sessions.json
    pid_alive: bool = False  # whether the pid in sessions.json runs
    cycle_started: str | None = None
    paused: bool = False  # its own pause flag or the factory's


@dataclass(frozen=True)
class Facts:
    now: datetime
    reading: Reading
    spend_usd: float
    previous: Holds
    sessions: Mapping[str, SessionFacts]  # the configured ones this host runs (s1..sN, or its HOST-sI)
    strays: tuple[str, ...] = ()  # factory-sK tmux sessions beyond factory.sessions
    tasks: tuple[Task, ...] = ()
    apps: tuple[App, ...] | None = None  # None: no PM2 daemon here
    app_history: Mapping[str, Sequence[tuple[str, int]]] = field(default_factory=dict)
    self_app: str | None = None  # the PM2 app this scheduler runs as: never stopped by itself
    tmux_error: str | None = None  # tmux could not be asked: sessions and tasks are left alone
    main_commit: str = ""  # main as the last cycle judged it (state/main-health.json)
    main_problems: tuple[str, ...] = ()  # why main's checks are no yardstick now (cycles wait)
    main_alerted: str = ""  # the main commit whose breakage was already alerted
    bad_records: tuple[str, ...] = ()  # records of state files that did not validate (skipped)
    # The heartbeats of the sessions other hosts run, watched by a gate (empty elsewhere).
    remote: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


# -- the plan ------------------------------------------------------------------------


class Requeue(NamedTuple):
    task: int
    session: str  # the session that held it
    why: str


class Park(NamedTuple):
    task: int
    why: str  # its failed attempts' reasons


class Assign(NamedTuple):
    task: int
    session: str


@dataclass(frozen=True)
class Plan:
    holds: Holds
    budget: BudgetVerdict
    start: tuple[str, ...] = ()  # sessions to start (missing, or restarted)
    stop: tuple[str, ...] = ()  # sessions to stop: strays, and those restarted
    requeue: tuple[Requeue, ...] = ()
    park: tuple[Park, ...] = ()
    assign: tuple[Assign, ...] = ()
    stop_apps: tuple[StopApp, ...] = ()
    alerts: tuple[Alert, ...] = ()
    app_history: History = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # why sessions were (re)started or stopped
    main_alerted: str = ""  # what Facts.main_alerted becomes after this tick
    lost: Mapping[str, str] = field(default_factory=dict)  # other hosts' sessions silent too long: why

    def actions(self) -> list[str]:
        """What this plan changes, one line each (empty: nothing to do but write the holds)."""
        out = list(self.notes)
        out += [f"requeue task #{t} of {s}: {why}" for t, s, why in self.requeue]
        out += [f"park task #{t}: {why}" for t, why in self.park]
        out += [f"assign task #{t} to {s}" for t, s in self.assign]
        out += [f"stop PM2 app {a}: {why}" for a, why in self.stop_apps]
        return out


def resource_hold(reading: Reading, cfg: SchedulerSection, was_closed: bool) -> str | None:
    """Why the resources hold new cycles back, or None; once holding, they let go only past the hysteresis."""
    ram_limit = cfg.max_ram_percent - (cfg.ram_hysteresis_percent if was_closed else 0)
    disk_floor = cfg.min_free_disk_gb + (cfg.disk_hysteresis_gb if was_closed else 0)
    problems = []
    if reading.ram_percent >= ram_limit:
        problems.append(f"RAM {reading.ram_percent:.0f}% (limit {cfg.max_ram_percent}%"
                        + (f", held until below {ram_limit}%)" if was_closed else ")"))  # fmt: skip
    if reading.disk_free_gb < disk_floor:
        problems.append(f"free disk {reading.disk_free_gb:.1f} GB (floor {cfg.min_free_disk_gb:g} GB"
                        + (f", held until above {disk_floor:g} GB)" if was_closed else ")"))  # fmt: skip
    return "; ".join(problems) or None


def decide_holds(facts: Facts, settings: Settings) -> tuple[Holds, BudgetVerdict]:
    day = day_of(facts.now)
    closed: dict[str, str] = {}
    resources = resource_hold(facts.reading, settings.scheduler, RESOURCES in facts.previous.closed)
    if resources:
        closed[RESOURCES] = resources
    verdict = decide_budget(facts.spend_usd, settings.budget, settings.session_names)
    if verdict.state == "closed":
        closed[BUDGET] = verdict.reason
    holds = Holds(closed=closed, sessions=verdict.held, agent=verdict.agent, day=day, updated=format_ts(facts.now),
                  resources=facts.reading.as_dict(), budget=verdict.as_dict())  # fmt: skip
    return holds, verdict


def hold_alerts(previous: Holds, holds: Holds, verdict: BudgetVerdict) -> list[Alert]:
    """One alert when resources or the budget start holding every session, or the budget starts degrading
    (not on every tick)."""
    out = []
    if RESOURCES in holds.closed and RESOURCES not in previous.closed:
        out.append(Alert("resources:closed", f"new cycles held back for resources: {holds.closed[RESOURCES]}"))
    if BUDGET in holds.closed and BUDGET not in previous.closed:
        out.append(Alert(f"budget:closed:{holds.day}", f"daily budget reached, no new cycles today: {verdict.reason}"))
    was_degraded = bool(previous.sessions or previous.agent)
    if verdict.state == "degraded" and not was_degraded:
        how = [f"{len(verdict.held)} session(s) wait"] if verdict.held else []
        how += ["cycles use the cheaper agent"] if verdict.agent else []
        what = ", ".join(how) or "nothing to hold back"
        out.append(Alert(f"budget:degraded:{holds.day}", f"budget degraded ({verdict.reason}): {what}"))
    return out


def main_alerts(facts: Facts) -> tuple[list[Alert], str]:
    """One alert per broken main commit (not one per tick or per cycle), and what is then alerted."""
    if not facts.main_problems:
        return [], ""
    if facts.main_alerted == facts.main_commit:
        return [], facts.main_alerted
    text = "; ".join(facts.main_problems)
    where = f"main {facts.main_commit[:12]}"
    message = f"{text} ({where}): cycles wait without calling the agent until it is fixed"
    alert = Alert(f"main:broken:{facts.main_commit[:12]}", message[:500])
    return [alert], facts.main_commit


def failure_reasons(task: Task, limit: int) -> str:
    notes = [str(h.get("note", "")) for h in task.history if h.get("status") == "requeued" and h.get("note")]
    shown = "; ".join(notes[-limit:]) or "no reasons recorded"
    return f"{task.attempts} failed attempts: {shown}"[:1000]


@dataclass(frozen=True)
class SessionMoves:
    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    lost: Mapping[str, str] = field(default_factory=dict)  # session -> why its open task goes back


def session_moves(facts: Facts, settings: Settings) -> SessionMoves:
    """Start what is missing, restart what died or stalled, stop what is not configured."""
    if facts.tmux_error is not None:
        return SessionMoves()
    cfg = settings.scheduler
    stall_before = format_ts(facts.now - timedelta(seconds=cfg.stall_after_s))
    start: list[str] = []
    stop = list(facts.strays)
    notes = [f"stop {s}: not configured (factory.sessions = {settings.factory.sessions})" for s in facts.strays]
    lost = {s: f"session {s} is not configured" for s in facts.strays}
    for name, s in facts.sessions.items():
        if s.pane is None and s.state == "cycle" and s.pid_alive:
            continue  # a cycle started by hand (`factoryctl cycle`): its loop starts after it
        if s.pane is None:
            start.append(name)
            notes.append(f"start {name}: no tmux session")
            lost[name] = f"session {name} was not running"
        elif not s.pane.alive:
            stop.append(name)
            start.append(name)
            notes.append(f"restart {name}: its loop has ended")
            lost[name] = f"session {name} died"
        elif s.state == "cycle" and s.cycle_started and s.cycle_started < stall_before:
            stop.append(name)
            start.append(name)
            notes.append(f"restart {name}: cycle running since {s.cycle_started} (stall_after_s {cfg.stall_after_s})")
            lost[name] = f"session {name} stalled"
        elif s.state == "cycle" and not s.pid_alive:
            lost[name] = f"the cycle of {name} died"
    return SessionMoves(tuple(start), tuple(stop), tuple(notes), lost)


def task_moves(
    facts: Facts, settings: Settings, holds: Holds, moves: SessionMoves, lost: Mapping[str, str] | None = None
) -> tuple[list[Requeue], list[Park], list[Assign]]:
    """(requeue, park, assign): free the tasks of lost sessions (here, or another host's that went
    silent: `lost`), park the hopeless, feed idle sessions."""
    lost = lost or {}
    limit = settings.scheduler.max_task_failures
    open_tasks = [t for t in facts.tasks if t.status in ACTIVE]
    requeue: list[Requeue] = []
    for task in open_tasks:
        owner = task.session or "-"
        if owner in moves.lost:
            requeue.append(Requeue(task.id, owner, moves.lost[owner]))
        elif owner in lost:
            requeue.append(Requeue(task.id, owner, f"session {owner} is lost: {lost[owner]}"))
        elif owner not in settings.session_names and facts.tmux_error is None:
            requeue.append(Requeue(task.id, owner, f"session {owner} is not configured"))
    queued = sorted((t for t in facts.tasks if t.status == "queued"), key=Task.sort_key)
    park = [Park(t.id, failure_reasons(t, limit)) for t in queued if t.attempts >= limit]
    free = [t for t in queued if t.attempts < limit]
    busy = {t.session for t in open_tasks}
    assign: list[Assign] = []
    if holds.closed or facts.tmux_error is not None:
        return requeue, park, assign
    for name, s in facts.sessions.items():
        running = s.pane is not None and s.pane.alive and name not in moves.stop
        if not running or s.state == "cycle" or s.paused or name in busy or holds.hold(name):
            continue
        pick = next((t for t in free if t.session in (None, name)), None)
        if pick is not None:
            assign.append(Assign(pick.id, name))
            free.remove(pick)
    return requeue, park, assign


def decide(facts: Facts, settings: Settings) -> Plan:
    """The whole tick's decision. Pure: the same facts always give the same plan."""
    cfg = settings.scheduler
    holds, verdict = decide_holds(facts, settings)
    moves = session_moves(facts, settings)
    lost = lost_sessions(facts.remote, facts.remote, facts.now, settings.fleet.lost_after_s)
    requeue, park, assign = task_moves(facts, settings, holds, moves, lost)
    stop_apps: tuple[StopApp, ...] = ()
    history: History = {k: list(v) for k, v in facts.app_history.items()}
    if facts.apps is not None:
        skip = frozenset({facts.self_app}) if facts.self_app else frozenset()
        watched = watch(facts.apps, facts.app_history, facts.now, max_restarts=cfg.watchdog_restarts,
                        window_s=cfg.watchdog_window_s, skip=skip)  # fmt: skip
        stop_apps, history = watched.stops, watched.history
    alerts = hold_alerts(facts.previous.on(holds.day), holds, verdict)
    alerts += [Alert(f"crashloop:{app}", f"PM2 app {app} {why}: stopped it; fix it, then `pm2 restart {app}`")
               for app, why in stop_apps]  # fmt: skip
    alerts += [Alert(f"lost:{s}", f"session {s} is lost: {why}; its task goes back to the queue", session=s)
               for s, why in lost.items()]  # fmt: skip
    broken, alerted = main_alerts(facts)
    alerts += broken
    alerts += [Alert("state:bad-record", f"skipped a record that does not validate: {why}"[:500])
               for why in facts.bad_records[:3]]  # fmt: skip
    return Plan(holds=holds, budget=verdict, start=moves.start, stop=moves.stop, requeue=tuple(requeue),
                park=tuple(park), assign=tuple(assign), stop_apps=stop_apps, alerts=tuple(alerts),
                app_history=history, notes=moves.notes, main_alerted=alerted, lost=lost)  # fmt: skip
