"""Render templates/ with one Jinja environment: the deploy uploads exactly what the tests check.

Filters make every value safe where it lands: `shq` quotes for sh, `toml` writes a TOML
value, `tojson` (Jinja's) a JavaScript one, `cron` escapes what cron treats specially.
Undefined names are errors, so a template cannot silently render an empty value.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jinja2

from factoryctl.core.jobspecs import Job
from factoryctl.core.paths import tmux_socket

from . import hostdata, layout
from .hostdata import Checked

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# Every rendered file: template -> where the deploy puts it.
FILES = {
    "factory.toml.j2": layout.CONFIG_FILE,
    "secrets.env.j2": layout.SECRETS_FILE,
    "ecosystem.config.js.j2": layout.ECOSYSTEM,
    "cron.j2": layout.CRON_FILE,
    "factory-tmux.sh.j2": layout.TMUX,
    "factory-run.sh.j2": layout.RUN,
    "logrotate.j2": layout.LOGROTATE_FILE,
    "pm2-factory.service.j2": layout.PM2_UNIT_FILE,
    "origin-update-hook.sh.j2": f"{layout.SAMPLE_ORIGIN}/hooks/update",  # the demo's local origin only
}
# What a gate or a worker gets besides: role -> {template: where the deploy puts it}.
FLEET_FILES: dict[str, dict[str, str]] = {
    "gate": {
        "nftables.nft.j2": layout.NFT_FILE,
        "factory-nftables.service.j2": layout.NFT_UNIT_FILE,
        "postgresql-factory.conf.j2": f"/etc/postgresql/VERSION/main/conf.d/{layout.PG_CONF_NAME}",
    },
    "worker": {
        "nftables.nft.j2": layout.NFT_FILE,
        "factory-nftables.service.j2": layout.NFT_UNIT_FILE,
        "factory-db-relay.service.j2": layout.RELAY_UNIT_FILE,
    },
}


def toml_value(value: Any) -> str:
    """One TOML value: strings are basic strings (JSON's escapes are TOML's), lists arrays."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, keys quoted
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def cron_escape(text: str) -> str:
    """cron turns an unescaped % into a newline (and what follows into stdin)."""
    if "\n" in text:
        raise ValueError("a cron line cannot hold a line break")
    return text.replace("%", "\\%")


def shell_join(argv: Iterable[str]) -> str:
    return shlex.join(argv)


ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)
ENV.filters.update(shq=shlex.quote, shjoin=shell_join, toml=toml_value, cron=cron_escape)


def render(template: str, context: dict[str, Any]) -> str:
    return ENV.get_template(template).render(context)


def job_argv(job: Job, session: str = "") -> list[str]:
    return ["factoryctl", *(arg.replace("{session}", session) for arg in job.argv)]


def context(checked: Checked, *, systemd: bool = True) -> dict[str, Any]:
    """What every template may use: the layout, the validated host data and the deployed jobs."""
    loop = next((j for j in checked.jobs if j.kind == "tmux"), None)
    sessions = checked.session_names if loop else ()
    fleet = checked.fleet
    return {
        "user": layout.USER,
        "group": layout.GROUP,
        "home": layout.HOME,
        "factory_home": layout.FACTORY_HOME,
        "tmux_socket": tmux_socket(Path(layout.FACTORY_HOME)),
        "pm2_home": layout.PM2_HOME,
        "path": layout.PATH,
        "run": layout.RUN,
        "layout_script": layout.TMUX,
        "secrets_file": layout.SECRETS_FILE,
        "logs_dir": layout.LOGS_DIR,
        "umask": layout.UMASK,
        "locks_dir": layout.LOCKS_DIR,
        "gate_key": layout.GATE_KEY,
        "main_branch": checked.repo.branch,
        "systemd": systemd,
        "config": checked.config,
        "secrets": checked.secrets,
        "pm2_apps": [_pm2_app(job) for job in checked.jobs_of("pm2")],
        "cron_jobs": [_cron_job(job) for job in checked.jobs_of("cron")],
        "sessions": [
            {"name": f"factory-{s}", "session": s, "argv": job_argv(loop, s)} for s in sessions if loop is not None
        ],
        # Several hosts: this one's place in the fleet (empty on a host that runs the whole factory).
        "role": checked.role,
        "private_address": fleet.private_address if fleet else "",
        "db_host": fleet.db_host if fleet else "",
        "db_clients": [_address_of(c) for c in checked.db_clients],
        "pg_port": layout.PG_PORT,
        "max_connections": hostdata.pg_max_connections(fleet.workers) if fleet else 0,
        "relay_user": layout.RELAY_USER,
        "relay_dir": layout.RELAY_DIR,
        "nft_file": layout.NFT_FILE,
    }


def _address_of(network: str) -> dict[str, str]:
    """A client network for nftables: its family keyword (ip or ip6) and the network."""
    return {"family": "ip6" if ":" in network else "ip", "network": network}


def render_all(checked: Checked, *, systemd: bool = True) -> dict[str, str]:
    """template name -> rendered text, for every file in FILES."""
    ctx = context(checked, systemd=systemd)
    return {name: render(name, ctx) for name in FILES}


def render_fleet(checked: Checked) -> dict[str, str]:
    """template name -> rendered text, for what this gate or worker gets beside FILES (none for "all")."""
    ctx = context(checked)
    return {name: render(name, ctx) for name in FLEET_FILES.get(checked.role, {})}


def _pm2_app(job: Job) -> dict[str, Any]:
    return {"name": f"factory-{job.name}", "args": job_argv(job), "log": f"{layout.LOGS_DIR}/{job.name}.log"}


def _cron_job(job: Job) -> dict[str, Any]:
    return {
        "name": job.name,
        "schedule": job.schedule,
        "argv": job_argv(job),
        "lock": f"{layout.LOCKS_DIR}/cron-{job.name}.lock",
        "log": f"{layout.LOGS_DIR}/{job.name}.log",
    }


def pm2_app_names(jobs: Sequence[Job]) -> list[str]:
    return [f"factory-{j.name}" for j in jobs if j.kind == "pm2"]
