"""Host data and secrets, checked before anything changes: one `HostDataError` lists every problem.

`check(data, environ)` is pure: host data (inventory.py's DEFAULTS, overridden per host)
and the environment in, a `Checked` plan out: the validated factory.toml, the secrets to
write, the jobs to deploy and what was left out and why. The inventory calls it to stop
before connecting anywhere; deploy.py calls it again on the final host data.

Secrets (the environment only; never in this repository or in host data):
- ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN or ANTHROPIC_AUTH_TOKEN: mandatory, unless both the
  agent and the reviewer command are the scripted agent (`factory-scripted-agent`: the offline
  demo), or Claude Code reaches its model through Amazon Bedrock or Google Vertex AI
  (CLAUDE_CODE_USE_BEDROCK / CLAUDE_CODE_USE_VERTEX, with their own credentials).
- How Claude Code reaches its model (factoryctl.core.defaults.MODEL_ENV: ANTHROPIC_BASE_URL for
  a gateway, the Bedrock and Vertex variables, model pins, a proxy): taken from the environment
  like the secrets, or set in host data `factory_model_env`; written to the same 0600 file.
- The server's certificate, proxy and package-index settings for `repo.setup`
  (factoryctl.core.defaults.SETUP_PASS_ENV: SSL_CERT_FILE, HTTPS_PROXY, UV_INDEX_URL, ...): host
  data `factory_setup_env` only (a path on the deployer's laptop means nothing on the server).
- TELEGRAM_BOT_TOKEN: mandatory when telegram chat ids are set; without it the bot jobs
  are not deployed.
- FACTORY_HTTP_TOKEN: without it `serve` (the HTTP triggers) is not deployed.
Each one set must have its shape (factoryctl.core.secrets: a 16-character HTTP token, a bot
token as @BotFather gives it, ...): `secret_problems` is checked here and by the inventory.
- FACTORY_DEPLOY_KEY: the path of a private key file, mandatory for ssh repository URLs
  (`git@host:owner/repo.git`, `ssh://...`); installed 0600 for the factory user.
- FACTORY_DB_PASSWORD: mandatory on a `gate` or `worker` host (host data `factory_role`): the
  password of the shared state's PostgreSQL role (`[state] url` names the rest).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from factoryctl.core.config import SchedulerSection, Settings
from factoryctl.core.configfile import settings_from_mapping
from factoryctl.core.defaults import MODEL_ENV, SECRET_ENV, SETUP_PASS_ENV
from factoryctl.core.errors import ConfigError
from factoryctl.core.jobspecs import JOBS, ROLE_JOBS, ROLES, Job, Role
from factoryctl.core.secrets import secret_problem
from factoryctl.rules.detect import Detected, detect
from factoryctl.scripted_agent import ScenarioError, load_scenario

from . import layout
from .fleet import NAME as FLEET_NAME
from .fleet import address_problem

AGENT_CREDENTIALS = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN")
CLOUD_PROVIDERS = ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX")  # their own credentials
DEPLOY_KEY_ENV = "FACTORY_DEPLOY_KEY"
SCRIPTED_AGENT = "factory-scripted-agent"
SAMPLE_REPO = "sample"  # factory_repo_url value: the bundled sample repository (the demo)

# factory.toml key -> the host data key that sets it (for messages and the rendering).
FLAT_KEYS: dict[tuple[str, str], str] = {
    ("factory", "sessions"): "factory_sessions",
    ("repo", "main"): "factory_repo_branch",
    ("agent", "command"): "factory_agent_command",
    ("reviewer", "command"): "factory_reviewer_command",
    ("budget", "daily_usd"): "factory_budget_daily_usd",
    ("telegram", "allowed_chat_ids"): "factory_telegram_chat_ids",
    ("http", "bind"): "factory_http_bind",
}
# Optional host data (inventory.py's DEFAULTS has them): a missing one means its default.
#   factory_schedules: {cron job name: "m h dom mon dow"}, replacing the design's schedule
#     (a compressed day in bench/factory_day.py runs the review every 2 minutes, say).
#   factory_tools_npm: {npm package: exact version} installed globally beside what the repository's
#     setup and checks need (pnpm, yarn, corepack and uv are installed when they name them).
#   factory_scenarios: a local folder with the scripted agent's agent.json and reviewer.json
#     (the demo's are templates/demo/); only read when the agent is the scripted one.
#   factory_role: "all" (default), "gate" or "worker" (factoryctl.core.jobspecs.ROLES).
#   factory_db_clients: on the gate, the workers' addresses (IPs or CIDRs) PostgreSQL admits.
#   factory_fleet_name, factory_private_address, factory_fleet_workers ({name: sessions}) and, on a
#     worker, factory_db_host (the gate's private address): a gate's or worker's place in the fleet,
#     computed by the inventory from the fleet file (provision/fleet.py).
REQUIRED_KEYS = (
    *FLAT_KEYS.values(),
    "factory_repo_url",
    "factory_checks",
    "factory_config",
    "factory_pm2_version",
    "factory_claude_code_version",
    "factory_jobs",
)

_CRON_FIELD = re.compile(r"^(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?)*$")
_CRON_LIMITS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))  # minute, hour, day, month, weekday
DEMO_SCENARIOS = Path(__file__).resolve().parent.parent / "templates" / "demo"
SCENARIO_FILES = ("agent.json", "reviewer.json")
_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?$")
# Shell metacharacters, quotes, whitespace and control characters: never in a repository URL.
_URL_FORBIDDEN = re.compile(r"[\s'\"`$;&|<>(){}\\*?!#~\x00-\x1f\x7f]")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._/-]+$")
_URL_SCHEMES = ("https://", "http://", "ssh://", "git://", "file:///")


class HostDataError(Exception):
    """Host data or the environment cannot make a working factory; the message lists why."""


@dataclass(frozen=True)
class Repo:
    url: str  # "sample", an https/ssh/git/file URL, scp-like `user@host:path`, or an absolute path
    branch: str
    needs_key: bool

    @property
    def is_sample(self) -> bool:
        return self.url == SAMPLE_REPO


@dataclass(frozen=True)
class Checked:
    """Everything the deploy needs from host data and the environment, validated."""

    settings: Settings
    config: dict[str, Any]  # what factory.toml holds (loads back into `settings`)
    secrets: dict[str, str] = field(repr=False)  # env var -> value, only those set
    jobs: tuple[Job, ...]  # deployed jobs, in JOBS order
    left_out: tuple[str, ...]  # one line per job not deployed, and why
    repo: Repo
    deploy_key: Path | None  # local file
    pm2_version: str
    claude_code_version: str
    scripted: bool  # agent and reviewer are the scripted agent (the demo)
    scenarios: Path = DEMO_SCENARIOS  # the scripted agent's scenario files (local folder)
    tools_npm: Mapping[str, str] = field(default_factory=dict)  # factory_tools_npm: more global npm tools
    role: Role = "all"  # this host's part in a factory of several hosts
    db_clients: tuple[str, ...] = ()  # the gate: the networks PostgreSQL admits (the workers')
    fleet: FleetPlace | None = None  # a gate's or worker's place in the fleet

    def jobs_of(self, kind: str) -> tuple[Job, ...]:
        return tuple(j for j in self.jobs if j.kind == kind)

    @property
    def session_names(self) -> tuple[str, ...]:
        """This host's agents: s1..sN alone, `<host>-s1`..`<host>-sN` on a worker of a fleet."""
        if self.fleet is None:
            return self.settings.session_names
        return tuple(f"{self.fleet.name}-s{i}" for i in range(1, self.settings.factory.sessions + 1))


