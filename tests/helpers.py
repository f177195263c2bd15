"""Helpers shared by the tests: the venv's console scripts and the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
