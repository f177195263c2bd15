"""The agents' tmux sessions: `factory-sN` running `factoryctl loop sN`, one per session.

They live on the factory's own tmux server (a socket per FACTORY_HOME), so the names
belong to this factory alone and `sessions list` shows the attach command with it.

Shared by `factoryctl sessions ...` and the scheduler. A session is stopped the way the
deploy's layout script does it: SIGTERM to its loop (which ends its cycle cleanly and
leaves no half-made branch), then the tmux session is killed after `scheduler.stop_wait_s`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from factoryctl.adapters.tmux import Tmux
from factoryctl.core.clock import age_s
from factoryctl.core.errors import ToolMissing
from factoryctl.core.facts import Pane
from factoryctl.core.fleet import host_of, is_session_name, session_order
from factoryctl.core.records import ACTIVE
from factoryctl.jobs.context import Context
from factoryctl.rules.lost import lost_sessions

PREFIX = "factory-"


def tmux_name(session: str) -> str:
    return f"{PREFIX}{session}"


def session_of(name: str) -> str | None:
    """The factory session a tmux session belongs to (`factory-s3` -> `s3`, `factory-w1-s3` -> `w1-s3`), else None."""
    session = name.removeprefix(PREFIX)
    return session if name.startswith(PREFIX) and is_session_name(session) else None


def factoryctl_path() -> str:
    """This installation's `factoryctl`: the console script next to the running Python."""
    sibling = Path(sys.executable).parent / "factoryctl"
    if sibling.exists():
        return str(sibling)
    found = shutil.which("factoryctl")
    if found is None:
        raise ToolMissing("factoryctl: not found next to the Python running it, nor on PATH")
    return found


def heartbeat_age(entry: Mapping[str, Any], now: datetime) -> float | None:
    age = age_s(entry.get("heartbeat"), now)
    return None if age is None else round(age, 1)


class Sessions:
    def __init__(self, ctx: Context, tmux: Tmux | None = None, *, poll_s: float = 0.2) -> None:
        self.ctx = ctx
        self.tmux = tmux or Tmux.from_env(default=ctx.paths.tmux_socket)
        self.poll_s = poll_s

    def panes(self) -> dict[str, Pane]:
        """The factory's tmux sessions by session name (`s1`), configured or not."""
        out = {}
        for name, pane in self.tmux.panes().items():
            session = session_of(name)
            if session is not None:
                out[session] = pane
        return out

    def loop_argv(self, session: str) -> list[str]:
        return [*self.ctx.settings.scheduler.loop_wrapper, factoryctl_path(), "loop", session]

    def start(self, session: str) -> bool:
        """Start the session's loop unless its tmux session exists; True if it was started."""
        home = self.ctx.paths.home
        return self.tmux.new_session(
            tmux_name(session), self.loop_argv(session), cwd=home, env={"FACTORY_HOME": str(home)}
        )

    def stop(self, sessions: Iterable[str], wait_s: float | None = None) -> list[str]:
        """SIGTERM each loop, wait for them to end (up to wait_s), then kill what is left."""
        wait = self.ctx.settings.scheduler.stop_wait_s if wait_s is None else wait_s
        panes = self.panes()
        targets = [s for s in sessions if s in panes]
        for session in targets:
            if panes[session].alive:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(panes[session].pid, signal.SIGTERM)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(s in self.panes() for s in targets):
            time.sleep(self.poll_s)
        left = self.panes()
        for session in targets:
            if session in left:
                self.tmux.kill_session(tmux_name(session))
        return targets

    def attach_command(self, session: str) -> list[str]:
        return self.tmux.attach_argv(tmux_name(session))

    def overview(self) -> list[dict[str, Any]]:
        """One row per session (configured ones, then strays): tmux, loop state, task, times."""
        ctx = self.ctx
        now = ctx.clock()
        panes = self.panes()
        state = ctx.heartbeats().read()
        pauses = ctx.pauses()
        fleet = ctx.settings.fleet
        lost = lost_sessions(state, ctx.settings.session_names, now, fleet.lost_after_s) if fleet.workers else {}
        local = ctx.settings.local_sessions
        tasks = {t.session: t for t in ctx.tasks().all() if t.session and t.status in ACTIVE}
        names = list(ctx.settings.session_names)
        names += sorted((s for s in panes if s not in names), key=session_order)
        rows = []
        for name in names:
            pane = panes.get(name)
            entry = state.get(name, {})
            task = tasks.get(name)
            pause = pauses.why(name)
            last = entry.get("last_cycle") or {}
            rows.append({
                "name": name,
                "tmux": tmux_name(name),
                "configured": name in ctx.settings.session_names,
                "host": host_of(name),
                "running": (f"on {host_of(name)}" if name not in local and pane is None
                            else "missing" if pane is None else ("running" if pane.alive else "dead")),
                "lost": lost.get(name),
                "state": entry.get("state", "unknown"),
                "waiting": pause.split(": ")[0] if pause else ctx.holds_of(name).hold(name),
                "task": None if task is None else {"id": task.id, "title": task.title, "status": task.status},
                "cycle_started": entry.get("cycle_started"),
                "doing": entry.get("doing") if entry.get("state") == "cycle" else None,
                "last_cycle_ended": last.get("ended"),
                "last_verdict": last.get("verdict"),
                "heartbeat_age_s": heartbeat_age(entry, now),
                "attach": shlex.join(self.attach_command(name)),
            })  # fmt: skip
        return rows
