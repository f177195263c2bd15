"""The suite's own rule: under CI=true a skipped test fails the run (tests/plugins/no_skips_in_ci.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT

SKIPPING = (
    "import pytest\n\n\ndef test_needs_a_tool() -> None:\n    pytest.skip('needs frobnicate: apt-get install frob')\n"
)


def run_pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.plugins.no_skips_in_ci",
            "--rootdir", str(tmp_path), str(tmp_path / "test_skipping.py")]  # fmt: skip
    return subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_skip_fails_the_run_under_ci(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "true")
    assert done.returncode == 1, done.stdout
    assert "skipped under CI=true, where every test must run: needs frobnicate" in done.stdout


def test_a_skip_is_only_a_skip_on_a_developers_machine(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, None)
    assert done.returncode == 0 and "1 skipped" in done.stdout, done.stdout
