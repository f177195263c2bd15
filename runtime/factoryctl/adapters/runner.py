"""The one door to subprocesses: argv lists, no shell, a timeout that kills the whole group.

Every external program (git, tmux, pm2, the agent CLI, the checks) is started here.
The child gets its own session, so on timeout, or once it has exited, everything it
started (and did not detach from) is killed too: the real `claude` CLI can hang forever.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from factoryctl.core.defaults import KILL_GRACE_S, MAX_CAPTURE_BYTES, PIPE_GRACE_S
from factoryctl.core.errors import FactoryError, ToolMissing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completed:
    """What a finished (or killed) process left behind."""

    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    cut: bool = False  # stdout or stderr went past the capture limit: what was kept is not all it said
    report: bytes | None = None  # what the process wrote to its report pipe (`report=True`), None if cut

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def tail(self, chars: int = 400) -> str:
        """The end of what the process printed (stderr first), for one-line reasons."""
        text = (self.stderr.strip() + "\n" + self.stdout.strip()).strip()
        return text[-chars:]


class CommandFailed(FactoryError):
    """A command that had to succeed did not."""

    def __init__(self, completed: Completed) -> None:
        self.completed = completed
        what = "timed out" if completed.timed_out else f"exited {completed.returncode}"
        detail = completed.tail(300).replace("\n", " | ")
        super().__init__(f"{' '.join(completed.argv[:4])} {what}: {detail}")


class _Capture(threading.Thread):
    def __init__(
        self, stream: object, limit: int | None = MAX_CAPTURE_BYTES, on_line: Callable[[str], None] | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.on_line = on_line
        self.pending = b""  # the unfinished last line, for on_line

    def run(self) -> None:
        read = self.stream.read1  # type: ignore[attr-defined]
        while True:
            try:
                chunk = read(65536)
            except (OSError, ValueError):
                return
            if not chunk:
                self._lines(b"", final=True)
                return
            self._lines(chunk)
            if self.limit is None:
                self.chunks.append(chunk)
            elif self.size < self.limit:
                self.chunks.append(chunk[: self.limit - self.size])
            self.size += len(chunk)

    @property
    def cut(self) -> bool:
        return self.limit is not None and self.size > self.limit

    def data(self) -> bytes:
        return b"".join(self.chunks)

    def _lines(self, chunk: bytes, final: bool = False) -> None:
        """Hand each whole line to on_line as it arrives (a line past the capture limit is dropped)."""
        if self.on_line is None:
            return
        *lines, self.pending = (self.pending + chunk).split(b"\n")
        if final and self.pending:
            lines, self.pending = [*lines, self.pending], b""
        if len(self.pending) > MAX_CAPTURE_BYTES:
            self.pending = b""
        for line in lines:
            try:
                self.on_line(line.decode("utf-8", errors="replace"))
            except Exception:  # a reader's bug must not stop the capture (and so hang the child)
                log.exception("on_line failed")

    def text(self) -> str:
        return self.data().decode("utf-8", errors="replace")


def kill_tree(pid: int, grace_s: float = KILL_GRACE_S) -> None:
    """Kill process group `pid` and every descendant of `pid`: TERM, then KILL."""
    procs: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace_s)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def run(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    input: str | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = False,
    on_line: Callable[[str], None] | None = None,
    limit: int | None = MAX_CAPTURE_BYTES,
    report: Path | None = None,
    report_limit: int = MAX_CAPTURE_BYTES,
) -> Completed:
    """Run argv (never through a shell); kill its whole process group on timeout or exit.

    Output past `limit` bytes (None: no limit, for trusted tools whose every line counts,
    like git's file lists) is dropped and the result says so (`cut`): a caller deciding on
    it must fail closed. `report`: a path (in a folder the child cannot write) made a named
    pipe for the child to write its report into; what arrives there, None past
    `report_limit`, is `Completed.report`. A pipe, not a file: what was written cannot be
    rewritten, only added to, and a second report after the first makes it unreadable.
    `on_line` gets each line of stdout as it is printed (live progress), from another thread.
    """
    args = tuple(str(a) for a in argv)
    if not args:
        raise FactoryError("empty command")
    log.debug("run %s (cwd=%s, timeout=%s)", args, cwd, timeout)
    start = time.monotonic()
    side = None if report is None else _Fifo(report, report_limit)
    try:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        _close(side)
        raise ToolMissing(f"{args[0]}: command not found (is it installed and on PATH?)") from exc
    except PermissionError as exc:
        _close(side)
        raise ToolMissing(f"{args[0]}: not executable ({exc.strerror})") from exc
    out, err = _Capture(proc.stdout, limit, on_line), _Capture(proc.stderr, limit)
    out.start()
    err.start()
    if side is not None:
        side.start()
    timed_out = False
    try:
        if input is not None:
            _feed(proc, input)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_tree(proc.pid)
            proc.wait()
        # A child that outlives its parent must not hold the pipes open forever.
        out.join(PIPE_GRACE_S)
        err.join(PIPE_GRACE_S)
        if out.is_alive() or err.is_alive() or _group_alive(proc.pid):
            kill_tree(proc.pid, grace_s=0.5)
            out.join(PIPE_GRACE_S)
            err.join(PIPE_GRACE_S)
        report_data = None if side is None else side.finish()
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM turned into an exception): leave nothing behind.
        kill_tree(proc.pid, grace_s=0.5)
        raise
    finally:
        for stream in (proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]
        _close(side)
    done = Completed(
        argv=args,
        returncode=None if timed_out else proc.returncode,
        stdout=out.text(),
        stderr=err.text(),
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
        cut=out.cut or err.cut,
        report=report_data,
    )
    if done.cut:
        log.info("%s printed more than %s bytes: its output was cut", args[0], limit)
    log.debug("done %s rc=%s in %.2fs", args[0], done.returncode, done.duration_s)
    if check and not done.ok:
        raise CommandFailed(done)
    return done


class _Fifo(threading.Thread):
    """A named pipe at `path` and a thread draining it until the writers are done.

    The reader holds a write end too, so the pipe never reads as ended before the child
    opened it; `finish()` (after the child and its group are gone) reads what is left.
    """

    def __init__(self, path: Path, limit: int) -> None:
        super().__init__(daemon=True)
        os.mkfifo(path, 0o600)
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if not ready:
                if self.done.is_set():
                    return
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                return
            if self.size <= self.limit:
                self.chunks.append(chunk)
            self.size += len(chunk)

    def finish(self) -> bytes | None:
        self.done.set()
        if self.is_alive():
            self.join()
        return None if self.size > self.limit else b"".join(self.chunks)


def _close(side: _Fifo | None) -> None:
    if side is not None:
        side.done.set()
        with contextlib.suppress(OSError):
            os.close(side.fd)


def _feed(proc: subprocess.Popen[bytes], text: str) -> None:
    """Write stdin in a thread so a child that never reads cannot block us past the timeout."""

    def write() -> None:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            proc.stdin.write(text.encode("utf-8"))
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            proc.stdin.close()

    threading.Thread(target=write, daemon=True).start()
