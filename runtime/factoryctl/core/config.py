"""factory.toml: every key, its default and what it allows, in this one place.

The models below are the reference (`factoryctl config show --defaults` prints them as
TOML). Reading the file is `configfile.load_settings`: a wrong key or value is one
ConfigError naming the file, the key and what is allowed; a missing file means "all defaults".
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from factoryctl.core.checks import PARSER_NAMES, TEST_RUNNERS, validate_pattern
from factoryctl.core.configbase import Seconds
from factoryctl.core.configbase import Section as _Section
from factoryctl.core.defaults import ALERT_QUIET, SENSITIVE_PATHS
from factoryctl.core.errors import UsageError
from factoryctl.core.fleet import HOST_RULE, check_fleet, check_host, fleet_sessions, local_sessions
from factoryctl.core.jobspecs import Role
from factoryctl.core.teamconfig import DoctorSection, SkillsSection, StandupSection

_REF_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CLAUDE = ["claude", "-p", "--model", "sonnet"]
# The agent streams (live progress) and may edit and run commands: the sandbox is the boundary.
_AGENT = [*_CLAUDE, "--output-format", "stream-json", "--verbose", "--permission-mode", "bypassPermissions"]


def inside_path(value: str) -> str:
    """A relative path that stays inside its root (no absolute path, no '..', no NUL)."""
    if not value or "\0" in value or Path(value).is_absolute() or ".." in Path(value).parts:
        raise ValueError(f"must be a relative path inside the worktree, not {value!r}")
    return value


def default_heavy_slots(cpus: int | None = None) -> int:
    """About half the CPUs, at least 1: a heavy check (tsc, a test run) wants a whole core."""
    count = os.cpu_count() if cpus is None else cpus
    return max(1, (count or 2) // 2)


Command = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class FactorySection(_Section):
    sessions: Annotated[int, Field(ge=1, le=64, description="agents s1..sN (one host; a fleet: [fleet] workers)")] = 8
    role: Role = Field("all", description='"all": the whole factory here; "gate": the merge gate, standup, doctor, '
                       'bot, serve (no loops); "worker": the loops of its own sessions')  # fmt: skip
    host: str = Field("", description=f'this host\'s name in the fleet ("" on one host): {HOST_RULE}')

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_host(value) if value else value


class FleetSection(_Section):
    workers: dict[str, Annotated[int, Field(ge=1, le=64)]] = Field(
        default_factory=dict,
        description="the sessions of each worker host, e.g. { w1 = 2, w2 = 2 } (empty on one host); "
        "sessions are then named HOST-sI (w1-s1)",
    )
    lost_after_s: Seconds = Field(
        120, ge=30, description="a session with no heartbeat for this long is lost: its task goes back to the queue"
    )

    @field_validator("workers")
    @classmethod
    def _hosts(cls, value: dict[str, int]) -> dict[str, int]:
        return {check_host(host): count for host, count in value.items()}


class RepoSection(_Section):
    path: str = Field("repo", description="the main clone, relative to FACTORY_HOME")
    main: str = Field("main", description="the branch the factory protects")
    branch_prefix: str = Field("brl", description="work branches: PREFIX/SESSION/TIMESTAMP")
    context_files: list[str] = Field(
        default_factory=lambda: ["CLAUDE.md", "AGENTS.md"],
        description="read into every prompt when present",
    )
    setup: list[str] = Field(
        default_factory=list,
        description="argv run in a worktree when it is new or setup_inputs changed, e.g. npm ci",
    )
    setup_inputs: list[str] = Field(
        default_factory=lambda: [
            "package.json", "package-lock.json", "pnpm-lock.yaml", "pnpm-workspace.yaml", "yarn.lock", ".npmrc",
            "pyproject.toml", "uv.lock", "poetry.lock", "requirements.txt", "requirements-dev.txt", "setup.cfg",
        ],
        description="manifests and lockfiles: setup re-runs when one differs from what the worktree was set up with",
    )  # fmt: skip
    dependency_dirs: list[str] = Field(
        default_factory=lambda: ["node_modules", ".venv"],
        description="ignored dependency folders: a package added to one since setup (by the agent) re-runs setup",
    )
    setup_timeout_s: Seconds = 1800
    protected_paths: list[str] = Field(
        default_factory=lambda: [".github/", ".gitlab-ci.yml", ".ci/"],
        description="a change touching these (prefix match) is discarded",
    )
    sensitive_paths: list[str] = Field(
        default_factory=lambda: list(SENSITIVE_PATHS),
        description="a change touching these (globs; without '/' any folder) waits for a person, even in auto "
        "mode: how the checks judge (test runner, type checker, CI) and what gets installed. "
        "pyproject.toml counts only when its [tool.*] tables change, package.json only its scripts and "
        "test-runner keys",
    )

    @field_validator("main", "branch_prefix")
    @classmethod
    def _ref_part(cls, value: str) -> str:
        if not _REF_PART.match(value) or ".." in value or value.endswith((".lock", ".")):
            raise ValueError("must be a plain git branch name: letters, digits, '.', '_', '-'")
        return value

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if not value or Path(value).is_absolute() or ".." in Path(value).parts:
            raise ValueError("must be a path inside FACTORY_HOME, like 'repo'")
        return value

    @field_validator("context_files", "setup_inputs", "dependency_dirs")
    @classmethod
    def _inside(cls, values: list[str]) -> list[str]:
        return [inside_path(v) for v in values]


class AgentSection(_Section):
    command: Command = Field(
        default_factory=lambda: [*_AGENT, "--max-turns", "40", "--max-budget-usd", "2"],
        description="argv; the prompt arrives on stdin, cwd is the session worktree",
    )
    timeout_s: Seconds = Field(1200, description="the call is killed (with its children) after this")


class ReviewerSection(AgentSection):
    command: Command = Field(
        default_factory=lambda: [*_CLAUDE, "--output-format", "json", "--max-turns", "3"],
        description="review, standup, doctor and bot calls",
    )
    timeout_s: Seconds = 600


class CycleSection(_Section):
    interval_s: Seconds = Field(900, description="from the start of one cycle to the next (at most a week)")
    backoff_max_s: Seconds = Field(3600, description="cap of the backoff after failed agent calls")


class CheckSpec(_Section):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    command: Command
    parser: str = Field(description="one of: " + ", ".join(PARSER_NAMES))
    heavy: bool = Field(False, description="runs under the heavy-slot semaphore")
    timeout_s: Seconds = 900
    pattern: str | None = Field(None, description="regex parser only: named groups errors/failed/passed/total")
    cwd: str = Field(".", description="relative to the worktree, and inside it")
    network: bool = Field(False, description="whether the check may reach the network (sandboxed checks)")
    retry_on_regression: bool = Field(
        False,
        description="the gate runs a regressed check once more before rejecting (flaky tests); "
        "default true for the test runners (" + ", ".join(TEST_RUNNERS) + "), false for the others",
    )

    @model_validator(mode="before")
    @classmethod
    def _retry_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and "retry_on_regression" not in data:
            return {**data, "retry_on_regression": data.get("parser") in TEST_RUNNERS}
        return data

    @field_validator("cwd")
    @classmethod
    def _cwd_inside(cls, value: str) -> str:
        return "." if value == "." else inside_path(value)

    @field_validator("parser")
    @classmethod
    def _known_parser(cls, value: str) -> str:
        if value not in PARSER_NAMES:
            raise ValueError(f"unknown parser {value!r}; allowed: {', '.join(PARSER_NAMES)}")
        return value

    @model_validator(mode="after")
    def _pattern_fits(self) -> CheckSpec:
        if self.parser == "regex":
            if not self.pattern:
                raise ValueError("parser 'regex' needs a pattern")
            try:
                validate_pattern(self.pattern)
            except UsageError as exc:
                raise ValueError(str(exc)) from None
        elif self.pattern is not None:
            raise ValueError("pattern is only used with parser 'regex'")
        return self


class SchedulerSection(_Section):
    tick_s: Seconds = Field(300, description="seconds between two ticks of `factoryctl scheduler`")
    max_ram_percent: Annotated[
        int, Field(ge=1, le=100, description="RAM use at or above this holds new cycles back")
    ] = 85
    ram_hysteresis_percent: Annotated[
        int, Field(ge=0, le=50, description="the hold lets go only below max_ram_percent minus this")
    ] = 5
    min_free_disk_gb: Annotated[
        float, Field(ge=0, strict=False, description="less free disk under FACTORY_HOME holds new cycles back")
    ] = 2.0
    disk_hysteresis_gb: Annotated[
        float, Field(ge=0, strict=False, description="the hold lets go only above min_free_disk_gb plus this")
    ] = 1.0
    heavy_slots: Annotated[int, Field(ge=1, le=64)] = Field(
        default_factory=default_heavy_slots,
        description="heavy checks and setups at once; default about half the CPUs (at least 1), computed at load",
    )
    stall_after_s: Seconds = Field(
        7200, description="a cycle older than this is stalled: its session is restarted, its task requeued"
    )
    stop_wait_s: Seconds = Field(60, description="how long a stopping loop may take to end its cycle cleanly")
    max_task_failures: Annotated[
        int, Field(ge=1, description="a queued task with this many failed attempts is parked with its reasons")
    ] = 3
    watchdog_restarts: Annotated[
        int, Field(ge=1, description="a PM2 app restarted more than this often within watchdog_window_s is stopped")
    ] = 5
    watchdog_window_s: Seconds = Field(900, description="the crash-loop watchdog's window")
    loop_wrapper: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="argv put before `factoryctl loop sN` in a session the scheduler starts "
        "(the deploy's factory-run, which loads the secrets)",
    )


class BudgetSection(_Section):
    daily_usd: Annotated[float, Field(ge=0, strict=False, description="at this spend new cycles stop")] = 20.0
    soft_share: Annotated[
        float, Field(gt=0, le=1, strict=False, description="at this share of daily_usd the factory degrades")
    ] = 0.8
    degrade: Literal["sessions", "model", "both"] = Field(
        "sessions", description="sessions: fewer active sessions; model: the cheaper agent; both"
    )
    degraded_sessions: Annotated[int, Field(ge=1, description="sessions that keep working when degraded")] = 2
    cheap_model: Annotated[str, Field(min_length=1, description="replaces agent.command's --model when degraded")] = (
        "haiku"
    )
    cheap_command: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="the cheaper agent's whole argv; empty: agent.command with --model cheap_model",
    )


class ReviewSection(_Section):
    mode: Literal["auto", "human"] = Field("auto", description="human: approvals wait for `factoryctl queue approve`")
    batch_min: Annotated[
        int, Field(ge=1, description="more pending branches than this are merged and tested as a batch")
    ] = 3
    max_redo: Annotated[int, Field(ge=1, le=20, description="re-merges when main moves during a review")] = 3
    diff_budget_chars: Annotated[int, Field(ge=1000, le=1_000_000)] = 40_000
    allow_without_checks: bool = Field(
        False, description="with no [[checks]], the gate lands nothing without a person unless this is true"
    )


class TelegramSection(_Section):
    allowed_chat_ids: list[int] = Field(default_factory=list, description="empty answers no one")
    api_url: str = "https://api.telegram.org"
    notify_landings: bool = Field(True, description="a short 'landed on main' note per review run")
    notify_poll_s: Annotated[
        float, Field(gt=0, le=3600, strict=False, description="how often the bot looks for new alerts to deliver")
    ] = 5.0


class AlertsSection(_Section):
    quiet_s: Seconds = Field(
        int(ALERT_QUIET.total_seconds()), ge=10, description="an alert key is not repeated within this many seconds"
    )


def _absolute(paths: list[str]) -> list[str]:
    for value in paths:
        if not Path(value).is_absolute():
            raise ValueError(f"{value!r} must be an absolute path")
    return paths


class SandboxSection(_Section):
    enabled: bool = Field(
        True, description="run the agent, the reviewer, repo.setup and the checks in bubblewrap; off: development only"
    )
    readable: list[str] = Field(
        default_factory=list, description="absolute paths hidden by the sandbox (under HOME) that calls may read"
    )
    writable: list[str] = Field(
        default_factory=list,
        description="absolute paths every call may write, checks included (the scripted agent's scenario folder): "
        "shared between calls, so never a cache a check reads",
    )
    pass_env: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]] = Field(
        default_factory=list, description="environment variables passed into sandboxed calls besides the usual ones"
    )

    @field_validator("readable", "writable")
    @classmethod
    def _absolute_paths(cls, value: list[str]) -> list[str]:
        return _absolute(value)


class HttpSection(_Section):
    bind: str = Field("127.0.0.1:8787", description="HOST:PORT")
    allow_public: bool = Field(False, description="true lets `bind` be other than loopback (put TLS in front)")
    github_label: Annotated[str, Field(min_length=1, max_length=50)] = Field(
        "factory", description="an issue given this label becomes a task (secret: FACTORY_GITHUB_SECRET)"
    )

    @field_validator("bind")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be HOST:PORT, like 127.0.0.1:8787")
        return value


class StateSection(_Section):
    url: str = Field(
        "",
        description='where the shared state lives: "" the files under FACTORY_HOME/state; '
        '"postgresql://USER@HOST:PORT/DB" a PostgreSQL database (password in FACTORY_DB_PASSWORD, never here)',
    )

    @field_validator("url")
    @classmethod
    def _state_url(cls, value: str) -> str:
        if not value:
            return value
        scheme, sep, rest = value.partition("://")
        if not sep or scheme not in ("postgresql", "postgres"):
            raise ValueError('must be "" (files) or a postgresql://USER@HOST:PORT/DB URL')
        userinfo = rest.split("/", 1)[0].rpartition("@")[0]
        if ":" in userinfo or "password=" in rest:
            raise ValueError("must not carry a password: put it in FACTORY_DB_PASSWORD (the secrets file)")
        return value


class Settings(_Section):
    factory: FactorySection = FactorySection()
    repo: RepoSection = RepoSection()
    agent: AgentSection = AgentSection()
    reviewer: ReviewerSection = ReviewerSection()
    cycle: CycleSection = CycleSection()
    checks: list[CheckSpec] = Field(default_factory=list)
    scheduler: SchedulerSection = SchedulerSection()
    budget: BudgetSection = BudgetSection()
    review: ReviewSection = ReviewSection()
    telegram: TelegramSection = TelegramSection()
    alerts: AlertsSection = AlertsSection()
    http: HttpSection = HttpSection()
    standup: StandupSection = StandupSection()
    doctor: DoctorSection = DoctorSection()
    skills: SkillsSection = SkillsSection()
    sandbox: SandboxSection = SandboxSection()
    state: StateSection = StateSection()
    fleet: FleetSection = FleetSection()

    @model_validator(mode="after")
    def _fleet(self) -> Settings:
        check_fleet(self.factory.role, self.factory.host, self.fleet.workers, self.state.url)
        return self

    @field_validator("checks")
    @classmethod
    def _unique_names(cls, checks: list[CheckSpec]) -> list[CheckSpec]:
        names = [c.name for c in checks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"check names must be unique; repeated: {', '.join(dupes)}")
        return checks

    @property
    def session_names(self) -> tuple[str, ...]:
        """Every session of the factory: s1..sN on one host, HOST-sI over the fleet's workers."""
        if self.fleet.workers:
            return fleet_sessions(self.fleet.workers)
        return tuple(f"s{i}" for i in range(1, self.factory.sessions + 1))

    @property
    def local_sessions(self) -> tuple[str, ...]:
        """The sessions this host runs (its tmux, worktrees, loops): a gate none, "all" every one."""
        return local_sessions(self.factory.role, self.factory.host, self.session_names)
