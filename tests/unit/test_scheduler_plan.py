"""The scheduler's decisions as data: facts in, a plan out (no tmux, no PM2, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from factoryctl.core.clock import format_ts
from factoryctl.core.config import Settings
from factoryctl.core.configfile import settings_from_mapping
from factoryctl.core.facts import Pane, Reading
from factoryctl.core.records import Holds, Task
from factoryctl.rules.budget import agent_spec, cheap_agent_command, decide_budget
from factoryctl.rules.plan import Facts, SessionFacts, decide, hold_alerts, resource_hold

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
TODAY = "2026-11-24"


def settings(**sections: dict[str, Any]) -> Settings:
    return settings_from_mapping({"factory": {"sessions": 3}, **sections}, source="test")


def pane(name: str, dead: bool = False) -> Pane:
    return Pane(f"factory-{name}", pid=1000 + int(name[1:]), dead=dead, created=0)


def sessions(n: int = 3, **overrides: SessionFacts) -> dict[str, SessionFacts]:
    out = {f"s{i}": SessionFacts(f"s{i}", pane(f"s{i}"), state="sleeping") for i in range(1, n + 1)}
    out.update(overrides)
    return out


def facts(**kw: Any) -> Facts:
    base: dict[str, Any] = {"now": NOW, "reading": Reading(ram_percent=40), "spend_usd": 0.0,
                            "previous": Holds(), "sessions": sessions()}  # fmt: skip
    base.update(kw)
    return Facts(**base)


def task(id: int, status: str = "queued", session: str | None = None, priority: str = "normal", **kw: Any) -> Task:
    return Task(id=id, title=f"task {id}", status=status, session=session, priority=priority,
                created=f"2026-11-24T0{id % 10}:00:00.000Z", **kw)  # fmt: skip


# -- holds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ram", "disk", "was_closed", "closed"),
    [
        (84.9, 50, False, False),
        (85.0, 50, False, True),  # at the limit
        (82.0, 50, True, True),  # closed, and not yet below 85 - 5
        (80.0, 50, True, True),
        (79.9, 50, True, False),  # lets go below the hysteresis
        (82.0, 50, False, False),  # the same reading with no hold holds nothing
        (40.0, 1.5, False, True),  # free disk under the 2 GB floor
        (40.0, 2.5, True, True),  # ... and lets go only above 2 + 1 GB
        (40.0, 3.1, True, False),
    ],
)
def test_the_resource_hold_starts_at_the_limit_and_lets_go_past_the_hysteresis(
    ram: float, disk: float, was_closed: bool, closed: bool
) -> None:
    reason = resource_hold(Reading(ram_percent=ram, disk_free_gb=disk), Settings().scheduler, was_closed)
    assert (reason is not None) == closed


def test_a_high_ram_reading_holds_every_session_and_no_task_is_assigned() -> None:
    plan = decide(facts(reading=Reading(ram_percent=91), tasks=(task(1),)), settings())
    assert "RAM 91%" in plan.holds.closed["resources"]
    assert plan.assign == ()
    assert (plan.holds.hold("s1") or "").startswith("new cycles held back: resources: RAM 91%")
    assert [a.key for a in plan.alerts] == ["resources:closed"]
    again = decide(facts(reading=Reading(ram_percent=91), previous=plan.holds, tasks=(task(1),)), settings())
    assert again.alerts == ()  # one alert when the hold starts, not one per tick


@pytest.mark.parametrize(
    ("spent", "degrade", "state", "held", "agent"),
    [
        (0.0, "sessions", "ok", [], None),
        (15.99, "sessions", "ok", [], None),
        (16.0, "sessions", "degraded", ["s3"], None),  # 80 % of $20; two sessions keep working
        (16.0, "model", "degraded", [], "cheap"),
        (19.0, "both", "degraded", ["s3"], "cheap"),
        (20.0, "both", "closed", [], None),
        (35.0, "sessions", "closed", [], None),
    ],
)
def test_the_budget_degrades_at_the_soft_share_and_closes_at_the_daily_budget(
    spent: float, degrade: str, state: str, held: list[str], agent: str | None
) -> None:
    cfg = settings(budget={"daily_usd": 20, "degrade": degrade}).budget
    verdict = decide_budget(spent, cfg, ("s1", "s2", "s3"))
    assert (verdict.state, sorted(verdict.held), verdict.agent) == (state, held, agent)


def test_budget_holds_stand_only_on_their_day_so_they_reset_at_midnight() -> None:
    conf = settings(budget={"daily_usd": 10, "degrade": "both", "degraded_sessions": 1})
    closed = decide(facts(spend_usd=10.0), conf).holds
    assert closed.closed == {"budget": "spent $10.00 of $10.00 today"} and closed.day == TODAY
    degraded = decide(facts(spend_usd=9.0), conf).holds
    assert degraded.sessions.keys() == {"s2", "s3"} and degraded.agent == "cheap"
    tomorrow = "2026-11-25"
    assert closed.on(tomorrow).hold("s1") is None
    assert degraded.on(tomorrow).hold("s3") is None and degraded.on(tomorrow).agent is None
    both = Holds(closed={"resources": "RAM 95%", "budget": "spent"}, day=TODAY)
    assert both.on(tomorrow).closed == {"resources": "RAM 95%"}  # resources are not the budget's
    # After midnight the spend since midnight is 0: the next tick opens everything.
    fresh = decide(facts(now=NOW + timedelta(days=1), spend_usd=0.0, previous=closed), conf)
    assert fresh.holds.closed == {} and fresh.holds.sessions == {} and fresh.alerts == ()


def test_budget_alerts_fire_once_per_transition() -> None:
    conf = settings(budget={"daily_usd": 10})
    soft = decide(facts(spend_usd=8.5), conf)
    assert [a.key for a in soft.alerts] == [f"budget:degraded:{TODAY}"]
    assert "1 session(s) wait" in soft.alerts[0].message
    assert decide(facts(spend_usd=8.6, previous=soft.holds), conf).alerts == ()
    hard = decide(facts(spend_usd=10.2, previous=soft.holds), conf)
    assert [a.key for a in hard.alerts] == [f"budget:closed:{TODAY}"]
    assert hold_alerts(hard.holds, hard.holds, hard.budget) == []


@pytest.mark.parametrize(
    ("agent", "budget", "expected"),
    [
        (["claude", "-p", "--model", "sonnet", "--output-format", "json"], {},
         ["claude", "-p", "--model", "haiku", "--output-format", "json"]),
        (["claude", "-p", "--model=opus"], {"cheap_model": "sonnet"}, ["claude", "-p", "--model=sonnet"]),
        (["codex", "exec"], {}, ["codex", "exec", "--model", "haiku"]),
        (["claude", "-p"], {"cheap_command": ["my-agent", "--cheap"]}, ["my-agent", "--cheap"]),
    ],
)  # fmt: skip
def test_the_cheaper_agent_swaps_the_model_or_is_configured_whole(
    agent: list[str], budget: dict[str, Any], expected: list[str]
) -> None:
    conf = settings(agent={"command": agent, "timeout_s": 77}, budget=budget)
    assert cheap_agent_command(conf) == expected
    assert agent_spec(conf, "cheap").timeout_s == 77
    assert agent_spec(conf, None) is conf.agent


# -- sessions ------------------------------------------------------------------------


def test_missing_sessions_are_started_and_dead_ones_restarted() -> None:
    plan = decide(facts(sessions=sessions(s1=SessionFacts("s1", None), s2=SessionFacts("s2", pane("s2", dead=True)))),
                  settings())  # fmt: skip
    assert plan.start == ("s1", "s2") and plan.stop == ("s2",)
    assert plan.actions()[:2] == ["start s1: no tmux session", "restart s2: its loop has ended"]


def test_sessions_beyond_factory_sessions_are_stopped_and_their_tasks_requeued() -> None:
    plan = decide(facts(strays=("s4", "s5"), tasks=(task(1, "in_progress", "s5"),)), settings())
    assert plan.stop == ("s4", "s5") and plan.start == ()
    assert plan.requeue == ((1, "s5", "session s5 is not configured"),)


def test_a_stalled_cycle_restarts_its_session_and_requeues_its_task() -> None:
    old = format_ts(NOW - timedelta(hours=3))
    recent = format_ts(NOW - timedelta(minutes=10))
    stalled = sessions(
        s1=SessionFacts("s1", pane("s1"), state="cycle", pid_alive=True, cycle_started=old),
        s2=SessionFacts("s2", pane("s2"), state="cycle", pid_alive=True, cycle_started=recent),
    )
    tasks = (task(1, "in_progress", "s1"), task(2, "in_progress", "s2"))
    plan = decide(facts(sessions=stalled, tasks=tasks), settings())
    assert plan.stop == ("s1",) and plan.start == ("s1",)
    assert plan.requeue == ((1, "s1", "session s1 stalled"),)


def test_the_task_of_a_dead_session_is_requeued_but_a_cycle_run_by_hand_is_left_alone() -> None:
    by_hand = SessionFacts("s1", None, state="cycle", pid_alive=True, cycle_started=format_ts(NOW))
    gone = SessionFacts("s2", None, state="idle")
    died = SessionFacts("s3", pane("s3"), state="cycle", pid_alive=False, cycle_started=format_ts(NOW))
    tasks = (task(1, "in_progress", "s1"), task(2, "assigned", "s2"), task(3, "in_progress", "s3"))
    plan = decide(facts(sessions=sessions(s1=by_hand, s2=gone, s3=died), tasks=tasks), settings())
    assert plan.start == ("s2",)
    assert plan.requeue == ((2, "s2", "session s2 was not running"), (3, "s3", "the cycle of s3 died"))


def test_when_tmux_cannot_be_asked_sessions_and_tasks_are_left_alone_but_holds_still_decided() -> None:
    plan = decide(facts(reading=Reading(ram_percent=95), sessions=sessions(s1=SessionFacts("s1", None)),
                        tasks=(task(1),), tmux_error="tmux: not found"), settings())  # fmt: skip
    assert plan.start == () and plan.assign == () and "resources" in plan.holds.closed


# -- tasks ---------------------------------------------------------------------------


def test_idle_sessions_get_the_highest_priority_oldest_task_and_reservations_hold() -> None:
    tasks = (
        task(1, priority="low"),
        task(2, priority="urgent", session="s2"),  # reserved for s2, which is busy
        task(3, priority="high", session="s3"),  # reserved for s3
        task(4, priority="high"),
        task(5, "in_progress", "s2"),
    )
    plan = decide(facts(tasks=tasks), settings())
    assert plan.assign == ((4, "s1"), (3, "s3"))


def test_paused_held_and_mid_cycle_sessions_get_no_task() -> None:
    tasks = (task(1), task(2), task(3))
    paused = SessionFacts("s1", pane("s1"), paused=True)
    mid = SessionFacts("s2", pane("s2"), state="cycle", pid_alive=True, cycle_started=format_ts(NOW))
    conf = settings(budget={"daily_usd": 10, "degraded_sessions": 2})
    plan = decide(facts(sessions=sessions(s1=paused, s2=mid), tasks=tasks, spend_usd=9.0), conf)
    assert plan.holds.sessions.keys() == {"s3"}
    assert plan.assign == ()


def test_a_task_that_failed_n_times_is_parked_with_its_reasons_not_assigned() -> None:
    history = [{"ts": "t", "status": "requeued", "note": f"checks got worse: try {i}"} for i in range(1, 4)]
    hopeless = task(1, priority="urgent", attempts=3, history=history)
    plan = decide(facts(tasks=(hopeless, task(2))), settings(scheduler={"max_task_failures": 3}))
    (parked,) = plan.park
    assert parked[0] == 1 and parked[1].startswith("3 failed attempts: checks got worse: try 1;")
    assert plan.assign == ((2, "s1"),)


# -- PM2 -----------------------------------------------------------------------------


def test_the_plan_stops_crash_looping_apps_with_one_alert_each() -> None:
    from factoryctl.core.facts import App

    conf = settings(scheduler={"watchdog_restarts": 3, "watchdog_window_s": 600})
    first = decide(facts(apps=(App("factory-bot", 0, "online", 10),)), conf)
    assert first.stop_apps == () and first.app_history["factory-bot"][0][1] == 10
    later = NOW + timedelta(minutes=5)
    second = decide(facts(now=later, apps=(App("factory-bot", 0, "online", 14),), app_history=first.app_history), conf)
    assert second.stop_apps == (("factory-bot", "restarted 4 times in 300s (more than 3)"),)
    assert [a.key for a in second.alerts] == ["crashloop:factory-bot"]
    no_pm2 = decide(facts(apps=None, app_history=first.app_history), conf)
    assert no_pm2.app_history == first.app_history  # kept while PM2 cannot be asked


@pytest.mark.parametrize(
    ("problems", "alerted", "keys", "now_alerted"),
    [
        ((), "", [], ""),
        (("main's check tsc crashes: TS5023",), "", ["main:broken:abc123"], "abc123"),
        (("main's check tsc crashes: TS5023",), "abc123", [], "abc123"),  # once per main commit
        ((), "abc123", [], ""),  # sound again: the next breakage alerts again
    ],
)
def test_a_broken_main_is_alerted_once_per_commit(
    problems: tuple[str, ...], alerted: str, keys: list[str], now_alerted: str
) -> None:
    plan = decide(facts(main_commit="abc123", main_problems=problems, main_alerted=alerted), Settings())
    assert [a.key for a in plan.alerts if a.key.startswith("main:")] == keys
    assert plan.main_alerted == now_alerted


def test_records_that_do_not_validate_are_alerted() -> None:
    plan = decide(facts(bad_records=("tasks.json task 3: field 'id' must be int, not str",)), Settings())
    assert [a.key for a in plan.alerts] == ["state:bad-record"]
