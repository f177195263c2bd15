"""Helpers shared by the tests: the venv's console scripts and the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A console script of this venv (factoryctl, factory-scripted-agent)."""
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name) or name


def run_cli(*args: str, home: Path, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the installed `factoryctl` as a user would."""
    env = {**os.environ, "FACTORY_HOME": str(home)}
    return subprocess.run(
        [tool("factoryctl"), *args], env=env, input=input, capture_output=True, text=True, timeout=timeout
    )


def wait_for(check: Callable[[], object], timeout: float = 30, what: str = "condition") -> None:
    """Poll `check` until it is true; fail the test after `timeout` seconds."""
    import pytest

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")
