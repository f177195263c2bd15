"""Processes, read straight from /proc: who belongs to a sandbox, and ending them.

A pid alone can be reused, so a process is named by (pid, start time). A sandbox's
processes are found by what they share with it (pid namespace, network namespace, root
directory), so they are found even when their launcher is long gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


def parse_stat(text: str) -> tuple[int, int]:
    """(ppid, start time in clock ticks) from the text of /proc/PID/stat."""
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19])


def stat(pid: int) -> tuple[int, int] | None:
    try:
        return parse_stat((PROC / str(pid) / "stat").read_text())
    except (OSError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    st = stat(pid)
    return None if st is None else st[1]


def is_zombie(pid: int) -> bool:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2 :].startswith("Z")


def alive(pid: int | None, started: int | None) -> bool:
    """True while the process (pid, start time) exists and is not a zombie."""
    if not pid:
        return False
    reap(pid)
    return start_time(pid) == started and not is_zombie(pid)


def reap(pid: int) -> None:
    """Collect our own exited child, so that it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pids() -> list[int]:
    return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()]


def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in (PROC / str(pid) / "task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def ns_inode(pid: int | str, kind: str) -> int | None:
    """The inode of a process's namespace of this kind ("pid", "net", "mnt")."""
    try:
        link = os.readlink(PROC / str(pid) / "ns" / kind)
    except OSError:
        return None
    return int(link[link.index("[") + 1 : -1])


def root_of(pid: int) -> str | None:
    try:
        return os.readlink(PROC / str(pid) / "root")
    except OSError:
        return None


@dataclass(frozen=True)
class Marks:
    """What the processes of one sandbox have in common."""

    launcher: int | None = None
    pidns: int | None = None
    netns: int | None = None
    root: str | None = None


def belongs(pid: int, marks: Marks, self_netns: int | None) -> bool:
    if pid == marks.launcher:
        return True
    if marks.pidns is not None and ns_inode(pid, "pid") == marks.pidns:
        return True
    # The host's own network namespace never counts, whatever the state file says.
    if marks.netns is not None and marks.netns != self_netns and ns_inode(pid, "net") == marks.netns:
        return True
    if marks.root:
        root = root_of(pid)
        if root is not None and (root == marks.root or root.startswith(marks.root + "/")):
            return True
    return False


def members(marks: Marks) -> list[int]:
    """Every live process that belongs to the sandbox with these marks (never us)."""
    me = os.getpid()
    self_netns = ns_inode("self", "net")
    found = []
    for pid in pids():
        if pid == me or pid == 1:
            continue
        if belongs(pid, marks, self_netns) and not is_zombie(pid):
            found.append(pid)
    return found


def signal_all(targets: Iterable[int], sig: int) -> None:
    for pid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def wait_gone(pid: int, started: int | None, timeout: float) -> bool:
    """Wait until the process has exited; True if it did within timeout."""
    deadline = time.monotonic() + timeout
    while alive(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def kill_members(marks: Marks, timeout: float = 5.0) -> list[int]:
    """SIGKILL the sandbox's processes until none is left; return those that survived."""
    deadline = time.monotonic() + timeout
    left = members(marks)
    while left:
        signal_all(left, signal.SIGKILL)
        for pid in left:
            reap(pid)
        time.sleep(0.1)
        left = members(marks)
        if time.monotonic() > deadline:
            break
    return left
