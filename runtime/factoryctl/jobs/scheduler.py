"""`factoryctl scheduler`: every scheduler.tick_s, read the world, decide, act.

A tick gathers facts (a psutil reading, today's spend, the tmux sessions, the loops'
heartbeats, the tasks, PM2's apps), `decide` turns them into a Plan (pure: facts and now
in, data out), and `Scheduler.carry_out` does what the plan says: holds.json first (the
loops read it before every cycle), then sessions, tasks, PM2 apps and alerts. A
`scheduler` event is written when something changed, and at most hourly otherwise.
"""

from __future__ import annotations

import contextlib
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from factoryctl.adapters.machine import pid_alive, sample
from factoryctl.adapters.pm2 import Pm2
from factoryctl.core.clock import day_start, format_ts, parse_ts
from factoryctl.core.defaults import SCHEDULER_HEARTBEAT
from factoryctl.core.errors import FactoryError, StateUnreachable
from factoryctl.core.facts import App, Reading
from factoryctl.core.fleet import session_order
from factoryctl.core.records import Alert
from factoryctl.core.signals import on_signals
from factoryctl.jobs.context import Context
from factoryctl.jobs.outage import Outage
from factoryctl.jobs.sessions import Sessions
from factoryctl.rules.plan import Facts, Plan, SessionFacts, decide
from factoryctl.rules.watchdog import load_history
from factoryctl.state.alerts import Alerts, LogSink
from factoryctl.state.backend import scheduler_lock
from factoryctl.state.holds import read_holds, write_holds
from factoryctl.state.pauses import label
from factoryctl.state.spend import spend_since


@dataclass
class TickReport:
    now: str
    changed: bool
    actions: list[str]
    holds: dict[str, Any]
    alerts: list[str]
    errors: list[str]
    lost: dict[str, str] = field(default_factory=dict)  # other hosts' sessions gone silent (a gate): why


