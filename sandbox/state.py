"""Where a sandbox keeps its state, and the state itself (one JSON file, replaced atomically)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import SandboxError
from .privnet import Membership

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def check_name(name: str, what: str = "sandbox") -> str:
    """A sandbox name is also its hostname, ssh alias and part of interface names; a
    network's name is part of its namespace's, under the same rules."""
    if not NAME_RE.match(name) or name.endswith("-"):
        raise SandboxError(f"bad {what} name {name!r}: use 1-31 of a-z, 0-9 and '-', starting with a letter")
    return name


@dataclass(frozen=True)
class Layout:
    """The paths of one sandbox under the state base directory."""

    base: Path
    name: str

    @property
    def dir(self) -> Path:
        return self.base / self.name

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def ssh_config(self) -> Path:
        return self.dir / "ssh_config"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    @property
    def lock(self) -> Path:
        return self.base / ".lock"


@dataclass(frozen=True)
class State:
    """What `up` decided and started; `down`, `status` and `ssh` read it."""

    name: str
    backend: str  # "nspawn" or "chroot"
    index: int
    image: str
    key: str
    created_at: str
    launcher_pid: int | None = None  # systemd-nspawn, or unshare for the chroot fallback
    launcher_start: int | None = None
    init_pid: int | None = None  # the machine's PID 1, seen from the host
    init_start: int | None = None
    pidns: int | None = None
    booted_at: str | None = None
    boots: int = 0
    network: str | None = None  # the private network it is on (privnet.py), if any
    network_index: int | None = None
    private_host: int | None = None

    @property
    def membership(self) -> Membership | None:
        if self.network is None or self.network_index is None or self.private_host is None:
            return None
        return Membership(self.network, self.name, self.network_index, self.private_host)

    def replace(self, **changes: object) -> State:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def load(layout: Layout) -> State | None:
    try:
        data = json.loads(layout.state_file.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SandboxError(f"{layout.state_file} is unreadable ({exc}): `down --name {layout.name}` cleans up") from exc
    known = {f.name for f in dataclasses.fields(State)}
    return State(**{k: v for k, v in data.items() if k in known})


def save(layout: Layout, state: State) -> None:
    """Write the state to a temp file in the same folder, then replace the old one."""
    layout.dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state-", dir=layout.dir)
    with os.fdopen(fd, "w") as f:
        json.dump(dataclasses.asdict(state), f, indent=2)
        f.write("\n")
    os.replace(tmp, layout.state_file)


def names(base: Path) -> list[str]:
    """Every sandbox that has a state directory."""
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and NAME_RE.match(p.name))


def memberships(base: Path) -> list[Membership]:
    """Every sandbox's place on a private network."""
    found = []
    for name in names(base):
        state = load(Layout(base, name))
        if state is not None and state.membership is not None:
            found.append(state.membership)
    return found


def reserved_indexes(base: Path) -> set[int]:
    found = set()
    for name in names(base):
        state = load(Layout(base, name))
        if state is not None:
            found.add(state.index)
    return found
