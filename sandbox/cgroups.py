"""A cgroup of its own for each nspawn machine.

With --keep-unit on a host without systemd, nspawn puts the machine in `payload/` and
itself in `supervisor/` below its own cgroup. Started from the root cgroup, two
sandboxes would share one `payload/`; so the keeper starts each nspawn in
`factory-sandbox/<name>` of the unified and the name=systemd hierarchies.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from .mounts import MOUNTINFO

GROUP = "factory-sandbox"


def parse_hierarchies(mountinfo: str) -> list[Path]:
    """Mount points of the cgroup hierarchies systemd uses (cgroup2, name=systemd)."""
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        fstype, options = fields[sep + 1], fields[sep + 3] if len(fields) > sep + 3 else ""
        if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in options.split(",")):
            found.append(Path(fields[4]))
    return found


def dirs(name: str) -> list[Path]:
    return [h / GROUP / name for h in parse_hierarchies(MOUNTINFO.read_text())]


def create(name: str) -> list[Path]:
    paths = dirs(name)
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
    return paths


def kill(name: str) -> None:
    """SIGKILL everything in the sandbox's cgroup at once (cgroup v2's cgroup.kill)."""
    for path in dirs(name):
        with contextlib.suppress(OSError):
            (path / "cgroup.kill").write_text("1")


def remove(name: str) -> None:
    """Remove the sandbox's cgroups, deepest first (only empty cgroups can go)."""
    for path in dirs(name):
        if not path.exists():
            continue
        subdirs = sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for sub in [*subdirs, path]:
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # factory-sandbox/, once the last sandbox is gone


def present(name: str) -> list[str]:
    return [f"cgroup {p}" for p in dirs(name) if p.exists()]
