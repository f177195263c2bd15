"""Where the factory is deployed and with what: `pyinfra inventory.py deploy.py` (`--dry` first).

Hosts: FACTORY_HOSTS, comma-separated `[user@]host[:port]` (user root when not given), and
the SSH key from FACTORY_SSH_KEY (else ssh's defaults and agent). Without FACTORY_HOSTS the
target is the local sandbox host (`python -m sandbox up`; FACTORY_SANDBOX_NAME picks one)
with the DEMO host data: the scripted agent on the bundled sample repository.

Several hosts as one factory: FACTORY_FLEET, a fleet file (TOML; provision/fleet.py has the
format) with one `[[host]]` per host: `ssh`, `role` ("gate": the merge gate, its jobs and
PostgreSQL; "worker": agents' loops), `private_address` (where the others reach it), `name`
(its fleet name) and, for a worker, `sessions`. Exactly one gate. The inventory gives each host
what its deploy needs of the others (factory_role, factory_fleet_name, factory_private_address,
factory_fleet_workers; on the gate factory_db_clients, on a worker factory_db_host and
factory_sessions). `sandbox_fleet()` writes one for local sandbox hosts.

Host data: DEFAULTS below, in this one place. Change them here, in a `group_data/factory.py`
of your own, or per deploy: `--data factory_sessions=4 --data factory_repo_url=https://...`.

Secrets come only from the environment, never from this repository: ANTHROPIC_API_KEY or
CLAUDE_CODE_OAUTH_TOKEN (mandatory unless agent and reviewer are the scripted agent),
TELEGRAM_BOT_TOKEN (the bot), FACTORY_HTTP_TOKEN (the HTTP triggers) and FACTORY_DEPLOY_KEY
(a key file, for ssh repository URLs); provision/hostdata.py says what each one enables.
A malformed host entry or a secret of the wrong shape (factoryctl.core.secrets: e.g. a
FACTORY_HTTP_TOKEN shorter than `serve` accepts) stops pyinfra here, before it connects;
wrong host data or a missing secret stops it as deploy.py starts (it sees the final host
data), in both cases before anything changes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyinfra
from pyinfra.api.exceptions import InventoryError

from factoryctl.core.secrets import secret_problems
from provision import hostdata, layout
from provision.fleet import FleetError, fleet_file, fleet_host_data, parse_fleet
from provision.hosts import parse_host, parse_hosts

_CLAUDE = ["claude", "-p", "--model", "sonnet"]
# The agent streams (live progress) and may edit and run commands: the sandbox is the boundary.
_AGENT = [*_CLAUDE, "--output-format", "stream-json", "--verbose", "--permission-mode", "bypassPermissions"]

DEFAULTS: dict[str, Any] = {
    # Agents: s1..sN, each a tmux session factory-sN running `factoryctl loop sN`.
    "factory_sessions": 8,
    # The target repository, cloned into ~factory/factory/repo; its origin is the shared remote.
    # An ssh URL (git@github.com:you/app.git) needs FACTORY_DEPLOY_KEY; "sample" is the demo's.
    "factory_repo_url": "",
    # The branch the factory protects: only reviewed, tested merges land on it.
    "factory_repo_branch": "main",
    # The coding agent: argv, the prompt on stdin, run in the session's worktree.
    "factory_agent_command": [*_AGENT, "--max-turns", "40", "--max-budget-usd", "2"],
    # The reviewer: review, standup, doctor and bot calls.
    "factory_reviewer_command": [*_CLAUDE, "--output-format", "json", "--max-turns", "3"],
    # Checks run before and after every change, e.g.
    # {"name": "tsc", "command": ["npx", "tsc", "--noEmit"], "parser": "tsc", "heavy": True}.
    "factory_checks": [],
    # Agent spend per day (USD); the scheduler stops assigning work beyond it.
    "factory_budget_daily_usd": 20.0,
    # Telegram chats the bot answers (needs TELEGRAM_BOT_TOKEN); empty answers no one.
    "factory_telegram_chat_ids": [],
    # HTTP triggers and status page (needs FACTORY_HTTP_TOKEN): keep it on loopback.
    "factory_http_bind": "127.0.0.1:8787",
    # Any other factory.toml key, as {"section": {"key": value}} (runtime/factoryctl/core/config.py).
    "factory_config": {},
    # Node tools, pinned (Debian 12's Node 18 runs both; Claude Code only warns about engines).
    "factory_pm2_version": "7.0.4",
    "factory_claude_code_version": "2.1.330",
    # Jobs to deploy; None: every job (factoryctl.core.jobspecs.JOBS), those whose secret is set.
    "factory_jobs": None,
    # Cron schedules replacing the design's, e.g. {"review": "*/30 * * * *"} (five cron fields).
    "factory_schedules": {},
    # The scripted agent's scenarios (agent.json, reviewer.json): a local folder; None: templates/demo.
    "factory_scenarios": None,
    # How Claude Code reaches its model, when not the Anthropic API with a key (see the README):
    # {"ANTHROPIC_BASE_URL": "https://gateway.example"} for a gateway, or
    # {"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "us-east-1"} (AWS credentials from the environment).
    "factory_model_env": {},
    # The server's certificate and proxy settings for repo.setup (uv ignores the system's CA store), e.g.
    # {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "HTTPS_PROXY": "http://proxy:3128"}.
    "factory_setup_env": {},
    # Several hosts as one factory: "all" runs the whole factory here; "gate" the merge gate,
    # scheduler, standup, doctor, bot, serve and PostgreSQL; "worker" the agents' loops and a
    # scheduler for its own sessions. Gates and workers come from a fleet file (FACTORY_FLEET), which
    # also sets factory_fleet_name, factory_private_address, factory_fleet_workers, factory_db_host and
    # factory_db_clients (the workers' addresses the gate's PostgreSQL admits); they need FACTORY_DB_PASSWORD.
    "factory_role": "all",
    "factory_db_clients": [],
}

# The sandbox demo: no credentials, the scripted agent on the bundled sample repository.
DEMO: dict[str, Any] = {
    "factory_sessions": 2,
    "factory_repo_url": hostdata.SAMPLE_REPO,
    "factory_agent_command": [layout.SCRIPTED_AGENT, "--scenario", f"{layout.DEMO_DIR}/agent.json"],
    "factory_reviewer_command": [layout.SCRIPTED_AGENT, "--scenario", f"{layout.DEMO_DIR}/reviewer.json"],
    "factory_checks": [
        {
            "name": "unittest",
            "command": ["python3", "-m", "unittest", "discover", "-s", "tests", "-t", ".", "-q"],
            "parser": "exitcode",
            "timeout_s": 120,
        }
    ],
    "factory_budget_daily_usd": 5.0,
    "factory_config": {"cycle": {"interval_s": 60}},
}

HOSTS_ENV = "FACTORY_HOSTS"
SSH_KEY_ENV = "FACTORY_SSH_KEY"
SANDBOX_NAME_ENV = "FACTORY_SANDBOX_NAME"
FLEET_ENV = "FACTORY_FLEET"


def sandbox_host(environ: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """The local sandbox host (its ssh config, written by `python -m sandbox up`)."""
    from sandbox.defaults import default_name
    from sandbox.lifecycle import layout_of

    name = environ.get(SANDBOX_NAME_ENV) or default_name()
    ssh_config = layout_of(name).ssh_config
    if not ssh_config.is_file():
        raise InventoryError(
            f"no {HOSTS_ENV} and the sandbox host {name!r} is not up: "
            f"run `python -m sandbox up --name {name}`, or set {HOSTS_ENV} to deploy to your servers"
        )
    return name, {"ssh_config_file": str(ssh_config), **DEMO}


def sandbox_fleet(members: Sequence[tuple[str, str, str, int]]) -> str:
    """A fleet file's text for local sandbox hosts (`python -m sandbox up`), the demo's data on them:
    (sandbox name, role, private address, sessions) each. Write it to a file and deploy it with
    FACTORY_FLEET=FILE, as a user deploys theirs; InventoryError if a sandbox is not up."""
    from sandbox.lifecycle import layout_of

    configs = {name: str(layout_of(name).ssh_config) for name, *_ in members}
    down = [name for name, path in configs.items() if not Path(path).is_file()]
    if down:
        raise InventoryError(f"the sandbox host {down[0]!r} is not up: run `python -m sandbox up --name {down[0]}`")
    return fleet_file(members, configs, demo=True)


def fleet_hosts(path: str, environ: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """The hosts of a fleet file, each with its connection data and what its deploy needs of the fleet."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError(f"{FLEET_ENV}={path}: cannot read it: {exc.strerror}") from None
    try:
        fleet = parse_fleet(text, default_sessions=int(DEFAULTS["factory_sessions"]))
    except FleetError as exc:
        raise InventoryError(f"{FLEET_ENV}={path}: {exc}") from None
    key = environ.get(SSH_KEY_ENV, "").strip()
    if key and not Path(key).expanduser().is_file():
        raise InventoryError(f"{SSH_KEY_ENV}={key}: no such file")
    computed = fleet_host_data(fleet)
    hosts = []
    for member in fleet.hosts:
        data: dict[str, Any] = {**(DEMO if fleet.demo else {}), **computed[member.name]}
        if member.ssh_config:
            data |= {"ssh_hostname": member.ssh, "ssh_config_file": member.ssh_config}
        else:
            spec = parse_host(member.ssh)
            data |= {"ssh_hostname": spec.host, "ssh_port": spec.port, "ssh_user": spec.user}
        if key:
            data["ssh_key"] = str(Path(key).expanduser())
        hosts.append((member.name, data))
    return hosts


