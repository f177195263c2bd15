"""Cross-process locks on flock(2): the kernel frees them when a holder dies.

- `job_lock(dir, name)`: exclusive, non-blocking; a second holder gets AlreadyRunning.
- `Semaphore(dir, name, slots)`: N lock files, one per slot; a holder owns one of them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

from factoryctl.core.defaults import PRIVATE_FILE_MODE
from factoryctl.core.errors import AlreadyRunning, FactoryError


def _open_lock(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _stamp(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def holder_of(path: Path) -> str:
    """What the current holder wrote into its lock file (its pid), for messages."""
    try:
        return path.read_text().strip()
    except OSError:
        return ""


@contextlib.contextmanager
def job_lock(locks_dir: Path, name: str) -> Iterator[None]:
    """Hold the exclusive lock of job `name`, or raise AlreadyRunning at once."""
    path = locks_dir / f"{name}.lock"
    fd = _open_lock(path)
    try:
        if not _try_lock(fd):
            pid = holder_of(path)
            raise AlreadyRunning(f"{name} is already running" + (f" (pid {pid})" if pid else ""))
        _stamp(fd, f"{os.getpid()}\n")
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`, waiting for it: a short critical section."""
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Semaphore:
    """A named counting semaphore across processes; dead holders free their slot."""

    def __init__(self, locks_dir: Path, name: str, slots: int) -> None:
        if slots < 1:
            raise FactoryError(f"semaphore {name} needs at least one slot")
        self.paths = [locks_dir / f"{name}.slot{i}.lock" for i in range(slots)]

    def try_acquire(self) -> tuple[int, int] | None:
        """(slot, fd) of a free slot, or None when all are held."""
        for slot in random.sample(range(len(self.paths)), len(self.paths)):
            fd = _open_lock(self.paths[slot])
            if _try_lock(fd):
                _stamp(fd, f"{os.getpid()}\n")
                return slot, fd
            os.close(fd)
        return None

    @contextlib.contextmanager
    def hold(self, timeout_s: float | None = None, poll_s: float = 0.1) -> Iterator[int]:
        """Wait for a slot (up to timeout_s), hold it for the block, yield its number."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while (got := self.try_acquire()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise FactoryError(f"no free slot among {len(self.paths)} after {timeout_s:.0f}s")
            time.sleep(poll_s * random.uniform(0.5, 1.5))
        slot, fd = got
        try:
            yield slot
        finally:
            os.close(fd)

    def holders(self) -> list[str]:
        """Pids holding a slot now (a slot whose lock can be taken is free)."""
        out = []
        for path in self.paths:
            fd = _open_lock(path)
            try:
                if _try_lock(fd):
                    continue
                out.append(holder_of(path))
            finally:
                os.close(fd)
        return out
