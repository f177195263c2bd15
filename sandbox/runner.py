"""The one door to subprocesses: argv lists, never a shell, always a timeout, logged."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .defaults import APT_PACKAGE, SEARCH_PATH
from .errors import NotRoot, SandboxError, ToolMissing

log = logging.getLogger("sandbox")

DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Completed:
    """What a finished process left behind."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, chars: int = 300) -> str:
        """The end of what the process printed, on one line, for error messages."""
        text = (self.stderr.strip() + "\n" + self.stdout.strip()).strip()
        return " | ".join(line for line in text[-chars:].splitlines() if line.strip())


class CommandFailed(SandboxError):
    """A command that had to succeed did not."""

    def __init__(self, completed: Completed) -> None:
        self.completed = completed
        super().__init__(f"{' '.join(completed.argv[:3])} exited {completed.returncode}: {completed.tail()}")


def which(tool: str) -> str | None:
    return shutil.which(tool, path=SEARCH_PATH)


def tool_missing(tool: str) -> ToolMissing:
    package = APT_PACKAGE.get(tool, tool)
    return ToolMissing(f"{tool} is not installed: apt-get install {package}")


def require_tools(tools: Iterable[str]) -> None:
    """Fail before changing anything if a program we will call is not installed."""
    for tool in tools:
        if which(tool) is None:
            raise tool_missing(tool)


def require_root() -> None:
    if os.geteuid() != 0:
        raise NotRoot("the sandbox needs root (mounts, namespaces, nftables): run it with sudo")


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = SEARCH_PATH
    env.update(extra or {})
    return env


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    check: bool = True,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Completed:
    """Run argv to completion; raise CommandFailed unless it exits 0 (when check)."""
    args = tuple(str(a) for a in argv)
    log.debug("run %s", " ".join(args))
    start = time.monotonic()
    try:
        proc = subprocess.run(
            args,
            input=input,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=_env(env),
            check=False,
        )
    except FileNotFoundError as exc:
        raise tool_missing(args[0]) from exc
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"{' '.join(args[:3])} timed out after {timeout:.0f}s") from exc
    done = Completed(args, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
    log.debug("rc=%s in %.2fs", done.returncode, done.duration_s)
    if check and not done.ok:
        raise CommandFailed(done)
    return done


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    log_path: Path,
    env: Mapping[str, str],
) -> subprocess.Popen[bytes]:
    """Start a long-lived process in its own session, output appended to log_path.

    It gets exactly `env` (plus PATH): the machine's variables stay out of the sandbox.
    """
    args = tuple(str(a) for a in argv)
    log.debug("spawn %s > %s", " ".join(args), log_path)
    with open(log_path, "ab") as out:
        try:
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={"PATH": SEARCH_PATH, **env},
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise tool_missing(args[0]) from exc