@dataclass(frozen=True)
class FleetPlace:
    """A gate's or worker's place in the fleet (host data the inventory computed from the fleet file)."""

    name: str  # its fleet name
    private_address: str  # where the others reach it
    workers: Mapping[str, int]  # every worker's fleet name -> its sessions
    db_host: str = ""  # a worker: the gate's private address (PostgreSQL, the demo's origin)


# [state] url per role: the gate's jobs reach PostgreSQL over its own socket; a worker's through
# the local relay to the gate (factory-db-relay). No password here: FACTORY_DB_PASSWORD has it.
STATE_URLS: dict[str, str] = {
    "gate": f"postgresql://{layout.DB_ROLE}@/{layout.DB_NAME}?host={layout.PG_SOCKET_DIR}",
    "worker": f"postgresql://{layout.DB_ROLE}@/{layout.DB_NAME}?host={layout.RELAY_DIR}",
}


def read_secrets(environ: Mapping[str, str], model_env: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The factory's secrets and model settings that are set (a blank value counts as unset);
    host data's `factory_model_env` first, the environment over it."""
    found = {str(k): str(v) for k, v in (model_env or {}).items() if str(v).strip()}
    found.update({name: environ[name] for name in (*SECRET_ENV, *MODEL_ENV) if environ.get(name, "").strip()})
    return found


def is_scripted(command: Sequence[str]) -> bool:
    return bool(command) and PurePosixPath(str(command[0])).name == SCRIPTED_AGENT


def is_ssh_url(url: str) -> bool:
    return url.startswith("ssh://") or bool(_SCP_LIKE.match(url))


def factory_config(data: Mapping[str, Any]) -> dict[str, Any]:
    """factory.toml's content from host data: the keys host data sets, then `factory_config`'s."""
    config: dict[str, Any] = {section: {} for section in Settings.model_fields if section != "checks"}
    for (section, key), data_key in FLAT_KEYS.items():
        config[section][key] = _plain(data[data_key])
    # Sessions the scheduler (re)starts get their secrets the way the deploy's do: via factory-run.
    # (The check keeps this deploy working with a runtime from before the key existed.)
    if "loop_wrapper" in SchedulerSection.model_fields:
        config["scheduler"]["loop_wrapper"] = [layout.RUN]
    extra = data["factory_config"]
    if not isinstance(extra, Mapping):
        raise HostDataError("factory_config: must be a mapping of factory.toml sections, like {'cycle': {...}}")
    for section, values in extra.items():
        if section == "checks":
            raise HostDataError("factory_config: set checks with factory_checks")
        if section not in config or not isinstance(values, Mapping):
            allowed = ", ".join(s for s in config)
            raise HostDataError(f"factory_config: unknown section {section!r} (a mapping); allowed: {allowed}")
        for key, value in values.items():
            if (section, key) in FLAT_KEYS:
                raise HostDataError(f"factory_config: set {section}.{key} with {FLAT_KEYS[(section, key)]}")
            config[section][key] = _plain(value)
    if is_scripted(data["factory_agent_command"] or []) and "writable" not in config["sandbox"]:
        # The scripted stand-in keeps its scenario's state next to it: its sandbox may write there.
        config["sandbox"]["writable"] = [layout.DEMO_DIR]
    checks = data["factory_checks"]
    if checks:
        config["checks"] = [_plain(dict(check)) for check in checks]
    return {section: values for section, values in config.items() if values}


def check(data: Mapping[str, Any], environ: Mapping[str, str], *, host: str = "host") -> Checked:
    """Validate host data and secrets for `host`; raise HostDataError naming every problem."""
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise HostDataError(f"{host}: host data misses {', '.join(missing)} (inventory.py's DEFAULTS has them all)")
    problems: list[str] = []
    settings = None
    config: dict[str, Any] = {}
    fleet: FleetPlace | None = None
    try:
        config = factory_config(data)
        fleet = _check_fleet(data, config, problems)
        if fleet is not None:
            config = with_fleet(config, str(data["factory_role"]), fleet)
        settings = settings_from_mapping(config, source="factory.toml (from the host data)")
    except (HostDataError, ConfigError) as exc:
        problems.append(_with_data_key(str(exc)))
    except (TypeError, ValueError) as exc:
        problems.append(f"host data: {exc}")

    model_env = data.get("factory_model_env") or {}
    if not isinstance(model_env, Mapping) or not all(k in MODEL_ENV for k in model_env):
        problems.append(f"factory_model_env: a mapping of these names only: {', '.join(MODEL_ENV)}")
        model_env = {}
    # The server's own certificate and proxy settings for repo.setup (never the deployer's laptop's).
    setup_env = data.get("factory_setup_env") or {}
    if not isinstance(setup_env, Mapping) or not all(k in SETUP_PASS_ENV for k in setup_env):
        problems.append(f"factory_setup_env: a mapping of these names only: {', '.join(SETUP_PASS_ENV)}")
        setup_env = {}
    secrets = read_secrets(environ, {**setup_env, **model_env})
    # Each value's shape: no line break anywhere, and the rules the jobs apply when they read a secret.
    problems += [p for name, value in secrets.items() if (p := secret_problem(name, value))]

    agent = list(data["factory_agent_command"] or [])
    reviewer = list(data["factory_reviewer_command"] or [])
    scripted = is_scripted(agent) and is_scripted(reviewer)
    cloud = any(secrets.get(n, "").strip() not in ("", "0", "false") for n in CLOUD_PROVIDERS)
    if not scripted and not cloud and not any(n in secrets for n in AGENT_CREDENTIALS):
        problems.append(
            "missing secret: ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN (the agent's credential; only a "
            f"demo whose agent and reviewer commands are {SCRIPTED_AGENT}, or Claude Code on Bedrock or "
            "Vertex, runs without one)"
        )
    if data["factory_telegram_chat_ids"] and "TELEGRAM_BOT_TOKEN" not in secrets:
        problems.append("missing secret: TELEGRAM_BOT_TOKEN (factory_telegram_chat_ids is set)")

    repo, deploy_key = _check_repo(data, environ, problems)
    for key in ("factory_pm2_version", "factory_claude_code_version"):
        if not _VERSION.match(str(data[key])):
            problems.append(f"{key}: must be an exact version like 7.0.4 (got {data[key]!r})")
    jobs, left_out = _select_jobs(data["factory_jobs"], secrets, problems)
    role = _check_role(data.get("factory_role", "all"), secrets, problems)
    jobs, left_out = _jobs_of_role(role, jobs, left_out)
    db_clients = _check_db_clients(data.get("factory_db_clients") or [], role, problems)
    if fleet is not None and repo.is_sample and deploy_key is None and (role == "worker" or fleet.workers):
        problems.append(
            f"missing secret: {DEPLOY_KEY_ENV} (in a fleet the demo's origin is on the gate: the workers "
            "fetch and push it over ssh with this key)"
        )
    schedules = data.get("factory_schedules")
    jobs = _with_schedules(jobs, {} if schedules is None else schedules, problems)
    scenarios = _check_scenarios(data.get("factory_scenarios"), scripted, problems)
    tools_npm = data.get("factory_tools_npm") or {}
    if not isinstance(tools_npm, Mapping) or not all(
        isinstance(k, str) and re.fullmatch(r"(@[a-z0-9._-]+/)?[a-z0-9._-]+", k) and _VERSION.match(str(v))
        for k, v in tools_npm.items()
    ):
        problems.append("factory_tools_npm: must map npm package names to exact versions like 10.28.0")
        tools_npm = {}

    if problems or settings is None:
        raise HostDataError(f"{host}: " + "; ".join(problems))
    return Checked(
        settings=settings,
        config=config,
        secrets=secrets,
        jobs=jobs,
        left_out=left_out,
        repo=repo,
        deploy_key=deploy_key,
        pm2_version=str(data["factory_pm2_version"]),
        claude_code_version=str(data["factory_claude_code_version"]),
        scripted=scripted,
        scenarios=scenarios,
        tools_npm={str(k): str(v) for k, v in tools_npm.items()},
        role=role,
        db_clients=db_clients,
        fleet=fleet if role != "all" else None,
    )


def _check_repo(data: Mapping[str, Any], environ: Mapping[str, str], problems: list[str]) -> tuple[Repo, Path | None]:
    url = str(data["factory_repo_url"] or "")
    branch = str(data["factory_repo_branch"])
    if not url:
        problems.append(
            "factory_repo_url is empty: set it to your repository's git URL "
            f"(or to {SAMPLE_REPO!r} for the bundled sample repository)"
        )
    elif url != SAMPLE_REPO and (
        _URL_FORBIDDEN.search(url)
        or url.startswith("-")
        or not (url.startswith(_URL_SCHEMES) or url.startswith("/") or _SCP_LIKE.match(url))
    ):
        problems.append(
            f"factory_repo_url {url!r}: use https://, ssh://, git://, file:/// or user@host:path, "
            "without spaces, quotes or shell characters"
        )
    needs_key = is_ssh_url(url)
    key_text = environ.get(DEPLOY_KEY_ENV, "").strip()
    key: Path | None = Path(key_text).expanduser() if key_text else None
    if key is not None and not key.is_file():
        problems.append(f"{DEPLOY_KEY_ENV}={key_text}: no such file")
    if needs_key and key is None:
        problems.append(f"missing secret: {DEPLOY_KEY_ENV} (the path of a deploy key: {url} is an ssh URL)")
    return Repo(url=url, branch=branch, needs_key=needs_key), key


def _select_jobs(
    wanted: Sequence[str] | None, secrets: Mapping[str, str], problems: list[str]
) -> tuple[tuple[Job, ...], tuple[str, ...]]:
    names = {j.name for j in JOBS} if wanted is None else set(wanted)
    unknown = sorted(names - {j.name for j in JOBS})
    if unknown:
        problems.append(f"factory_jobs: unknown job(s) {', '.join(unknown)}; known: {', '.join(j.name for j in JOBS)}")
    jobs: list[Job] = []
    left_out: list[str] = []
    for job in JOBS:
        if job.name not in names:
            continue
        if job.needs and job.needs not in secrets:
            left_out.append(f"not deployed: {job.name} ({job.needs} is not set)")
            continue
        jobs.append(job)
    return tuple(jobs), tuple(left_out)


def _check_role(role: object, secrets: Mapping[str, str], problems: list[str]) -> Role:
    """The host's role; a gate or worker needs the shared state in PostgreSQL and its password."""
    for allowed in ROLES:
        if role == allowed:
            break
    else:
        problems.append(f"factory_role: {role!r} is not one of {', '.join(ROLES)}")
        return "all"
    if allowed != "all" and "FACTORY_DB_PASSWORD" not in secrets:
        problems.append(f"missing secret: FACTORY_DB_PASSWORD (factory_role is {allowed!r})")
    return allowed


def _check_fleet(data: Mapping[str, Any], config: Mapping[str, Any], problems: list[str]) -> FleetPlace | None:
    """A gate's or worker's place in the fleet, from the host data the fleet file gave it; None for "all"."""
    role = data.get("factory_role", "all")
    if role not in ("gate", "worker"):
        return None
    needed = ["factory_fleet_name", "factory_private_address", "factory_fleet_workers"]
    needed += ["factory_db_host"] if role == "worker" else []
    missing = [k for k in needed if not data.get(k)]
    if missing:
        problems.append(
            f"factory_role {role!r}: a gate or worker is deployed from a fleet file (FACTORY_FLEET, see "
            f"inventory.py), which gives it {', '.join(missing)}"
        )
        return None
    if config.get("state", {}).get("url"):
        problems.append("factory_config: [state] url is set by the deploy on a gate or worker (PostgreSQL on the gate)")
    name, address = data["factory_fleet_name"], data["factory_private_address"]
    workers = data.get("factory_fleet_workers") or {}
    if not isinstance(name, str) or not FLEET_NAME.match(name):
        problems.append(f"factory_fleet_name {name!r}: lower-case letters and digits, a letter first, at most 16")
    for key, value in (("factory_private_address", address), ("factory_db_host", data.get("factory_db_host", ""))):
        if value and address_problem(value):
            problems.append(f"{key} {value!r}: {address_problem(value)}")
    if not isinstance(workers, Mapping) or not all(
        isinstance(k, str) and FLEET_NAME.match(k) and isinstance(v, int) and not isinstance(v, bool) and v >= 1
        for k, v in workers.items()
    ):
        problems.append("factory_fleet_workers: a mapping of worker fleet names to their session counts")
        workers = {}
    if role == "worker" and isinstance(name, str) and workers.get(name) != data["factory_sessions"]:
        problems.append(
            f"factory_sessions: {data['factory_sessions']!r} on worker {name!r}, but the fleet says "
            f"{workers.get(name)!r}: set a worker's sessions in the fleet file"
        )
    return FleetPlace(
        name=str(name),
        private_address=str(address),
        workers={str(k): int(v) for k, v in workers.items()},
        db_host=str(data.get("factory_db_host") or ""),
    )


def with_fleet(config: Mapping[str, Any], role: str, fleet: FleetPlace) -> dict[str, Any]:
    """factory.toml's content with the fleet's keys: [factory] role and host, [fleet] workers, [state] url."""
    out = {section: dict(values) if isinstance(values, Mapping) else values for section, values in config.items()}
    out["factory"] = {**out.get("factory", {}), "role": role, "host": fleet.name}
    out["fleet"] = {"workers": dict(fleet.workers)}
    out["state"] = {**out.get("state", {}), "url": STATE_URLS[role]}
    return out


def _jobs_of_role(
    role: Role, jobs: tuple[Job, ...], left_out: tuple[str, ...]
) -> tuple[tuple[Job, ...], tuple[str, ...]]:
    wanted = ROLE_JOBS[role]
    if wanted is None:
        return jobs, left_out
    elsewhere = [j.name for j in jobs if j.name not in wanted]
    if elsewhere:
        where = "the workers run them" if role == "gate" else "the gate runs them"
        left_out = (*left_out, f"not on a {role} host: {', '.join(elsewhere)} ({where})")
    return tuple(j for j in jobs if j.name in wanted), left_out


def _check_db_clients(clients: object, role: Role, problems: list[str]) -> tuple[str, ...]:
    """The workers' networks, normalised (203.0.113.7 -> 203.0.113.7/32); only a gate admits any."""
    if not isinstance(clients, list | tuple) or not all(isinstance(c, str) for c in clients):
        problems.append("factory_db_clients: a list of the workers' addresses, like ['10.0.0.3', '10.0.1.0/24']")
        return ()
    out: list[str] = []
    for client in clients:
        try:
            network = ipaddress.ip_network(client.strip(), strict=False)
        except ValueError:
            problems.append(f"factory_db_clients: {client!r} is not an IP address or network")
            continue
        if network.num_addresses > 2**16 or network.is_unspecified:
            problems.append(f"factory_db_clients: {client!r} admits too much; name the workers' addresses")
            continue
        out.append(str(network))
    if out and role != "gate":
        problems.append("factory_db_clients: only the gate (factory_role 'gate') runs PostgreSQL and admits clients")
    return tuple(dict.fromkeys(out))


# How many connections the gate's PostgreSQL admits (max_connections): a job process holds one
# connection per thread that reads or writes the state, and one more for each job lock it holds.
# Measured with bench/fleet_day.py (pg_stat_activity every 2 s while the fleet worked).
PG_CONNECTIONS_PER_SESSION = 3  # the loop, its heartbeat thread, its running cycle's lock
PG_CONNECTIONS_PER_WORKER = 4  # the worker's scheduler and its lock (2 measured), a job it launched and its lock
PG_CONNECTIONS_GATE = 100  # PostgreSQL's default, kept for the gate's own jobs (serve's and the bot's
# threads, the review, standup and doctor with their locks) and the commands people run


def pg_max_connections(workers: Mapping[str, int]) -> int:
    """The gate's max_connections for a fleet of `workers` (fleet name -> sessions): PostgreSQL's
    default of 100 runs out below 30 sessions; a fleet of 50 sessions on four workers needs 266."""
    sessions = sum(workers.values())
    return PG_CONNECTIONS_GATE + PG_CONNECTIONS_PER_SESSION * sessions + PG_CONNECTIONS_PER_WORKER * len(workers)


def pg_hba(clients: Sequence[str], database: str = "factory", user: str = "factory") -> str:
    """The gate's pg_hba.conf: local administration by peer, the factory's own jobs on the gate over
    the unix socket and the workers' addresses by scram-sha-256; no line admits anything else.

    An agent's sandbox shares its host's network: on a worker, nftables lets only the relay's user
    (factory-db) open TCP to port 5432 and the sandbox hides the relay's socket; on the gate,
    nftables drops the factory user's TCP to 5432 (its jobs use the socket, which the sandbox hides).
    """
    lines = [
        "# Rendered by the factory's deploy (factory_db_clients). Everything not listed is refused.",
        "local   all        postgres                 peer",
        f"local   {database:<10} {user:<24} scram-sha-256",
    ]
    lines += [f"host    {database:<10} {user:<8} {client:<18} scram-sha-256" for client in clients]
    return "\n".join(lines) + "\n"


def _with_schedules(jobs: tuple[Job, ...], schedules: object, problems: list[str]) -> tuple[Job, ...]:
    """The cron jobs with the schedules host data gives them (five cron fields each)."""
    if not isinstance(schedules, Mapping):
        problems.append('factory_schedules: must be a mapping like {"review": "*/2 * * * *"}')
        return jobs
    cron = {j.name for j in JOBS if j.kind == "cron"}
    for name, schedule in schedules.items():
        if name not in cron:
            problems.append(f"factory_schedules: {name!r} is not a cron job; cron jobs: {', '.join(sorted(cron))}")
        elif not _valid_schedule(schedule):
            problems.append(
                f"factory_schedules.{name}: {schedule!r} is not five cron time fields like '*/2 * * * *' "
                "(digits in range, *, -, / and , only)"
            )
    if any(p.startswith("factory_schedules") for p in problems):
        return jobs
    return tuple(replace(j, schedule=" ".join(str(schedules[j.name]).split())) if j.name in schedules else j
                 for j in jobs)  # fmt: skip


def _valid_schedule(schedule: object) -> bool:
    fields = schedule.split() if isinstance(schedule, str) else []
    if len(fields) != 5:
        return False
    for text, (low, high) in zip(fields, _CRON_LIMITS, strict=True):
        if not _CRON_FIELD.match(text):
            return False
        for part in text.split(","):
            values, _, step = part.partition("/")
            numbers = [int(n) for n in values.split("-") if n != "*"]
            if any(not low <= n <= high for n in numbers) or numbers != sorted(numbers):
                return False
            if step and not 0 < int(step) <= high - low + 1:
                return False
    return True


def _check_scenarios(folder: object, scripted: bool, problems: list[str]) -> Path:
    """The local folder of the scripted agent's scenarios; every file must be there when it is used."""
    if folder is not None and not isinstance(folder, str | Path):
        problems.append(f"factory_scenarios: {folder!r} is not a folder path")
        return DEMO_SCENARIOS
    path = DEMO_SCENARIOS if folder in (None, "") else Path(folder).expanduser()
    if scripted:
        missing = [name for name in SCENARIO_FILES if not (path / name).is_file()]
        if missing:
            problems.append(f"factory_scenarios: {path} has no {' or '.join(missing)} (the scripted agent's scenarios)")
            return path
        for name in SCENARIO_FILES:
            try:
                load_scenario(path / name)
            except ScenarioError as exc:
                problems.append(f"factory_scenarios: {exc}")
    return path


def _plain(value: Any) -> Any:
    """Host data as plain TOML-able values: tuples become lists, mappings dicts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _with_data_key(message: str) -> str:
    """Name the host data key next to the factory.toml key a ConfigError mentions."""
    for (section, key), data_key in FLAT_KEYS.items():
        if f"{section}.{key}" in message:
            return f"{message} (host data: {data_key})"
    return message


def with_detected(checked: Checked, files: Mapping[str, str]) -> tuple[Checked, Detected | None]:
    """`checked` with the repository's detected checks and setup when the host data names no checks.

    The same detection as `factoryctl init` (factoryctl.rules.detect), over the files of the
    clone on the host (`files`: name -> text; empty before the first clone, so the deploy
    after the clone picks them up). Host data that names checks or a setup wins.
    """
    if checked.config.get("checks") or not files:
        return checked, None
    found = detect(files)
    if not found.checks:
        return checked, found
    config = {**checked.config, "checks": [dict(c) for c in found.checks]}
    repo = dict(config.get("repo", {}))
    if found.setup and not repo.get("setup"):
        repo["setup"] = list(found.setup)
        config["repo"] = repo
    settings = settings_from_mapping(config, source="factory.toml (checks detected in the repository)")
    return replace(checked, config=config, settings=settings), found
