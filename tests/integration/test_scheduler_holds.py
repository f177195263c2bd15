"""The scheduler with real loops in real tmux sessions and the scripted agent: holds and budget.

Each test has its own tmux server (FACTORY_TMUX_SOCKET), cycles every second and no
checks, so loops that may work run cycle after cycle and loops that may not are seen
waiting. The RAM reading is injected; spend is seeded as `agent_call` events.
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path
from typing import Any

from factoryctl.adapters.pm2 import Pm2
from factoryctl.adapters.tmux import Tmux
from factoryctl.core.facts import Reading
from factoryctl.jobs.context import Context
from factoryctl.jobs.scheduler import Scheduler
from factoryctl.state.alerts import Alerts
from factoryctl.state.eventlog import EventFilter
from tests.factories import Factory, make_factory
from tests.helpers import run_cli, tool, wait_for


class Machine:
    """The injected psutil reading: tests turn the RAM up and down."""

    def __init__(self) -> None:
        self.ram = 40.0

    def __call__(self) -> Reading:
        return Reading(ram_percent=self.ram)


def fast_factory(tmp_path: Path, sessions: int, extra: str = "", cost: float = 0.0) -> Factory:
    factory = make_factory(tmp_path, sessions=sessions, checks="", extra=extra)
    config = factory.home / "factory.toml"
    config.write_text(config.read_text().replace("interval_s = 60", "interval_s = 1"))
    factory.script([{"result": "looked around", "cost_usd": cost}], repeat=True)
    return factory


def scheduler(ctx: Context, tmp_path: Path, machine: Machine) -> Scheduler:
    no_pm2 = Pm2(environ={"PM2_HOME": str(tmp_path / "no-pm2"), "PATH": "/usr/bin:/bin"})
    return Scheduler(ctx, pm2=no_pm2, reading=machine)


def cycles(ctx: Context, session: str | None = None) -> list[Any]:
    return ctx.log.tail(10_000, EventFilter(types=frozenset({"ralph_cycle"}), session=session))


def states(ctx: Context) -> dict[str, Any]:
    return ctx.heartbeats().read()


def waiting_on(ctx: Context, session: str, text: str) -> bool:
    entry = states(ctx).get(session) or {}
    return entry.get("state") == "paused" and text in entry.get("waiting", "")


def test_above_the_ram_threshold_nothing_is_assigned_and_no_cycle_starts_below_it_work_resumes(
    tmp_path: Path, tmux: Tmux
) -> None:
    factory = fast_factory(tmp_path, sessions=2)
    ctx = factory.ctx()
    first, second = ctx.tasks().add("First thing", priority="high"), ctx.tasks().add("Second thing")
    machine = Machine()
    machine.ram = 91.0
    report = scheduler(ctx, tmp_path, machine).tick()
    assert report.holds["closed"]["resources"].startswith("RAM 91%")
    assert report.alerts == ["resources:closed"]
    for session in ("s1", "s2"):
        wait_for(
            partial(waiting_on, ctx, session, "new cycles held back: resources: RAM 91%"), what=f"{session} waiting"
        )
    time.sleep(2)  # loops poll every second: time enough to start a cycle if they wrongly could
    assert cycles(ctx) == []
    assert [t.status for t in ctx.tasks().all()] == ["queued", "queued"]

    machine.ram = 82.0  # under the limit but not under the hysteresis (85 - 5): still closed
    report = scheduler(ctx, tmp_path, machine).tick()
    assert "held until below 80%" in report.holds["closed"]["resources"]
    assert report.actions == [] and report.alerts == []
    time.sleep(1.5)
    assert cycles(ctx) == []

    machine.ram = 70.0
    report = scheduler(ctx, tmp_path, machine).tick()
    assert report.holds["closed"] == {}
    assert report.actions == [f"assign task #{first.id} to s1", f"assign task #{second.id} to s2"]
    # Each session's first cycle took the task the scheduler gave it. (With no checks a cycle ends
    # "no change" and requeues its task, which a later cycle of either session may take.)
    with_task = lambda: [e for e in cycles(ctx) if e.data["task"] is not None]  # noqa: E731
    wait_for(lambda: {e.session for e in with_task()} == {"s1", "s2"}, what="a cycle of each after the hold lifted")
    worked: dict[str, int] = {}
    for e in with_task():
        worked.setdefault(e.session, e.data["task"])
    assert worked == {"s1": first.id, "s2": second.id}
    events = ctx.log.tail(100, EventFilter(types=frozenset({"scheduler"})))
    assert [bool(e.data["holds"]["closed"]) for e in events] == [True, False]  # the quiet tick wrote nothing


def test_spend_at_the_budget_stops_new_cycles_with_one_alert(tmp_path: Path, tmux: Tmux) -> None:
    factory = fast_factory(tmp_path, sessions=2, extra="[budget]\ndaily_usd = 1.0\nsoft_share = 1.0\n", cost=0.3)
    ctx = factory.ctx()
    machine = Machine()
    sched = scheduler(ctx, tmp_path, machine)
    assert sched.tick().holds["closed"] == {}
    from factoryctl.core.clock import day_start
    from factoryctl.state.spend import spend_since

    wait_for(lambda: spend_since(ctx.log, day_start(ctx.clock()))["total_usd"] >= 1.0, what="spend reaching $1")
    report = sched.tick()
    assert report.holds["closed"]["budget"].startswith("spent $")
    assert report.alerts == [f"budget:closed:{ctx.clock():%Y-%m-%d}"]
    for session in ("s1", "s2"):
        wait_for(
            partial(waiting_on, ctx, session, "new cycles held back: budget"), what=f"{session} held by the budget"
        )
    done = len(cycles(ctx))
    time.sleep(3)  # with cycle.interval_s = 1 no hold would have let each loop run two or three more
    assert len(cycles(ctx)) == done
    again = sched.tick()
    assert again.alerts == [] and not again.changed
    alerts = ctx.log.tail(100, EventFilter(types=frozenset({"alert"})))
    assert [a.data["key"] for a in alerts] == [f"budget:closed:{ctx.clock():%Y-%m-%d}"]
    status = json.loads(run_cli("status", "--json", home=factory.home).stdout)
    assert status["budget"]["state"] == "closed" and "budget" in status["holds"]["closed"]
    assert status["spend_today"]["total_usd"] >= 1.0


def seed_spend(ctx: Context, usd: float) -> None:
    ctx.log.append("agent_call", session="s1", data={"purpose": "cycle", "outcome": "success", "cost_usd": usd})


def test_at_the_soft_share_fewer_sessions_work(tmp_path: Path, tmux: Tmux) -> None:
    extra = '[budget]\ndaily_usd = 10.0\nsoft_share = 0.5\ndegrade = "sessions"\ndegraded_sessions = 1\n'
    factory = fast_factory(tmp_path, sessions=2, extra=extra)
    ctx = factory.ctx()
    seed_spend(ctx, 6.0)
    report = scheduler(ctx, tmp_path, Machine()).tick()
    assert report.holds["closed"] == {} and list(report.holds["sessions"]) == ["s2"]
    wait_for(lambda: waiting_on(ctx, "s2", "held: budget: spent $6.00, past 50% of $10.00"), what="s2 held")
    wait_for(lambda: len(cycles(ctx, "s1")) >= 3, what="s1 working on")
    assert cycles(ctx, "s2") == []
    assert "held: s2" in run_cli("status", home=factory.home).stdout


def test_at_the_soft_share_cycles_switch_to_the_cheaper_agent(tmp_path: Path, tmux: Tmux) -> None:
    cheap = tmp_path / "agent" / "cheap.json"  # the scenario folder the sandbox lets the agent write
    cheap.parent.mkdir(exist_ok=True)
    cheap.write_text(json.dumps({"calls": [{"result": "the cheap model looked", "cost_usd": 0.01}], "repeat": True}))
    extra = (f'[budget]\ndaily_usd = 10.0\nsoft_share = 0.5\ndegrade = "model"\n'
             f'cheap_command = ["{tool("factory-scripted-agent")}", "--scenario", "{cheap}"]\n')  # fmt: skip
    factory = fast_factory(tmp_path, sessions=1, extra=extra)
    ctx = factory.ctx()
    sched = scheduler(ctx, tmp_path, Machine())
    sched.tick()
    wait_for(lambda: len(cycles(ctx)) >= 1, what="a cycle on the configured agent")
    assert cycles(ctx)[0].data["summary"] == "looked around"
    seed_spend(ctx, 6.0)
    report = sched.tick()
    assert report.holds["agent"] == "cheap" and report.holds["sessions"] == {}
    assert [a.split(":")[0] for a in report.alerts] == ["budget"]
    wait_for(lambda: cycles(ctx)[-1].data["summary"] == "the cheap model looked", what="a cycle on the cheap agent")
    wait_for(lambda: cycles(ctx)[-2].data["summary"] == "the cheap model looked", what="and it stays cheap")


def test_alerts_are_shared_by_processes_through_the_log(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1, checks="")
    from factoryctl.core.records import Alert

    one, two = (Alerts(factory.ctx().log, factory.home / "state" / "locks") for _ in range(2))
    assert one.send(Alert("resources:closed", "RAM"))
    assert not two.send(Alert("resources:closed", "RAM"))
