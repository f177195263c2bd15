"""The layer contract is real: import-linter passes on the runtime and fails on a wrong arrow."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

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


def test_a_rule_that_imports_a_job_breaks_the_contract(tmp_path: Path) -> None:
    runtime = copy_of_runtime(tmp_path)
    rule = runtime / "factoryctl" / "rules" / "budget.py"
    rule.write_text(rule.read_text() + "\nfrom factoryctl.jobs import cycle  # noqa: E402,F401\n")
    done = lint_imports(runtime)
    assert done.returncode != 0
    assert "factoryctl.rules is not allowed to import factoryctl.jobs" in done.stdout
    assert "factoryctl.rules.budget -> factoryctl.jobs.cycle" in done.stdout


def test_an_adapter_that_imports_state_breaks_the_contract(tmp_path: Path) -> None:
    runtime = copy_of_runtime(tmp_path)
    adapter = runtime / "factoryctl" / "adapters" / "tmux.py"
    adapter.write_text(adapter.read_text() + "\nfrom factoryctl.state import eventlog  # noqa: E402,F401\n")
    done = lint_imports(runtime)
    assert done.returncode != 0 and "factoryctl.adapters is not allowed to import factoryctl.state" in done.stdout
