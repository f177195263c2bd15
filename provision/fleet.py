"""A factory over several hosts, from a fleet file (FACTORY_FLEET): one gate, any number of workers.

`parse_fleet(text)` is pure: the file's TOML in, a `Fleet` out, or one FleetError naming
every mistake. `fleet_host_data(fleet)` computes what each host's deploy needs to know of
the others: the gate admits the workers' private addresses, a worker reaches the gate's.

    demo = false                      # true: the scripted agent on the bundled sample (inventory's DEMO)

    [[host]]
    ssh = "root@203.0.113.7"          # how the deployer reaches it: [user@]host[:port]
    role = "gate"
    private_address = "10.0.0.2"      # where the workers reach it (PostgreSQL, the demo's origin)

    [[host]]
    ssh = "root@203.0.113.8"
    role = "worker"
    name = "w1"                       # its fleet name (default: gate, w1, w2, ... in file order)
    private_address = "10.0.0.3"      # the gate's PostgreSQL admits it from this address only
    sessions = 4                      # its agents: w1-s1 .. w1-s4

`ssh_config = "PATH"` beside `ssh = "ALIAS"` reaches a host through an ssh config file
(the local sandbox hosts are reached that way).
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .hosts import parse_host

FleetRole = Literal["gate", "worker"]
FLEET_ROLES: tuple[FleetRole, ...] = ("gate", "worker")
NAME = re.compile(r"^[a-z][a-z0-9]{0,15}$")  # a fleet name: also the prefix of its sessions' names
HOST_KEYS = ("ssh", "ssh_config", "role", "name", "private_address", "sessions")
TOP_KEYS = ("demo", "host")
MAX_SESSIONS = 64  # as factoryctl's [factory] sessions


class FleetError(ValueError):
    """The fleet file cannot make a factory; the message names every mistake, on one line."""


@dataclass(frozen=True)
class FleetHost:
    """One `[[host]]` of the fleet file, checked."""

    name: str  # the fleet name: pyinfra's name for the host, and its sessions' prefix
    role: FleetRole
    ssh: str  # [user@]host[:port], or an alias of `ssh_config`
    private_address: str
    sessions: int = 0  # workers only
    ssh_config: str | None = None


@dataclass(frozen=True)
class Fleet:
    hosts: tuple[FleetHost, ...]
    demo: bool = False

    @property
    def gate(self) -> FleetHost:
        return next(h for h in self.hosts if h.role == "gate")

    @property
    def workers(self) -> tuple[FleetHost, ...]:
        return tuple(h for h in self.hosts if h.role == "worker")


def parse_fleet(text: str, *, default_sessions: int = 8) -> Fleet:
    """The fleet file's text -> a Fleet; FleetError lists every mistake (one line)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FleetError(f"not valid TOML: {exc}") from None
    problems = [f"unknown key {k!r} (allowed: {', '.join(TOP_KEYS)})" for k in data if k not in TOP_KEYS]
    demo = data.get("demo", False)
    if not isinstance(demo, bool):
        problems.append("demo: true or false")
    entries = data.get("host", [])
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise FleetError("; ".join([*problems, "no hosts: add one [[host]] table per host"]))
    hosts: list[FleetHost] = []
    workers = 0
    for index, entry in enumerate(entries, 1):
        if entry.get("role") == "worker":
            workers += 1
        host = _host(entry, index, workers, default_sessions, problems)
        if host is not None:
            hosts.append(host)
    gates = [h for h in hosts if h.role == "gate"]
    if len(gates) != 1 and not any("role" in p for p in problems):
        problems.append(f"exactly one host has role 'gate' (found {len(gates)})")
    if gates and len(gates) == len(hosts) and not any("role" in p for p in problems):
        problems.append("no workers: add a [[host]] with role 'worker' (the agents run there)")
    for what, values in (
        ("name", [h.name for h in hosts]),
        ("private_address", [h.private_address for h in hosts]),
        ("ssh", [f"{h.ssh_config or ''}:{h.ssh}" for h in hosts]),
    ):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            shown = ", ".join(repr(v.partition(":")[2] if what == "ssh" else v) for v in repeated)
            problems.append(f"{what} must be unique: {shown} is given twice")
    if problems:
        raise FleetError("; ".join(problems))
    return Fleet(hosts=tuple(hosts), demo=demo)


