"""One factory over several hosts: host names, session names, and which sessions run where.

On one host the sessions are `s1..sN`. In a fleet (`[fleet] workers` not empty) every
session is `<host>-s<i>` (`w1-s1`, `w2-s2`): unique across the fleet, and it says its host.
Pure rules: config.py validates with them, the jobs name, sort and place sessions with them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from factoryctl.core.jobspecs import Role

HOST_MAX = 16
HOST = re.compile(rf"^[a-z][a-z0-9]{{0,{HOST_MAX - 1}}}$")
SESSION = re.compile(r"^(?:(?P<host>[a-z][a-z0-9]{0,15})-)?s(?P<i>[1-9][0-9]{0,3})$")
HOST_RULE = f"lower-case letters and digits, starting with a letter, at most {HOST_MAX} characters"


def check_host(name: str) -> str:
    """`name` if it is a valid host name, else a ValueError saying the rule."""
    if not HOST.match(name):
        raise ValueError(f"host name {name!r} must be {HOST_RULE}")
    return name


def fleet_sessions(workers: Mapping[str, int]) -> tuple[str, ...]:
    """Every session of the fleet, host by host in the order given: `w1-s1, w1-s2, w2-s1`."""
    return tuple(f"{host}-s{i}" for host, count in workers.items() for i in range(1, count + 1))


def host_of(session: str) -> str:
    """The host a session's name says (`w1-s2` -> `w1`); "" for a single host's `s2` (or no session name)."""
    match = SESSION.match(session)
    return (match.group("host") or "") if match else ""


def is_session_name(name: str) -> bool:
    """Whether `name` has the shape of a session's name (`s3` or `w1-s3`)."""
    return SESSION.match(name) is not None


def session_order(name: str) -> tuple[int, str, int, str]:
    """Sort key: `s2` before `s10`, `w1-s9` before `w1-s10` before `w2-s1`; other names last, by name."""
    match = SESSION.match(name)
    if match is None:
        return (1, "", 0, name)
    return (0, match.group("host") or "", int(match.group("i")), "")


def local_sessions(role: Role, host: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """The sessions this host runs: a worker its own, a gate none, a host that is the whole factory all."""
    if role == "gate":
        return ()
    if role == "worker":
        return tuple(n for n in names if host_of(n) == host)
    return names


def check_fleet(role: Role, host: str, workers: Mapping[str, int], url: str) -> None:
    """A gate's or a worker's configuration is complete, else a ValueError naming what is missing."""
    if role == "all":
        return
    missing = [k for k, v in (("[state] url", url), ("[factory] host", host), ("[fleet] workers", workers)) if not v]
    if missing:
        raise ValueError(f"a {role} host needs {', '.join(missing)} (the fleet shares its state in PostgreSQL)")
    if role == "worker" and host not in workers:
        raise ValueError(f"worker host {host!r} is not in [fleet] workers ({', '.join(workers)})")
