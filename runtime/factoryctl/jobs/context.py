"""The world a job runs in: paths, settings, clock, sleep and log. Tests build one in tmp_path."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from factoryctl.adapters.agent import Agent
from factoryctl.adapters.sandbox import Launch, Policy, Sandbox, allowed_env
from factoryctl.core.clock import utcnow
from factoryctl.core.config import Settings
from factoryctl.core.configfile import load_settings
from factoryctl.core.defaults import HEAVY_WAIT_S, MODEL_CREDENTIAL_ENV, MODEL_ENV, STATE_SOCKET_DIRS
from factoryctl.core.errors import UsageError
from factoryctl.core.fleet import host_of
from factoryctl.core.paths import Paths, factory_home
from factoryctl.core.records import Holds
from factoryctl.state.alerts import Alerts, AlertSink
from factoryctl.state.backend import Document, StateBackend, open_backend
from factoryctl.state.baselines import Baselines
from factoryctl.state.eventlog import EventLog
from factoryctl.state.heartbeats import Heartbeats
from factoryctl.state.holds import current_holds, holds_name, read_holds
from factoryctl.state.locks import Semaphore, exclusive
from factoryctl.state.pauses import Pauses
from factoryctl.state.reviewqueue import ReviewQueue
from factoryctl.state.reviewqueue import empty as empty_queue
from factoryctl.state.tasks import TaskQueue

# The runtime's own interpreter (a venv, a pyenv under the hidden home) and its code (an editable
# install's source folder may sit under the hidden home or /tmp): the scripted agent and Python
# checks run on them, so sandboxed calls may read them.
RUNTIME_CODE = Path(__file__).resolve().parents[2]
RUNTIME_PYTHON = tuple(dict.fromkeys(Path(p) for p in (sys.prefix, sys.base_prefix, RUNTIME_CODE)))


@dataclass
class Context:
    paths: Paths
    settings: Settings
    clock: Callable[[], datetime] = utcnow
    # Waiting goes through here, so a test with a fake clock also gets a fake sleep.
    sleep: Callable[[float], None] = time.sleep
    state: StateBackend = field(init=False)
    log: EventLog = field(init=False)
    _sandbox_checked: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.state = open_backend(self.settings.state.url, self.paths)
        self.log = self.state.event_log(self.clock)

    @classmethod
    def load(cls, home: Path | None = None, clock: Callable[[], datetime] = utcnow) -> Context:
        paths = Paths(home if home is not None else factory_home())
        return cls(paths=paths, settings=load_settings(paths.config_file), clock=clock)

    @property
    def repo_dir(self) -> Path:
        return self.paths.repo_dir(self.settings.repo.path)

    def tasks(self) -> TaskQueue:
        return self.state.task_queue(self.log)

    def review_queue(self) -> ReviewQueue:
        return ReviewQueue(self.state.document(self.paths.review_queue_file.name, empty_queue))

    def heartbeats(self) -> Heartbeats:
        return Heartbeats(self.state.document(self.paths.sessions_file.name, dict), self.clock)

    def baselines(self) -> Baselines:
        """Main's check counts per commit and checks configuration, shared by the cycles and the gate."""
        return Baselines(self.state, self.log)

    def job_lock(self, name: str) -> AbstractContextManager[None]:
        """Job `name` runs once at a time (across the fleet with PostgreSQL); AlreadyRunning if it runs."""
        return self.state.job_lock(name)

    def holds_document(self, host: str | None = None) -> Document:
        """The holds `host`'s scheduler writes (None: this host's)."""
        return self.state.document(holds_name(self.settings.factory.host if host is None else host), dict)

    def holds(self) -> Holds:
        """This host's holds as they stand now (yesterday's budget entries no longer do)."""
        return current_holds(self.holds_document(), self.clock())

    def holds_of(self, session: str) -> Holds:
        """The holds on `session` now: its own host's (this host's on one host)."""
        host = host_of(session) if self.settings.fleet.workers else None
        return current_holds(self.holds_document(host), self.clock())

    def fleet_holds(self) -> dict[str, Holds]:
        """Each worker host's holds as its scheduler last wrote them (empty on one host)."""
        return {host: read_holds(self.holds_document(host)) for host in self.settings.fleet.workers}

    def pauses(self) -> Pauses:
        """The pauses of the factory and its sessions (shared by every host with PostgreSQL)."""
        return Pauses(self.state, self.paths)

    def alerts(self, notifiers: Sequence[AlertSink] = ()) -> Alerts:
        """Alerts as every job raises them: a key is not repeated within `[alerts] quiet_s`."""
        quiet = timedelta(seconds=self.settings.alerts.quiet_s)
        return Alerts(self.log, lambda: self.state.exclusive("alerts"), notifiers, quiet=quiet)

    def heavy_slots(self) -> Semaphore:
        return Semaphore(self.paths.locks_dir, "heavy", self.settings.scheduler.heavy_slots)

    def repo_lock(self) -> AbstractContextManager[None]:
        """The lock around what the worktrees share: fetch, worktree add/prune, branch deletion."""
        return exclusive(self.paths.locks_dir / "repo.lock")

    def sandbox(self) -> Sandbox:
        """The sandbox untrusted calls run in: the user's home, FACTORY_HOME and the state's sockets hidden."""
        sealed = tuple(map(Path, STATE_SOCKET_DIRS))
        return Sandbox(self.settings.sandbox.enabled, hide=(Path.home(), self.paths.home), sealed=sealed)

    def require_sandbox(self) -> None:
        """At the start of a job that runs untrusted code: the sandbox works, or one clear error."""
        if not self._sandbox_checked:
            self.sandbox().check()
            self._sandbox_checked = True

    def launch(
        self,
        workdir: Path,
        name: str,
        *,
        writable: bool = True,
        network: bool = False,
        credential: bool = False,
        home: Path | None = None,
        extra_writable: tuple[Path, ...] = (),
    ) -> Launch:
        """How an untrusted call in `workdir` starts; `name` picks its cache (its HOME) unless `home` is given.

        `credential`: the model's key and how to reach the model reach it (the agent, the reviewer);
        never setup or checks. A model call in the sandbox is told so (IS_SANDBOX=1): Claude Code
        then accepts a permission mode that lets it edit and run commands, as the root user too.
        """
        cfg = self.settings.sandbox
        if home is None:
            home = self.paths.caches_dir / name / "home"
        home.mkdir(parents=True, exist_ok=True)
        policy = Policy(
            workdir=workdir, writable=writable, network=network, home=home,
            read_only=(self.repo_dir / ".git", *RUNTIME_PYTHON, *map(Path, cfg.readable)),
            extra_writable=(*map(Path, cfg.writable), *extra_writable),
        )  # fmt: skip
        extra = (*cfg.pass_env, *((*MODEL_CREDENTIAL_ENV, *MODEL_ENV) if credential else ()))
        env = allowed_env(os.environ, home, extra)
        if credential and cfg.enabled:
            env["IS_SANDBOX"] = "1"  # true: bubblewrap is the boundary
        return Launch(self.sandbox(), policy, env)

    def heavy_slot(self) -> AbstractContextManager[int]:
        """Hold one heavy slot for a block (a heavy check, a setup): waits up to HEAVY_WAIT_S."""
        return self.heavy_slots().hold(timeout_s=HEAVY_WAIT_S)

    def agent(self) -> Agent:
        """The coding agent; its calls are sandboxed (a cycle names the worktree it may write)."""
        return Agent(self.settings.agent, self.log, launch_for=self._read_only_call("agent"))

    def reviewer(self) -> Agent:
        """The reviewer model (review, standup, doctor, bot calls): sandboxed, its folder read-only."""
        return Agent(self.settings.reviewer, self.log, launch_for=self._read_only_call("reviewer"))

    @contextmanager
    def model_room(self, purpose: str) -> Iterator[tuple[Path, Launch]]:
        """Where one reviewer-model call runs (review, standup, doctor, bot): an empty folder and a
        fresh HOME of its own, both removed afterwards.

        Outside any project root, so no branch's `.claude/` settings, hooks, MCP servers or
        CLAUDE.md are loaded; and nothing one call writes (a hook's file in HOME, a memory) reaches
        the next. What the model judges comes in the prompt.
        """
        self.require_sandbox()
        rooms = self.paths.caches_dir / "rooms"
        rooms.mkdir(parents=True, exist_ok=True)
        room = Path(tempfile.mkdtemp(prefix=f"{purpose}-", dir=rooms))
        work, home = room / "work", room / "home"
        work.mkdir()
        try:
            yield work, self.launch(work, purpose, writable=False, network=True, credential=True, home=home)
        finally:
            shutil.rmtree(room, ignore_errors=True)

    def _read_only_call(self, name: str) -> Callable[[Path], Launch]:
        """A model call in a folder it may read, not write; with the network and its credential."""
        return lambda cwd: self.launch(cwd, name, writable=False, network=True, credential=True)

    def session(self, name: str) -> str:
        """`name` if it is one of this factory's sessions (on any host), else a UsageError saying which are."""
        names = self.settings.session_names
        if name not in names:
            raise UsageError(f"unknown session {name!r}; this factory has {names[0]}..{names[-1]}")
        return name

    def local_session(self, name: str) -> str:
        """`name` if this host runs it (its tmux, worktree, loop), else a UsageError naming its host."""
        if self.session(name) not in self.settings.local_sessions:
            host = host_of(name)
            here = self.settings.factory.host or "this host"
            raise UsageError(f"{name} runs on host {host}, not on {here}: run this there")
        return name
