"""The agents' tmux sessions with real tmux (one private server per test) and real loops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from factoryctl.adapters.pm2 import Pm2
from factoryctl.adapters.tmux import Tmux
from factoryctl.core.facts import Reading
from factoryctl.jobs.context import Context
from factoryctl.jobs.loop import pause_reason
from factoryctl.jobs.scheduler import Scheduler
from factoryctl.state.locks import job_lock
from tests.factories import Factory, make_factory
from tests.helpers import run_cli, tool, wait_for


def paused_factory(tmp_path: Path, sessions: int) -> Factory:
    """A factory whose loops only wait (the global pause flag): sessions without cycles."""
    factory = make_factory(tmp_path, sessions=sessions, checks="")
    flag = factory.home / "state" / "paused"
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text("tests\n")
    return factory


def scheduler(ctx: Context, tmp_path: Path, ram: float = 40.0) -> Scheduler:
    no_pm2 = Pm2(environ={"PM2_HOME": str(tmp_path / "no-pm2"), "PATH": "/usr/bin:/bin"})
    return Scheduler(ctx, pm2=no_pm2, reading=lambda: Reading(ram_percent=ram))


def loop_of(pid: int) -> str:
    return " ".join(psutil.Process(pid).cmdline()[-2:])


def test_the_scheduler_creates_missing_sessions_revives_killed_ones_and_stops_extras(
    tmp_path: Path, tmux: Tmux
) -> None:
    factory = paused_factory(tmp_path, sessions=2)
    ctx = factory.ctx()
    report = scheduler(ctx, tmp_path).tick()
    assert report.actions == ["start s1: no tmux session", "start s2: no tmux session"]
    panes = tmux.panes()
    assert sorted(panes) == ["factory-s1", "factory-s2"]
    # A pane's process is a fork of the tmux server until it execs, and the server keeps the
    # command line of the client that started it (here, s1's): wait for the exec.
    wait_for(lambda: [loop_of(panes[f"factory-s{i}"].pid) for i in (1, 2)] == ["loop s1", "loop s2"],
             what="each pane running its own session's loop")  # fmt: skip
    state = ctx.heartbeats()
    wait_for(lambda: {s: e.get("state") for s, e in state.read().items()} == {"s1": "paused", "s2": "paused"},
             what="both loops waiting on the pause flag")  # fmt: skip
    assert state.read()["s1"]["waiting"] == "paused (paused): tests"

    # A killed session comes back at the next tick; a healthy one is left alone.
    old_s1 = panes["factory-s1"].pid
    tmux.kill_session("factory-s2")
    report = scheduler(ctx, tmp_path).tick()
    assert report.actions == ["start s2: no tmux session"]
    assert tmux.panes()["factory-s1"].pid == old_s1 and "factory-s2" in tmux.panes()
    new_s2 = tmux.panes()["factory-s2"].pid
    wait_for(lambda: state.read()["s2"].get("pid") == new_s2, what="the revived loop's heartbeat")

    # Never more than factory.sessions: a stray factory-s3 and, after a config change, s2 are stopped.
    tmux.new_session("factory-s3", ["sleep", "300"], cwd=tmp_path, env={})
    config = factory.home / "factory.toml"
    config.write_text(config.read_text().replace("sessions = 2", "sessions = 1"))
    ctx = factory.ctx()
    report = scheduler(ctx, tmp_path).tick()
    assert report.actions == ["stop s2: not configured (factory.sessions = 1)",
                              "stop s3: not configured (factory.sessions = 1)"]  # fmt: skip
    assert sorted(tmux.panes()) == ["factory-s1"]
    # The loop of s2 ended cleanly on SIGTERM (it wrote "stopped"), it was not just killed.
    assert ctx.heartbeats().read()["s2"]["state"] == "stopped"
    quiet = scheduler(ctx, tmp_path).tick()
    assert quiet.actions == [] and not quiet.changed


def test_a_task_of_a_session_that_died_is_requeued(tmp_path: Path, tmux: Tmux) -> None:
    factory = paused_factory(tmp_path, sessions=1)
    ctx = factory.ctx()
    task = ctx.tasks().add("Something")
    ctx.tasks().claim("s1")
    with ctx.tasks().store.update() as doc:
        doc["tasks"][0]["status"] = "in_progress"
    report = scheduler(ctx, tmp_path).tick()
    assert f"requeue task #{task.id} of s1: session s1 was not running" in report.actions
    assert ctx.tasks().get(task.id).status == "queued"


def test_sessions_commands_list_start_stop_restart_attach(tmp_path: Path, tmux: Tmux) -> None:
    factory = paused_factory(tmp_path, sessions=2)
    home = factory.home
    started = run_cli("sessions", "start", home=home)
    assert started.returncode == 0, started.stderr
    assert started.stdout.splitlines() == ["s1: started", "s2: started"]
    assert run_cli("sessions", "start", "s1", home=home).stdout.strip() == "s1: already running"
    wait_for(lambda: len(json.loads((home / "state" / "sessions.json").read_text() or "{}")) == 2
             if (home / "state" / "sessions.json").exists() else False, what="heartbeats")  # fmt: skip
    rows = json.loads(run_cli("sessions", "list", "--json", home=home).stdout)
    assert [(r["name"], r["running"], r["state"]) for r in rows] == [("s1", "running", "paused"),
                                                                    ("s2", "running", "paused")]  # fmt: skip
    assert rows[0]["waiting"] == "paused (paused)" and rows[0]["heartbeat_age_s"] is not None
    assert rows[0]["attach"] == f"tmux -L {tmux.socket} attach-session -t =factory-s1"
    text = run_cli("sessions", "list", home=home).stdout
    assert "s1   tmux running    paused" in text and "attach: tmux -L" in text
    attach = run_cli("sessions", "attach", "s2", "--print", home=home)
    assert attach.stdout.strip() == f"tmux -L {tmux.socket} attach-session -t =factory-s2"

    stopped = run_cli("sessions", "stop", "s2", home=home)
    assert stopped.returncode == 0 and stopped.stdout.startswith("stopped s2")
    assert sorted(tmux.panes()) == ["factory-s1"]
    old = tmux.panes()["factory-s1"].pid
    assert run_cli("sessions", "restart", "s1", home=home).stdout.strip() == "restarted s1"
    assert tmux.panes()["factory-s1"].pid != old
    bad = run_cli("sessions", "stop", "s9", home=home)
    assert bad.returncode == 2 and "unknown session 's9'" in bad.stderr


def test_pause_and_resume_one_session_or_the_factory(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=2, checks="")
    home = factory.home
    assert run_cli("pause", "s2", "-r", "looking at its worktree", home=home).returncode == 0
    assert (home / "state" / "paused.s2").read_text() == "looking at its worktree\n"
    ctx = factory.ctx()
    assert pause_reason(ctx, "s2") == "paused (paused.s2): looking at its worktree"
    assert pause_reason(ctx, "s1") is None
    assert run_cli("pause", home=home).stdout.startswith("paused the factory")
    assert pause_reason(ctx, "s1") == "paused (paused)"
    status = json.loads(run_cli("status", "--json", home=home).stdout)
    assert status["holds"]["paused"] == ["paused", "paused.s2"]
    assert run_cli("resume", home=home).stdout.strip() == "resumed the factory"
    assert run_cli("resume", "s2", home=home).stdout.strip() == "resumed s2"
    assert run_cli("resume", "s2", home=home).stdout.strip() == "s2 was not paused"
    assert pause_reason(ctx, "s2") is None


def test_the_scheduler_command_runs_one_tick_and_a_second_one_says_already_running(
    tmp_path: Path, tmux: Tmux, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PM2_HOME", str(tmp_path / "no-pm2"))  # never the machine's PM2 and its apps
    factory = paused_factory(tmp_path, sessions=1)
    env_home = factory.home
    once = run_cli("scheduler", "--once", home=env_home)
    assert once.returncode == 0, once.stderr
    assert "tick: holds: none" in once.stdout and "start s1: no tmux session" in once.stdout
    holds = json.loads((env_home / "state" / "holds.json").read_text())
    assert set(holds) >= {"closed", "sessions", "agent", "day", "resources", "budget"}
    as_json = json.loads(run_cli("scheduler", "--once", "--json", home=env_home).stdout)
    assert as_json["actions"] == [] and as_json["changed"] is False
    with job_lock(env_home / "state" / "locks", "scheduler"):
        busy = run_cli("scheduler", "--once", home=env_home)
    assert busy.returncode == 0 and "already running" in busy.stderr
    text = run_cli("status", home=env_home).stdout
    assert "holds:         none; paused: paused" in text and "budget:        ok" in text


def test_the_long_running_scheduler_ticks_until_sigterm(
    tmp_path: Path, tmux: Tmux, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PM2_HOME", str(tmp_path / "no-pm2"))
    factory = paused_factory(tmp_path, sessions=1)
    config = factory.home / "factory.toml"
    config.write_text(config.read_text() + "\n[scheduler]\ntick_s = 1\n")
    env = {**os.environ, "FACTORY_HOME": str(factory.home)}
    proc = subprocess.Popen([tool("factoryctl"), "scheduler"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    state = factory.home / "state" / "scheduler.json"
    ticks: set[str] = set()

    def ticked_three_times() -> bool:
        if state.exists():
            ticks.add(json.loads(state.read_text()).get("last_tick", ""))
        return len(ticks) >= 3

    try:
        wait_for(ticked_three_times, what="three ticks")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.count("tick: holds: none") >= 3 and "start s1: no tmux session" in out


def test_a_failing_tick_is_reported_and_alerted_once_and_the_scheduler_goes_on(tmp_path: Path, tmux: Tmux) -> None:
    factory = paused_factory(tmp_path, sessions=1)
    ctx = factory.ctx()
    lines: list[str] = []

    def broken_reading() -> Reading:
        raise RuntimeError("psutil exploded")

    no_pm2 = Pm2(environ={"PM2_HOME": str(tmp_path / "no-pm2"), "PATH": "/usr/bin:/bin"})
    sched = Scheduler(ctx, pm2=no_pm2, reading=broken_reading, out=lines.append)
    assert sched.run(once=True) == 0
    assert sched.run(once=True) == 0
    assert "tick failed: psutil exploded" in lines[0]
    alerts = [e.data for e in ctx.log.tail(10) if e.type == "alert"]
    assert [a["key"] for a in alerts] == ["scheduler:error"]
    assert sum("ALERT [scheduler:error]" in line for line in lines) == 1  # the second failure is not re-alerted