def build(environ: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Hosts with their connection data from the environment; InventoryError for a malformed entry
    or a secret that would not work on the host (checked again, with the host data, by deploy.py)."""
    problems = secret_problems(environ)
    if problems:
        raise InventoryError("; ".join(problems))
    text = environ.get(HOSTS_ENV, "").strip()
    fleet = environ.get(FLEET_ENV, "").strip()
    if fleet and text:
        raise InventoryError(f"{FLEET_ENV} and {HOSTS_ENV} are both set: a fleet file names every host; unset one")
    if fleet:
        return fleet_hosts(fleet, environ)
    if not text:
        hosts = [sandbox_host(environ)]
    else:
        try:
            specs = parse_hosts(text)
        except ValueError as exc:
            raise InventoryError(f"{HOSTS_ENV}: {exc} (expected [user@]host[:port], comma-separated)") from None
        key = environ.get(SSH_KEY_ENV, "").strip()
        if key and not Path(key).expanduser().is_file():
            raise InventoryError(f"{SSH_KEY_ENV}={key}: no such file")
        hosts = []
        for spec in specs:
            data: dict[str, Any] = {"ssh_hostname": spec.host, "ssh_port": spec.port, "ssh_user": spec.user}
            if key:
                data["ssh_key"] = str(Path(key).expanduser())
            hosts.append((spec.name, data))
    return hosts


if pyinfra.is_cli:  # pyinfra is loading the inventory (an import, as in the tests, only defines the above)
    # The one group: its data are the defaults; each host's own data override them.
    factory = (build(os.environ), DEFAULTS)
