"""Where the factory is deployed and with what: `pyinfra inventory.py deploy.py` (`--dry` first).

Hosts: FACTORY_HOSTS, comma-separated `[user@]host[:port]` (user root when not given), and
the SSH key from FACTORY_SSH_KEY (else ssh's defaults and agent). Without FACTORY_HOSTS the
target is the local sandbox host (`python -m sandbox up`; FACTORY_SANDBOX_NAME picks one)
with the DEMO host data: the scripted agent on the bundled sample repository.

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
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyinfra
from pyinfra.api.exceptions import InventoryError

from factoryctl.core.secrets import secret_problems
from provision import hostdata, layout

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
    # Several hosts as one factory (the foundation: see the README's "Beyond one host"): "all" runs
    # the whole factory here; "gate" the merge gate, scheduler, standup, doctor, bot and serve;
    # "worker" the agents' loops and a scheduler for its own sessions. A gate or worker needs
    # factory_config={"state": {"url": "postgresql://factory@GATE:5432/factory"}} and FACTORY_DB_PASSWORD.
    "factory_role": "all",
    # On the gate: the workers' addresses PostgreSQL admits (scram-sha-256), e.g. ["10.0.0.3", "10.0.0.4"].
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

_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]+$")


@dataclass(frozen=True)
class HostSpec:
    """One FACTORY_HOSTS entry."""

    host: str
    user: str = "root"
    port: int = 22

    @property
    def name(self) -> str:
        """The host's name in pyinfra's output (unique per host and port)."""
        return self.host if self.port == 22 else f"{self.host}:{self.port}"


def parse_host(entry: str) -> HostSpec:
    """`[user@]host[:port]` (an IPv6 address in brackets); ValueError says what is wrong."""
    text = entry.strip()
    if not text:
        raise ValueError("an empty entry")
    user, at, rest = text.rpartition("@")
    if at and not _USER.match(user):
        raise ValueError(f"{entry!r}: bad user {user!r}")
    port_text = ""
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or not _IPV6.match(host) or (tail and not tail.startswith(":")):
            raise ValueError(f"{entry!r}: an IPv6 address goes in brackets, like [2001:db8::1]:22")
        port_text = tail[1:]
        if tail and not port_text:
            raise ValueError(f"{entry!r}: empty port")
    else:
        host, colon, port_text = rest.partition(":")
        if colon and not port_text:
            raise ValueError(f"{entry!r}: empty port")
        if not _valid_hostname(host):
            raise ValueError(f"{entry!r}: bad host name {host!r}")
    port = 22
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{entry!r}: bad port {port_text!r} (1-65535)")
        port = int(port_text)
    return HostSpec(host=host, user=user or "root", port=port)


def parse_hosts(text: str) -> list[HostSpec]:
    """FACTORY_HOSTS -> host specs; ValueError names every malformed or repeated entry."""
    problems: list[str] = []
    specs: list[HostSpec] = []
    for entry in text.split(","):
        try:
            spec = parse_host(entry)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if any(s.name == spec.name for s in specs):
            problems.append(f"{entry.strip()!r}: listed twice")
        specs.append(spec)
    if problems:
        raise ValueError("; ".join(problems))
    return specs


def _valid_hostname(host: str) -> bool:
    if _IPV4.match(host):
        return all(int(part) < 256 for part in host.split("."))
    return 0 < len(host) <= 253 and all(_LABEL.match(label) for label in host.rstrip(".").split("."))


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


def build(environ: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Hosts with their connection data from the environment; InventoryError for a malformed entry
    or a secret that would not work on the host (checked again, with the host data, by deploy.py)."""
    problems = secret_problems(environ)
    if problems:
        raise InventoryError("; ".join(problems))
    text = environ.get(HOSTS_ENV, "").strip()
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
