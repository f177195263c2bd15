"""Start `factoryctl review|standup|doctor` in the background: one launcher for the HTTP triggers and the bot.

A job that is running (started here, by cron or by a person) is not started twice: the
job's own lock is probed (held elsewhere: AlreadyRunning), and a job this launcher started
counts as running until its process has ended (it may not have taken its lock yet).
The child is `python -m factoryctl NAME` (argv, no shell) through the one runner, with
a timeout that kills its process group; what it printed goes to `logs/trigger-NAME.log`.
These are the only jobs run as a child `factoryctl`: each is a whole job under its own
lock and timeout, killed with its children, whoever started it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from factoryctl.adapters.runner import Completed, run
from factoryctl.core.clock import format_ts
from factoryctl.core.defaults import HOME_ENV, PRIVATE_FILE_MODE, TRIGGER_JOB_TIMEOUT_S
from factoryctl.core.errors import AlreadyRunning, FactoryError
from factoryctl.jobs.context import Context

JOBS = ("review", "standup", "doctor")

Runner = Callable[..., Completed]
Ended = Callable[[Completed | FactoryError], None]


class UnknownJob(FactoryError):
    """Only the background jobs (`JOBS`) are started here."""


@dataclass
class Launched:
    """One background job: its thread, and how it ended (a Completed, or the FactoryError that stopped it)."""

    job: str
    thread: threading.Thread = field(init=False)
    ended: Completed | FactoryError | None = None

    def result(self, timeout: float | None = None) -> Completed:
        """Wait for the job's end; raise the FactoryError that stopped it."""
        self.thread.join(timeout)
        if isinstance(self.ended, FactoryError):
            raise self.ended
        if self.ended is None:
            raise FactoryError(f"{self.job} has not ended yet")
        return self.ended


@dataclass
class Launcher:
    """The background jobs one process (`serve` or the bot) started, and how to start another."""

    ctx: Context
    runner: Runner = run
    timeout_s: float = TRIGGER_JOB_TIMEOUT_S
    _running: dict[str, Launched] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def argv(self, job: str, *args: str) -> list[str]:
        return [sys.executable, "-m", "factoryctl", job, *args]

    def start(self, job: str, *args: str, on_end: Ended | None = None) -> Launched:
        """Start `factoryctl JOB ARGS` now, or raise AlreadyRunning / UnknownJob; `on_end` hears how it ended."""
        if job not in JOBS:
            raise UnknownJob(f"no job {job!r}; the launcher starts {', '.join(JOBS)}")
        with self._guard:
            if self.running(job):
                raise AlreadyRunning(f"{job} is already running (started by this process)")
            with self.ctx.job_lock(job):
                pass  # free now; held elsewhere it raises AlreadyRunning
            launched = Launched(job)
            launched.thread = threading.Thread(target=self._run, args=(launched, args, on_end), name=f"job-{job}",
                                               daemon=True)  # fmt: skip
            self._running[job] = launched
            launched.thread.start()
            return launched

    def running(self, job: str) -> bool:
        launched = self._running.get(job)
        # Ended once its process has: the thread may still be recording that (`on_end`), and a
        # caller who saw the record may start the next run.
        return launched is not None and launched.ended is None and launched.thread.is_alive()

    def wait(self, job: str, timeout: float | None = None) -> None:
        launched = self._running.get(job)
        if launched is not None:
            launched.thread.join(timeout)

    def _run(self, launched: Launched, args: tuple[str, ...], on_end: Ended | None) -> None:
        env = {**os.environ, HOME_ENV: str(self.ctx.paths.home)}
        try:
            done = self.runner(self.argv(launched.job, *args), cwd=self.ctx.paths.home, timeout=self.timeout_s,
                               env=env)  # fmt: skip
            self._keep_output(launched.job, done)
            launched.ended = done
        except FactoryError as exc:
            launched.ended = exc
        if on_end is not None:
            on_end(launched.ended)

    def _keep_output(self, job: str, done: Completed) -> None:
        logs = self.ctx.paths.logs_dir
        logs.mkdir(parents=True, exist_ok=True)
        fd = os.open(logs / f"trigger-{job}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
        os.fchmod(fd, PRIVATE_FILE_MODE)  # also a file an older version made world-readable
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(f"--- {format_ts(self.ctx.clock())} exit {done.returncode}\n{done.stdout}{done.stderr}\n")
