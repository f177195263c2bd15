"""Where everything lives: one env var (FACTORY_HOME) moves all state."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from factoryctl.core.defaults import HOME_ENV


def factory_home(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    value = env.get(HOME_ENV, "").strip()
    return Path(value).expanduser().absolute() if value else Path.home() / "factory"


def tmux_socket(home: Path) -> str:
    """The tmux socket name of the factory at `home`: `factory-` and a short hash of its path."""
    return "factory-" + hashlib.sha256(str(home).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Paths:
    """Every file and folder the factory reads or writes under FACTORY_HOME."""

    home: Path

    @property
    def config_file(self) -> Path:
        return self.home / "factory.toml"

    @property
    def secrets_file(self) -> Path:
        return self.home / "secrets.env"

    @property
    def gate_key_file(self) -> Path:
        """The merge gate's key: a local origin's update hook lets only a push that carries it move main."""
        return self.home / "gate.key"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "experiment-log.jsonl"

    @property
    def tasks_file(self) -> Path:
        return self.state_dir / "tasks.json"

    @property
    def review_queue_file(self) -> Path:
        return self.state_dir / "review-queue.json"

    @property
    def sessions_file(self) -> Path:
        return self.state_dir / "sessions.json"

    @property
    def holds_file(self) -> Path:
        """Written by the scheduler: the resource and budget holds on new cycles."""
        return self.state_dir / "holds.json"

    def pause_flag(self, session: str | None = None) -> Path:
        """Present = paused: the whole factory (no session) or one session."""
        return self.state_dir / ("paused" if session is None else f"paused.{session}")

    @property
    def locks_dir(self) -> Path:
        return self.state_dir / "locks"

    @property
    def worktrees_dir(self) -> Path:
        return self.home / "worktrees"

    @property
    def caches_dir(self) -> Path:
        """Per-session caches of sandboxed calls (their HOME: the agent CLI's files, ~/.npm)."""
        return self.home / "cache"

    @property
    def standups_dir(self) -> Path:
        return self.home / "standups"

    @property
    def doctor_dir(self) -> Path:
        return self.home / "doctor"

    @property
    def advice_file(self) -> Path:
        """Written by the standup: advice (overlaps) each session's next prompt carries."""
        return self.state_dir / "advice.json"

    @property
    def skills_dir(self) -> Path:
        return self.home / "skills"

    @property
    def bot_skills_dir(self) -> Path:
        return self.home / "bot-skills"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def tmux_socket(self) -> str:
        """This factory's own tmux server (`tmux -L NAME`): two homes never see each other's sessions."""
        return tmux_socket(self.home)

    def repo_dir(self, relative: str) -> Path:
        return self.home / relative

    def as_dict(self, repo_relative: str) -> dict[str, str]:
        names = [
            "home", "config_file", "secrets_file", "state_dir", "log_file", "tasks_file",
            "review_queue_file", "sessions_file", "locks_dir", "worktrees_dir", "caches_dir", "standups_dir",
            "doctor_dir", "skills_dir", "bot_skills_dir", "logs_dir",
        ]  # fmt: skip
        out = {name: str(getattr(self, name)) for name in names}
        out["repo_dir"] = str(self.repo_dir(repo_relative))
        return out
