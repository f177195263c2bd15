"""The layer contract is real: import-linter passes on the runtime and fails on a wrong arrow; no job
runs the CLI as a child process except the launcher's background jobs and the sessions' loops."""

from __future__ import annotations

import os
import re
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
    assert "Contracts: 5 kept, 0 broken." in done.stdout


WRONG_ARROWS = [
    ("rules/budget.py", "from factoryctl.jobs import cycle",
     "factoryctl.rules is not allowed to import factoryctl.jobs"),
    ("adapters/tmux.py", "from factoryctl.state import eventlog",
     "factoryctl.adapters is not allowed to import factoryctl.state"),
    ("core/config.py", "from factoryctl.cli import app", "factoryctl.core is not allowed to import factoryctl.cli"),
    ("cli/serve.py", "from factoryctl.cli import app", "factoryctl.cli.serve -> factoryctl.cli.app"),
    ("jobs/review/batch.py", "from factoryctl.jobs.review import gate",
     "factoryctl.jobs.review.batch -> factoryctl.jobs.review.gate"),
    ("jobs/standup.py", "from factoryctl.cli import terminal", "factoryctl.jobs.standup -> factoryctl.cli.terminal"),
]  # fmt: skip


def test_each_wrong_arrow_breaks_the_contract(tmp_path: Path) -> None:
    """One copy of the runtime with every wrong arrow in it (one import-linter run): each is named."""
    runtime = copy_of_runtime(tmp_path)
    for module, wrong_import, _ in WRONG_ARROWS:
        target = runtime / "factoryctl" / module
        target.write_text(target.read_text() + f"\n{wrong_import}  # noqa: E402,F401\n")
    done = lint_imports(runtime)
    assert done.returncode != 0
    for module, _, message in WRONG_ARROWS:
        assert message in " ".join(done.stdout.split()), (module, done.stdout)


# A child `factoryctl`: the console script, `python -m factoryctl`, or the path helper the sessions use.
CHILD_CLI = re.compile(r"factoryctl_path\(\)|[\"']-m[\"'],\s*[\"']factoryctl[\"']|\[[\"']factoryctl[\"']")
MAY_RUN_THE_CLI = {"launcher.py": "review, standup, doctor in the background", "sessions.py": "the tmux loops"}


def child_cli_calls(jobs: Path) -> dict[str, int]:
    return {str(p.relative_to(jobs)): len(CHILD_CLI.findall(p.read_text())) for p in sorted(jobs.rglob("*.py"))
            if CHILD_CLI.search(p.read_text())}  # fmt: skip


def test_no_job_runs_the_cli_as_a_child_but_the_launcher_and_the_sessions(tmp_path: Path) -> None:
    assert set(child_cli_calls(PACKAGE / "jobs")) == set(MAY_RUN_THE_CLI)
    runtime = copy_of_runtime(tmp_path)  # the check sees each way of spelling such a call
    actions = runtime / "factoryctl" / "jobs" / "bot" / "actions.py"
    for spelling in ('run(["factoryctl", "pause"])', 'run([sys.executable, "-m", "factoryctl", "pause"])',
                     "run([factoryctl_path(), 'pause'])"):  # fmt: skip
        actions.write_text(actions.read_text() + f"\n{spelling}\n")
        assert "bot/actions.py" in child_cli_calls(runtime / "factoryctl" / "jobs"), spelling
        actions.write_text(actions.read_text().replace(f"\n{spelling}\n", ""))
