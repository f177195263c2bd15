"""The scheduler's parts on their own: the watchdog's rule, the tmux/PM2 parsers, alerts, task moves."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from factoryctl.adapters.pm2 import own_app, parse_jlist
from factoryctl.adapters.tmux import parse_panes, socket_args
from factoryctl.core.clock import format_ts
from factoryctl.core.facts import App
from factoryctl.core.records import Alert, Holds
from factoryctl.rules.watchdog import watch
from factoryctl.state.alerts import Alerts
from factoryctl.state.eventlog import EventFilter, EventLog
from factoryctl.state.holds import read_holds, write_holds
from factoryctl.state.tasks import TaskQueue
from tests.helpers import FakeClock

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


# -- watchdog ------------------------------------------------------------------------


def ago(seconds: float) -> str:
    return format_ts(NOW - timedelta(seconds=seconds))


@pytest.mark.parametrize(
    ("app", "history", "stopped"),
    [
        (App("a", 0, "online", 6), [(ago(60), 0)], True),  # rose by 6 > 5 within the window
        (App("a", 0, "online", 5), [(ago(60), 0)], False),  # by exactly K: not yet
        (App("a", 0, "online", 6), [(ago(1000), 0)], False),  # the rise is older than the window
        (App("a", 0, "online", 6), [(ago(1000), 0), (ago(600), 1)], False),
        (App("a", 0, "online", 50), [], False),  # first sight: no rise can be measured yet
        (App("a", 0, "online", 2), [(ago(60), 40)], False),  # counter went down (pm2 reset)
        (App("a", 0, "errored", 10), [(ago(60), 10)], True),  # PM2 gave up: stop it for good
        (App("a", 0, "stopped", 30), [(ago(60), 0)], False),  # already stopped
        (App("me", 0, "online", 30), [(ago(60), 0)], False),  # the scheduler itself
    ],
)
def test_the_watchdog_stops_apps_restarted_more_than_k_times_within_t_or_errored(
    app: App, history: list[tuple[str, int]], stopped: bool
) -> None:
    verdict = watch([app], {app.name: history}, NOW, max_restarts=5, window_s=900, skip=frozenset({"me"}))
    assert bool(verdict.stops) == stopped
    assert verdict.history[app.name][-1] == (format_ts(NOW), app.restarts)
    assert all(ts >= ago(900) for ts, _ in verdict.history[app.name])


def test_the_watchdog_forgets_apps_that_are_gone() -> None:
    verdict = watch([App("b", 1, "online", 0)], {"gone": [(ago(10), 3)]}, NOW, max_restarts=5, window_s=900)
    assert set(verdict.history) == {"b"}


# -- parsers -------------------------------------------------------------------------


def test_pm2_jlist_is_reduced_to_what_the_watchdog_needs() -> None:
    raw = [
        {"name": "factory-bot", "pm_id": 0, "pid": 4242,
         "pm2_env": {"status": "online", "restart_time": 7, "env": {"TELEGRAM_BOT_TOKEN": "secret"}}},
        {"name": "broken", "pm_id": 1, "pid": 0, "pm2_env": {"status": "errored", "restart_time": 15}},
        "junk",
    ]  # fmt: skip
    apps = parse_jlist(">>>> In-memory PM2 is out-of-date\n" + json.dumps(raw))
    assert apps == [App("factory-bot", 0, "online", 7, 4242), App("broken", 1, "errored", 15, 0)]
    assert parse_jlist("[]") == []


def test_own_app_is_read_from_pm2s_environment() -> None:
    assert own_app({"pm_id": "3", "name": "factory-scheduler"}) == "factory-scheduler"
    assert own_app({"name": "someone"}) is None


def test_tmux_panes_and_socket_arguments() -> None:
    text = "factory-s1\t101\t0\t1795499340\nfactory-s1\t102\t0\t1795499340\nfactory-s2\t0\t1\t1795499341\nbad line\n"
    panes = parse_panes(text)
    assert panes["factory-s1"].pid == 101 and panes["factory-s1"].alive
    assert not panes["factory-s2"].alive
    assert socket_args(None) == [] and socket_args("t1") == ["-L", "t1"] and socket_args("/tmp/s") == ["-S", "/tmp/s"]


# -- holds.json ----------------------------------------------------------------------


def test_holds_round_trip_and_a_damaged_file_means_no_holds(tmp_path: Path) -> None:
    path = tmp_path / "holds.json"
    assert read_holds(path) == Holds()
    holds = Holds(closed={"resources": "RAM 91%"}, sessions={"s3": "budget"}, agent="cheap", day="2026-11-24")
    write_holds(path, holds)
    assert read_holds(path) == holds
    assert json.loads(path.read_text())["closed"] == {"resources": "RAM 91%"}
    path.write_text('{"closed": {"budget": "x", "old": ""}, "sessions": [1]}')
    assert read_holds(path).closed == {"budget": "x"} and read_holds(path).sessions == {}
    path.write_text("{torn")
    assert read_holds(path) == Holds()


# -- alerts --------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.got: list[Alert] = []

    def notify(self, alert: Alert) -> None:
        self.got.append(alert)


class Broken:
    def notify(self, alert: Alert) -> None:
        raise RuntimeError("telegram is down")


def test_the_same_alert_key_is_not_repeated_within_an_hour(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    log = EventLog(tmp_path / "log.jsonl", clock=clock, secrets=())
    recorder = Recorder()
    alerts = Alerts(log, tmp_path / "locks", [Broken(), recorder])
    assert alerts.send(Alert("budget:closed", "budget reached", data={"spent": 20}))
    clock.now += timedelta(minutes=59)
    assert not alerts.send(Alert("budget:closed", "budget reached"))
    assert alerts.send(Alert("crashloop:bot", "bot crash-loops"))
    clock.now += timedelta(minutes=2)
    assert alerts.send(Alert("budget:closed", "budget reached"))
    events = log.tail(10, EventFilter(types=frozenset({"alert"})))
    assert [e.data["key"] for e in events] == ["budget:closed", "crashloop:bot", "budget:closed"]
    assert events[0].data == {"key": "budget:closed", "message": "budget reached", "spent": 20}
    assert [a.key for a in recorder.got] == ["budget:closed", "crashloop:bot", "budget:closed"]


# -- task moves ----------------------------------------------------------------------


def test_assign_release_and_park_are_compare_and_swap(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "log.jsonl", clock=FakeClock(NOW), secrets=())
    queue = TaskQueue.at(tmp_path / "tasks.json", log)
    one, two = queue.add("one"), queue.add("two", session="s2")
    assert queue.assign(two.id, "s1") is None  # reserved for s2
    assert queue.assign(one.id, "s1", still_idle=lambda s: False) is None  # its loop started a cycle meanwhile
    assigned = queue.assign(one.id, "s1")
    assert assigned is not None and (assigned.status, assigned.session) == ("assigned", "s1")
    assert queue.assign(one.id, "s1") is None  # no longer queued
    assert queue.claim("s1") == queue.get(one.id)  # the cycle picks up what the scheduler assigned
    assert queue.release(one.id, "s2", "not its session") is None
    released = queue.release(one.id, "s1", "session s1 died")
    assert released is not None and (released.status, released.session) == ("queued", None)
    assert released.history[-1]["status"] == "requeued" and released.history[-1]["note"] == "session s1 died"
    parked = queue.park(two.id, "3 failed attempts: ...")
    assert parked is not None and (parked.status, parked.session) == ("parked", "s2")
    assert queue.park(two.id, "again") is None
    actions = [e.data["action"] for e in log.tail(20, EventFilter(types=frozenset({"task"})))]
    assert actions == ["added", "added", "assigned", "requeued", "parked"]