def _host(
    entry: Mapping[str, Any], index: int, worker_index: int, default_sessions: int, problems: list[str]
) -> FleetHost | None:
    where = f"host {index}"
    before = len(problems)
    role = entry.get("role")
    if role not in FLEET_ROLES:
        problems.append(f"{where}: role {role!r} is not 'gate' or 'worker'")
        return None
    default_name = "gate" if role == "gate" else f"w{worker_index}"
    name = entry.get("name", default_name)
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(f"{where}: name {name!r}: lower-case letters and digits, a letter first, at most 16")
    else:
        where = f"host {name!r}"
    unknown = [k for k in entry if k not in HOST_KEYS]
    if unknown:
        problems.append(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(HOST_KEYS)})")
    ssh = entry.get("ssh")
    ssh_config = entry.get("ssh_config")
    if not isinstance(ssh, str) or not ssh.strip():
        problems.append(f'{where}: ssh is missing: how to reach it, like "root@203.0.113.7"')
    elif ssh_config is None:
        problem = _ssh_problem(ssh)
        if problem:
            problems.append(f"{where}: ssh {problem}")
    elif not isinstance(ssh_config, str) or not Path(ssh_config).expanduser().is_file():
        problems.append(f"{where}: ssh_config {ssh_config!r}: no such file")
    address = entry.get("private_address")
    problem = address_problem(address)
    if problem:
        problems.append(f"{where}: private_address {address!r}: {problem}")
    sessions = entry.get("sessions", default_sessions if role == "worker" else 0)
    if role == "gate" and "sessions" in entry:
        problems.append(f"{where}: sessions: the gate runs no agents; give sessions to the workers")
    elif role == "worker" and (isinstance(sessions, bool) or not isinstance(sessions, int)
                               or not 1 <= sessions <= MAX_SESSIONS):  # fmt: skip
        problems.append(f"{where}: sessions {sessions!r}: a whole number from 1 to {MAX_SESSIONS}")
    if len(problems) > before:
        return None
    return FleetHost(
        name=str(name),
        role=role,
        ssh=str(ssh).strip(),
        private_address=str(ipaddress.ip_address(str(address))),
        sessions=int(sessions),
        ssh_config=str(Path(ssh_config).expanduser()) if ssh_config else None,
    )


def _ssh_problem(ssh: str) -> str | None:
    try:
        parse_host(ssh)
    except ValueError as exc:
        return str(exc)
    return None


def address_problem(address: object) -> str | None:
    """Why `address` cannot be a host's private address (one IP the others reach it at), or None."""
    if not isinstance(address, str):
        return 'missing: the address the other hosts reach this one at, like "10.0.0.2"'
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return "not an IP address (one address, no network or port)"
    if ip.is_unspecified or ip.is_loopback or ip.is_multicast or ip.is_link_local:
        return "not an address other hosts can reach (unspecified, loopback, multicast or link-local)"
    return None


def fleet_host_data(fleet: Fleet) -> dict[str, dict[str, Any]]:
    """Fleet name -> the host data its deploy needs of the fleet (hostdata.py checks it)."""
    workers = {w.name: w.sessions for w in fleet.workers}
    gate = fleet.gate
    out: dict[str, dict[str, Any]] = {}
    for host in fleet.hosts:
        data: dict[str, Any] = {
            "factory_role": host.role,
            "factory_fleet_name": host.name,
            "factory_private_address": host.private_address,
            "factory_fleet_workers": dict(workers),
        }
        if host.role == "gate":
            data["factory_db_clients"] = [w.private_address for w in fleet.workers]
        else:
            data["factory_db_host"] = gate.private_address
            data["factory_sessions"] = host.sessions
        out[host.name] = data
    return out


def fleet_file(members: Sequence[tuple[str, str, str, int]], ssh_configs: Mapping[str, str], *,
               demo: bool = True) -> str:  # fmt: skip
    """A fleet file's text for hosts reached through ssh configs: (alias, role, private address,
    sessions) each; sessions are ignored for the gate. The inventory's `sandbox_fleet` uses it."""
    lines = [f"demo = {'true' if demo else 'false'}"]
    for alias, role, address, sessions in members:
        lines += ["", "[[host]]", f"ssh = {_q(alias)}", f"ssh_config = {_q(ssh_configs[alias])}",
                  f"role = {_q(role)}", f"private_address = {_q(address)}"]  # fmt: skip
        if role == "worker":
            lines.append(f"sessions = {int(sessions)}")
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    import json

    return json.dumps(str(text))
