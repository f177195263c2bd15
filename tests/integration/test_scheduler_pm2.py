"""The crash-loop watchdog against a real PM2 daemon (its own PM2_HOME, killed after the test)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from factoryctl.adapters.pm2 import Pm2
from factoryctl.adapters.tmux import Tmux
from factoryctl.core.facts import Reading
from factoryctl.jobs.scheduler import Scheduler
from factoryctl.jobs.sessions import Sessions
from factoryctl.state.eventlog import EventFilter
from tests.factories import make_factory
from tests.helpers import wait_for

pytestmark = pytest.mark.skipif(shutil.which("pm2") is None, reason="pm2 is not installed (npm i -g pm2)")

# Lives 1 s (longer than min_uptime), then crashes: PM2's own cap never counts it.
LATE_CRASH = "import time, sys; time.sleep(1.0); sys.exit(3)"
# Dies at once: PM2 gives up after max_restarts and marks it errored.
EARLY_CRASH = "import sys; sys.exit(4)"


class Pm2Home:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.env = {**os.environ, "PM2_HOME": str(path)}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["pm2", *args], env=self.env, capture_output=True, text=True, timeout=60, check=False)

    def app(self, name: str) -> dict[str, object]:
        apps = {a["name"]: a["pm2_env"] for a in json.loads(self.cli("jlist").stdout)}
        env = apps[name]
        return {"status": env["status"], "restarts": env["restart_time"]}


@pytest.fixture
def pm2_home() -> Iterator[Pm2Home]:
    # PM2 puts unix sockets in PM2_HOME: keep the path short (tmp_path can be too long).
    home = Pm2Home(Path(tempfile.mkdtemp(prefix="pm2-")))
    try:
        yield home
    finally:
        home.cli("kill")
        shutil.rmtree(home.path, ignore_errors=True)


def start_apps(pm2: Pm2Home, tmp_path: Path) -> None:
    common = {"script": "/usr/bin/python3", "interpreter": "none", "autorestart": True, "min_uptime": 500,
              "max_restarts": 3}  # fmt: skip
    # (PM2 7 shows an app it gave up on as "waiting restart", not "errored", when it has a restart_delay.)
    apps = [{**common, "name": "late-crash", "args": ["-c", LATE_CRASH], "restart_delay": 100},
            {**common, "name": "early-crash", "args": ["-c", EARLY_CRASH]}]  # fmt: skip
    apps.append({"name": "healthy", "script": "/bin/sleep", "args": ["600"], "interpreter": "none"})
    eco = tmp_path / "ecosystem.json"
    eco.write_text(json.dumps({"apps": apps}))
    done = pm2.cli("start", str(eco))
    assert done.returncode == 0, done.stderr


def test_a_pm2_app_that_crashes_after_min_uptime_is_stopped_within_two_ticks_with_one_alert(
    tmp_path: Path, pm2_home: Pm2Home
) -> None:
    factory = make_factory(tmp_path, sessions=1, checks="",
                           extra="[scheduler]\nwatchdog_restarts = 2\nwatchdog_window_s = 120\n")  # fmt: skip
    (factory.home / "state").mkdir(exist_ok=True)
    (factory.home / "state" / "paused").write_text("")
    ctx = factory.ctx()
    tmux = Tmux(f"factory-test-pm2-{os.getpid()}")
    sched = Scheduler(ctx, sessions=Sessions(ctx, tmux), pm2=Pm2(environ=pm2_home.env),
                      reading=lambda: Reading(ram_percent=40))  # fmt: skip
    try:
        start_apps(pm2_home, tmp_path)
        first = sched.tick()  # tick 1: the restart counts are noted; an errored app is stopped at once
        assert [a for a in first.actions if "PM2" in a] in (
            [], ["stop PM2 app early-crash: is errored (PM2 gave up restarting it)"])  # fmt: skip
        # Tick 2 stops it once its count rose by more than 2 over what tick 1 saw (a start is ~1.1 s).
        seen = min(n for _, n in sched.state.read()["apps"]["late-crash"])
        restarted = lambda: int(str(pm2_home.app("late-crash")["restarts"])) > max(3, seen + 2)  # noqa: E731
        wait_for(restarted, 60, "late-crash restarted more often than the watchdog allows")
        # PM2 itself has not stopped it: each start lived longer than min_uptime.
        assert pm2_home.app("late-crash")["status"] != "errored"
        second = sched.tick()  # tick 2: caught
        stopped = sorted(a for tick in (first, second) for a in tick.actions if a.startswith("stop PM2 app"))
        assert len(stopped) == 2 and "stop PM2 app early-crash: is errored" in stopped[0]
        assert stopped[1].startswith("stop PM2 app late-crash: restarted")
        assert pm2_home.app("late-crash")["status"] == "stopped"
        assert pm2_home.app("early-crash")["status"] == "stopped"
        assert pm2_home.app("healthy")["status"] == "online"
        for _ in range(2):  # later ticks: nothing more to do, and no second alert
            time.sleep(1)
            later = sched.tick()
            assert not [a for a in later.actions if "PM2" in a] and later.alerts == []
        alerts = ctx.log.tail(100, EventFilter(types=frozenset({"alert"})))
        assert sorted(a.data["key"] for a in alerts) == ["crashloop:early-crash", "crashloop:late-crash"]
        assert pm2_home.app("late-crash")["status"] == "stopped"
    finally:
        tmux.kill_server()


def test_without_a_pm2_daemon_the_watchdog_starts_none(tmp_path: Path) -> None:
    home = tmp_path / "pm2-none"
    pm2 = Pm2(environ={**os.environ, "PM2_HOME": str(home)})
    assert pm2.apps() is None
    assert not (home / "pm2.pid").exists()