class Scheduler:
    def __init__(
        self,
        ctx: Context,
        *,
        sessions: Sessions | None = None,
        pm2: Pm2 | None = None,
        reading: Callable[[], Reading] | None = None,
        alerts: Alerts | None = None,
        out: Callable[[str], None] = lambda text: None,
        self_app: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.sessions = sessions or Sessions(ctx)
        self.pm2 = pm2 if pm2 is not None else Pm2()
        self.reading = reading or (lambda: sample(ctx.paths.home))
        self.alerts = alerts or ctx.alerts([LogSink(out)])
        self.out = out
        self.self_app = self_app
        self.state = ctx.state.document("scheduler.json", dict)

    def gather(self) -> Facts:
        ctx = self.ctx
        now = ctx.clock()
        settings = ctx.settings
        local = settings.local_sessions
        tmux_error = None
        try:  # a gate runs no loops: it has no tmux sessions to ask about
            panes = self.sessions.panes() if settings.factory.role != "gate" else {}
        except FactoryError as exc:  # the holds matter most: they are still decided and written
            panes, tmux_error = {}, str(exc)
        heartbeats = ctx.heartbeats().read()
        pauses = ctx.pauses().all()
        facts = {}
        for name in local:
            entry = heartbeats.get(name, {})
            facts[name] = SessionFacts(
                name=name, pane=panes.get(name), state=str(entry.get("state", "unknown")),
                pid_alive=pid_alive(entry.get("pid")), cycle_started=entry.get("cycle_started"),
                paused=label(None) in pauses or label(name) in pauses,
            )  # fmt: skip
        # A gate watches the other hosts' sessions through their heartbeats (a worker only its own).
        watched = [n for n in settings.session_names if n not in local] if settings.factory.role == "gate" else []
        strays = tuple(sorted((s for s in panes if s not in facts), key=session_order))
        state = self.state.read()
        main_commit, main_problems = ctx.baselines().health()
        tasks = ctx.tasks()
        return Facts(
            now=now,
            reading=self.reading(),
            spend_usd=float(spend_since(ctx.log, day_start(now))["total_usd"]),
            previous=read_holds(ctx.holds_document()),
            sessions=facts,
            strays=strays,
            tasks=tuple(tasks.all()),
            apps=self._apps(),
            app_history=load_history(state.get("apps") if isinstance(state, dict) else None),
            self_app=self.self_app,
            tmux_error=tmux_error,
            main_commit=main_commit,
            main_problems=main_problems,
            main_alerted=str(state.get("main_alerted") or "") if isinstance(state, dict) else "",
            bad_records=(*tasks.problems(), *ctx.review_queue().read().problems),
            remote={n: heartbeats.get(n, {}) for n in watched},
        )

    def _apps(self) -> tuple[App, ...] | None:
        try:
            apps = self.pm2.apps()
        except FactoryError as exc:  # pm2 missing or broken: the rest of the tick still runs
            self.out(f"watchdog skipped: {exc}")
            return None
        return None if apps is None else tuple(apps)

    def tick(self) -> TickReport:
        facts = self.gather()
        plan = decide(facts, self.ctx.settings)
        errors = self.carry_out(plan)
        if facts.tmux_error is not None:
            errors.insert(0, f"sessions left alone: {facts.tmux_error}")
        return self.record(facts, plan, errors)

    def carry_out(self, plan: Plan) -> list[str]:
        """Do what the plan says; a step that fails is reported and the others still run."""
        ctx = self.ctx
        errors: list[str] = []
        write_holds(ctx.holds_document(), plan.holds)  # first: loops read it before every cycle
        steps: list[tuple[str, Callable[[], object]]] = []
        if plan.stop:
            steps.append(("stop sessions", lambda: self.sessions.stop(plan.stop)))
        tasks = ctx.tasks()
        steps += [(f"requeue #{t}", partial(tasks.release, t, s, w)) for t, s, w in plan.requeue]
        steps += [(f"start {s}", partial(self.sessions.start, s)) for s in plan.start]
        steps += [(f"park #{t}", partial(tasks.park, t, why)) for t, why in plan.park]
        steps += [(f"assign #{t}", partial(tasks.assign, t, s, self._still_idle)) for t, s in plan.assign]
        steps += [(f"stop {app}", partial(self.pm2.stop, app)) for app, _ in plan.stop_apps]
        for what, step in steps:
            try:
                step()
            except FactoryError as exc:
                errors.append(f"{what}: {exc}")
        for alert in plan.alerts:
            self.alerts.send(alert)
        return errors

    def _still_idle(self, session: str) -> bool:
        """Checked under the task queue's lock: a loop marks "cycle" before it claims a task."""
        entry = self.ctx.heartbeats().of(session)
        return bool(entry.get("state") != "cycle")

    def record(self, facts: Facts, plan: Plan, errors: list[str]) -> TickReport:
        now = facts.now
        actions = plan.actions()
        changed = bool(actions or errors or set(plan.lost) != set(self._lost_before)) or not plan.holds.same_decision(
            facts.previous.on(plan.holds.day)
        )
        with self.state.update() as state:
            last = state.get("last_event")
            due = changed or not last or parse_ts(last) <= now - SCHEDULER_HEARTBEAT
            state["apps"] = {k: [list(s) for s in v] for k, v in plan.app_history.items()}
            state["last_tick"] = format_ts(now)
            state["main_alerted"] = plan.main_alerted
            state["lost"] = sorted(plan.lost)
            if due:
                state["last_event"] = format_ts(now)
        holds = {"closed": dict(plan.holds.closed), "sessions": dict(plan.holds.sessions), "agent": plan.holds.agent}
        if due:
            counts = Counter(t.status for t in facts.tasks)
            running = sum(1 for s in facts.sessions.values() if s.pane is not None and s.pane.alive)
            self.ctx.log.append("scheduler", data={
                "changed": changed, "actions": actions, "errors": errors, "holds": holds,
                "resources": facts.reading.as_dict(), "budget": plan.budget.as_dict(),
                "sessions": {"configured": len(facts.sessions), "running": running},
                "tasks": dict(sorted(counts.items())),
                **({"lost": dict(plan.lost)} if plan.lost else {}),
            })  # fmt: skip
        return TickReport(now=format_ts(now), changed=changed, actions=actions, holds=holds,
                          alerts=[a.key for a in plan.alerts], errors=errors, lost=dict(plan.lost))  # fmt: skip

    @property
    def _lost_before(self) -> list[str]:
        state = self.state.read()
        lost = state.get("lost") if isinstance(state, dict) else None
        return [str(s) for s in lost] if isinstance(lost, list) else []

    def job_lock(self) -> contextlib.AbstractContextManager[None]:
        """This host's scheduler lock: one scheduler a host, every host of a fleet its own."""
        return self.ctx.job_lock(scheduler_lock(self.ctx.settings.factory.host))

    def run(self, *, once: bool = False, stop: threading.Event | None = None) -> int:
        """Tick every scheduler.tick_s until SIGTERM/SIGINT (which let the tick under way finish).

        With the shared state out of reach (PostgreSQL restarting) it waits and says so once, takes
        its job lock again when the state is back (a lost connection freed it) and goes on.
        """
        stop = stop or threading.Event()
        outage = Outage(self.ctx.state.describe(), self.out, "no tick runs until it can be recorded")
        with on_signals(lambda signum: stop.set()):  # the tick under way finishes
            while True:
                try:
                    with self.job_lock():
                        self.ctx.state.check()  # a connection from before the outage is found broken here
                        outage.up()
                        return self._ticks(once, stop)
                except StateUnreachable as exc:
                    if once:
                        raise
                    if stop.wait(outage.down(exc)):
                        return 0

    def _ticks(self, once: bool, stop: threading.Event) -> int:
        """Tick until stopped; StateUnreachable ends it (the caller waits for the state)."""
        while True:
            started = self.ctx.clock()
            try:
                report = self.tick()
            except StateUnreachable:
                raise
            except FactoryError as exc:  # a damaged state file: said in one line, the next tick tries again
                self.out(f"tick failed: {exc}")
                self.alerts.send(Alert("scheduler:error", f"a scheduler tick failed: {exc}"[:500]))
            except Exception as exc:  # one bad tick must not crash-loop the scheduler under PM2
                self.out(f"tick failed: {exc}\n{traceback.format_exc()}")
                self.alerts.send(Alert("scheduler:error", f"a scheduler tick failed: {exc}"[:500]))
            else:
                self.out(self.describe(report))
            if once or stop.is_set():
                return 0
            spent = (self.ctx.clock() - started).total_seconds()
            if stop.wait(max(0.0, self.ctx.settings.scheduler.tick_s - spent)):
                return 0

    @staticmethod
    def describe(report: TickReport) -> str:
        holds = report.holds
        closed = "; ".join(f"{k}: {v}" for k, v in holds["closed"].items())
        parts = [f"every session ({closed})"] if closed else []
        parts += [f"{len(holds['sessions'])} session(s)"] if holds["sessions"] else []
        parts += ["cheaper agent"] if holds["agent"] else []
        lines = [f"{report.now} tick: holds: {', '.join(parts) or 'none'}"]
        lines += [f"  lost {s}: {why}" for s, why in report.lost.items()]
        lines += [f"  {a}" for a in report.actions] + [f"  error: {e}" for e in report.errors]
        return "\n".join(lines)
