"""Host entries as the deployer writes them: `[user@]host[:port]` (FACTORY_HOSTS, a fleet file's `ssh`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
