"""The PM2 adapter: the app list (`pm2 jlist`) and stopping an app.

PM2 starts its daemon as a side effect of almost any command (`jlist` included), so the
adapter first checks that a daemon runs under PM2_HOME and otherwise reports no apps:
the scheduler never starts a PM2 daemon of its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from factoryctl.adapters.machine import pid_alive
from factoryctl.adapters.runner import Completed, run
from factoryctl.core.defaults import PM2_TIMEOUT_S
from factoryctl.core.errors import FactoryError
from factoryctl.core.facts import App


def parse_jlist(text: str) -> list[App]:
    """`pm2 jlist` output as apps; anything that is not an app is skipped.

    Only the fields the watchdog needs are kept: the rest holds the apps' environment.
    """
    # PM2 may print a notice (e.g. "In-memory PM2 is out-of-date") before the list.
    start = text.find("\n[") + 1 if not text.lstrip().startswith("[") else 0
    try:
        raw = json.loads(text[start:])
    except ValueError:
        raise FactoryError(f"pm2 jlist printed no JSON list: {text.strip()[:120]!r}") from None
    if not isinstance(raw, list):
        raise FactoryError("pm2 jlist printed no JSON list")
    apps = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        env = item.get("pm2_env")
        env = env if isinstance(env, dict) else {}
        name = item.get("name", env.get("name"))
        if not isinstance(name, str):
            continue
        apps.append(App(name=name, pm_id=_int(item.get("pm_id", env.get("pm_id"))), status=str(env.get("status", "?")),
                        restarts=_int(env.get("restart_time")), pid=_int(item.get("pid"))))  # fmt: skip
    return apps


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def pm2_home(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    value = env.get("PM2_HOME", "").strip()
    return Path(value) if value else Path(env.get("HOME", str(Path.home()))) / ".pm2"


def own_app(environ: Mapping[str, str] | None = None) -> str | None:
    """The PM2 app this process runs as (PM2 puts `pm_id` and `name` in its apps' environment)."""
    env = os.environ if environ is None else environ
    return env.get("name") if "pm_id" in env else None


class Pm2:
    def __init__(
        self,
        *,
        runner: Callable[..., Completed] = run,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.runner = runner
        self.environ = dict(os.environ if environ is None else environ)
        self.home = pm2_home(self.environ)

    def daemon_running(self) -> bool:
        try:
            pid = int((self.home / "pm2.pid").read_text().strip())
        except (OSError, ValueError):
            return False
        return pid_alive(pid)

    def _run(self, *args: str) -> Completed:
        return self.runner(["pm2", *args], timeout=PM2_TIMEOUT_S, env=self.environ)

    def apps(self) -> list[App] | None:
        """The apps, or None when no PM2 daemon runs here."""
        if not self.daemon_running():
            return None
        done = self._run("jlist")
        if not done.ok:
            raise FactoryError(f"pm2 jlist failed: {done.tail(200)}")
        return parse_jlist(done.stdout)

    def stop(self, name: str) -> None:
        done = self._run("stop", name)
        if not done.ok:
            raise FactoryError(f"pm2 stop {name} failed: {done.tail(200)}")
