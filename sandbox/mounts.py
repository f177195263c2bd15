"""Mounts: the tmpfs roots, the chroot's /proc and /dev, and finding what is left."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

from . import runner

log = logging.getLogger("sandbox")

MOUNTINFO = Path("/proc/self/mountinfo")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \040, \011, \012, \134.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[str]:
    """Mount points, in mount order, from the text of /proc/self/mountinfo."""
    return [_unescape(line.split()[4]) for line in text.splitlines() if len(line.split()) > 4]


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below path (deepest last, as mounted)."""
    base = str(path.resolve()) if path.exists() else str(path)
    points = parse_mountinfo(MOUNTINFO.read_text())
    return [p for p in points if p == base or p.startswith(base.rstrip("/") + "/")]


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    runner.run(["mount", "-t", "tmpfs", "-o", f"mode=755,size={size}", "tmpfs", str(path)])


def unmount_tree(path: Path) -> None:
    """Unmount everything at or below path, deepest first; lazily if a mount is busy."""
    for _ in range(3):
        points = mounts_under(path)
        if not points:
            return
        for point in reversed(points):
            done = runner.run(["umount", point], check=False)
            if not done.ok and point in mounts_under(path):
                log.warning("umount %s failed (%s); detaching it lazily", point, done.tail())
                runner.run(["umount", "-l", point], check=False)


@contextlib.contextmanager
def chroot_mounts(root: Path) -> Iterator[None]:
    """/proc and /dev inside root while package scripts run in a plain chroot."""
    try:
        runner.run(["mount", "-t", "proc", "proc", str(root / "proc")])
        runner.run(["mount", "--bind", "/dev", str(root / "dev")])
        yield
    finally:
        for sub in ("dev", "proc"):
            if mounts_under(root / sub):
                unmount_tree(root / sub)
