"""Start `factoryctl review|standup|doctor` in the background for an HTTP trigger.

A job that is running (started here, by cron or by a person) is not started twice: the
job's own lock is probed (held elsewhere: AlreadyRunning), and a job this server started
counts as running until its process has ended (it may not have taken its lock yet).
The child is `python -m factoryctl NAME` (argv, no shell) through the one runner, with
a timeout that kills its process group; what it printed goes to `logs/trigger-NAME.log`,
and its end is a `trigger` event like its start.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from factoryctl.adapters.runner import Completed, run
from factoryctl.core.clock import format_ts
from factoryctl.core.defaults import HOME_ENV, PRIVATE_FILE_MODE, TRIGGER_JOB_TIMEOUT_S
from factoryctl.core.errors import AlreadyRunning, FactoryError
from factoryctl.jobs.context import Context

JOBS = ("review", "standup", "doctor")


class JobUnavailable(FactoryError):
    """This runtime has no such command yet (e.g. standup before it lands)."""


Runner = Callable[..., Completed]


@dataclass
class Triggers:
    """The background jobs one server started, and how to start another."""

    ctx: Context
    available: Collection[str]  # the commands this factoryctl has
    runner: Runner = run
    timeout_s: float = TRIGGER_JOB_TIMEOUT_S
    _running: dict[str, threading.Thread] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def argv(self, job: str) -> list[str]:
        return [sys.executable, "-m", "factoryctl", job]

    def start(self, job: str) -> None:
        """Start `job` now, or raise AlreadyRunning / JobUnavailable."""
        if job not in JOBS:
            raise JobUnavailable(f"no job {job!r}; triggers start {', '.join(JOBS)}")
        if job not in self.available:
            raise JobUnavailable(f"this factoryctl has no `{job}` command yet; nothing was started")
        with self._guard:
            mine = self._running.get(job)
            if mine is not None and mine.is_alive():
                raise AlreadyRunning(f"{job} is already running (started by this server)")
            with self.ctx.job_lock(job):
                pass  # free now; held elsewhere it raises AlreadyRunning
            thread = threading.Thread(target=self._run, args=(job,), name=f"trigger-{job}", daemon=True)
            self._running[job] = thread
            thread.start()

    def running(self, job: str) -> bool:
        thread = self._running.get(job)
        return thread is not None and thread.is_alive()

    def wait(self, job: str, timeout: float | None = None) -> None:
        thread = self._running.get(job)
        if thread is not None:
            thread.join(timeout)

    def _run(self, job: str) -> None:
        env = {**os.environ, HOME_ENV: str(self.ctx.paths.home)}
        try:
            done = self.runner(self.argv(job), cwd=self.ctx.paths.home, timeout=self.timeout_s, env=env)
            outcome = "timed_out" if done.timed_out else ("finished" if done.returncode == 0 else "failed")
            self._keep_output(job, done)
            data = {"endpoint": f"/trigger/{job}", "job": job, "outcome": outcome, "exit_code": done.returncode,
                    "duration_s": round(done.duration_s, 3)}  # fmt: skip
        except FactoryError as exc:
            data = {"endpoint": f"/trigger/{job}", "job": job, "outcome": "failed", "reason": str(exc)[:300]}
        self.ctx.log.append("trigger", data=data)

    def _keep_output(self, job: str, done: Completed) -> None:
        logs = self.ctx.paths.logs_dir
        logs.mkdir(parents=True, exist_ok=True)
        fd = os.open(logs / f"trigger-{job}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
        os.fchmod(fd, PRIVATE_FILE_MODE)  # also a file an older version made world-readable
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(f"--- {format_ts(self.ctx.clock())} exit {done.returncode}\n{done.stdout}{done.stderr}\n")
