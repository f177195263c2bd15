"""Helpers shared by the tests: the venv's console scripts and the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A console script of this venv (factoryctl, factory-scripted-agent)."""
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name) or name


def run_cli(*args: str, home: Path, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `factoryctl` in this process through its real entry point (`main`), through Typer's CliRunner isolation.

    The command sees FACTORY_HOME=home, stdin=input and its own stdout and stderr; the environment
    (which `main` fills from the secrets file) is put back afterwards. `timeout` only applies to
    `run_cli_process`: a command run here is not cut off.
    """
    from typer.testing import CliRunner

    from factoryctl.cli.app import main

    saved = dict(os.environ)
    try:
        with CliRunner().isolation(input=input, env={"FACTORY_HOME": str(home)}) as (out, err, _):
            code = main(list(args))
            sys.stdout.flush()
            sys.stderr.flush()
            return subprocess.CompletedProcess(list(args), code, out.getvalue().decode(), err.getvalue().decode())
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_cli_process(
    *args: str, home: Path, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the installed `factoryctl` as a user would: a cold process (for the tests whose boundary is the point)."""
    env = {**os.environ, "FACTORY_HOME": str(home)}
    return subprocess.run(
        [tool("factoryctl"), *args], env=env, input=input, capture_output=True, text=True, timeout=timeout
    )


def events(home: Path, *types: str) -> list[Any]:
    """The log's events of these types (every type without any), oldest first."""
    from factoryctl.jobs.context import Context
    from factoryctl.state.eventlog import EventFilter

    return Context.load(home).log.tail(100_000, EventFilter(types=frozenset(types)))


def survivors(marker: str) -> list[int]:
    """The processes whose command line holds `marker` (what a test started and expects gone)."""
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]


def wait_for(check: Callable[[], object], timeout: float = 30, what: str = "condition") -> None:
    """Poll `check` until it is true; fail the test after `timeout` seconds."""
    import pytest

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def meanwhile(folder: Path, action: Callable[[], object]) -> list[dict[str, object]]:
    """Scripted-agent actions that pause the (sandboxed) agent while `action` runs out here.

    The agent can reach nothing of the factory from its sandbox, so what "someone else"
    does during a call (a person cancels the task, a push moves main) happens in a thread of
    the test: the agent signals through a file in its writable folder, then waits for ours.
    """
    import threading

    marker = folder / f"meanwhile-{time.time_ns()}"

    def run() -> None:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            action()
        finally:
            marker.with_name(marker.name + ".done").touch()

    threading.Thread(target=run, daemon=True).start()
    wait = f"while [ ! -e {marker}.done ]; do sleep 0.05; done"
    return [{"run": ["touch", str(marker)]}, {"run": ["sh", "-c", wait]}]


def stop_process(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM a process we started and wait for it; SIGKILL it past `grace_s`."""
    import signal

    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class FakeClock:
    """A clock that stands still until a test moves it (`clock.now = ...`)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now
