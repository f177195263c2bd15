"""The layer contract is real: import-linter passes on the runtime and fails on a wrong arrow."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, tool

PACKAGE = REPO_ROOT / "runtime" / "factoryctl"


def lint_imports(runtime: Path) -> subprocess.CompletedProcess[str]:
    """import-linter with the project's contracts, on the package found under `runtime`."""
    env = {**os.environ, "PYTHONPATH": str(runtime)}
    argv = [tool("lint-imports"), "--no-cache", "--config", str(REPO_ROOT / "pyproject.toml")]
    return subprocess.run(argv, cwd=runtime, env=env, capture_output=True, text=True, timeout=120)


def copy_of_runtime(tmp_path: Path) -> Path:
    runtime = tmp_path / "runtime"
    shutil.copytree(PACKAGE, runtime / "factoryctl", ignore=shutil.ignore_patterns("__pycache__"))
    return runtime


def test_the_runtime_keeps_its_layers(tmp_path: Path) -> None:
    done = lint_imports(copy_of_runtime(tmp_path))
    assert done.returncode == 0, done.stdout
    assert "Contracts: 2 kept, 0 broken." in done.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "message"),
    [
        ("rules/budget.py", "from factoryctl.jobs import cycle",
         "factoryctl.rules is not allowed to import factoryctl.jobs"),
        ("adapters/tmux.py", "from factoryctl.state import eventlog",
         "factoryctl.adapters is not allowed to import factoryctl.state"),
        ("core/config.py", "from factoryctl.cli import app", "factoryctl.core is not allowed to import factoryctl.cli"),
    ],
)  # fmt: skip
def test_a_wrong_arrow_breaks_the_contract(tmp_path: Path, module: str, wrong_import: str, message: str) -> None:
    runtime = copy_of_runtime(tmp_path)
    target = runtime / "factoryctl" / module
    target.write_text(target.read_text() + f"\n{wrong_import}  # noqa: E402,F401\n")
    done = lint_imports(runtime)
    assert done.returncode != 0 and message in done.stdout, done.stdout
