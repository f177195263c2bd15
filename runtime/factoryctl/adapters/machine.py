"""The psutil adapter: one reading of RAM, swap, load and free disk, as plain numbers."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from factoryctl.core.facts import Reading

GB = 1024**3


def sample(path: Path) -> Reading:
    """Sample the machine; `path` is where the factory writes (its disk is the one that fills)."""
    probe = path if path.exists() else Path("/")
    return Reading(
        ram_percent=psutil.virtual_memory().percent,
        swap_percent=psutil.swap_memory().percent,
        load1=os.getloadavg()[0],
        cpus=psutil.cpu_count() or 1,
        disk_free_gb=psutil.disk_usage(str(probe)).free / GB,
    )


def pid_alive(pid: object) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
