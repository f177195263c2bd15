"""A uv project (tests/samples/uv-app): checks run `uv run --frozen --no-sync`, so they never re-lock,
build or download, and an agent's dependency change (`uv add six`: pyproject.toml and uv.lock)
passes its cycle and lands once a person approves it: setup, which alone has the network,
installs it in the session's and the gate's worktrees. Real uv, real git with a bare origin, the
real CLI in the bubblewrap sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from factoryctl.jobs.context import Context
from factoryctl.state.eventlog import EventFilter
from tests.factories import IGNORE, SAMPLES, git
from tests.helpers import BIN, run_cli, tool

UV = shutil.which("uv", path=f"{BIN}{os.pathsep}{os.environ['PATH']}")
pytestmark = pytest.mark.skipif(UV is None, reason="uv is not installed (scripts/setup.sh)")

APPROVE = json.dumps({"verdict": "approve", "reasons": ["adds six"], "risk": "low", "issues": []})
SIX_TEST = "import six\n\n\ndef test_six_is_installed() -> None:\n    assert six.PY3\n"


def test_a_uv_dependency_change_approved_by_a_person_lands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert UV is not None
    monkeypatch.setenv("PATH", f"{Path(UV).parent}{os.pathsep}{os.environ['PATH']}")
    repo = tmp_path / "my-uv-app"
    shutil.copytree(SAMPLES / "uv-app", repo, ignore=IGNORE)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    change = uv_add_six(tmp_path, repo)  # what `uv add six` writes, made beforehand (the agent runs offline here)
    scenario = tmp_path / "agent" / "scenario.json"
    scenario.parent.mkdir()
    actions = [{"write": name, "content": text} for name, text in change.items()]
    scenario.write_text(json.dumps({"calls": [
        {"match": "You are s1,", "actions": actions, "result": "Use six"},
        {"match": "by session s1", "result": APPROVE},  # asked once
    ]}))  # fmt: skip
    home = tmp_path / "factory"
    agent = f"{tool('factory-scripted-agent')} --scenario {scenario}"
    done = run_cli("init", str(repo), "--home", str(home), "--agent", agent, home=home, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pytest: uv run --frozen --no-sync python -B -m pytest" in done.stdout, done.stdout
    assert "pytest: 2 passed, 0 failed of 2" in done.stdout, done.stdout  # addopts -q: counted from its report
    # Main's setup filled the shared uv cache; the worktree's packages are copies, not links into it.
    shared = home / "cache" / "shared" / "uv"
    assert any(shared.rglob("pytest*")), "main's setup did not use the shared uv cache"
    installed = next((home / "worktrees" / "s1" / ".venv").rglob("site-packages/pytest/__init__.py"))
    assert installed.stat().st_nlink == 1
    with (home / "factory.toml").open("a") as fh:
        fh.write(f"\n[sandbox]\nwritable = [{json.dumps(str(scenario.parent))}]\n")

    # The agent's change: six in pyproject.toml and uv.lock, and a test that imports it. The cycle runs
    # setup for the change's manifests before its checks: the new test passes, the branch is pushed.
    cycle = run_cli("cycle", "s1", home=home, timeout=600)
    assert cycle.returncode == 0 and "pushed: checks held" in cycle.stdout, cycle.stdout + cycle.stderr

    first = run_cli("review", home=home, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    (entry,) = json.loads(run_cli("queue", "list", "--all", "--json", home=home).stdout)
    assert entry["after"]["pytest"]["passed"] == 3, entry
    assert entry["status"] == "pending" and "waits for a person" in " ".join(entry["reasons"]), entry
    tested = entry["tested"]  # the merge result the gate tested before asking the person
    branch = entry["branch"]
    approved = run_cli("queue", "approve", branch, home=home, timeout=600)  # lands it now: the gate is free
    assert approved.returncode == 0 and f"{branch}: approve" in approved.stdout, approved.stdout + approved.stderr
    # main has not moved: the tested merge lands as it was tested, with no second run and no second reviewer call
    runs = Context.load(home).log.tail(10, EventFilter(types=frozenset({"review_run"})))
    assert [r.data["check_runs"] for r in runs] == [1, 0], runs
    (entry,) = json.loads(run_cli("queue", "list", "--all", "--json", home=home).stdout)
    assert entry["status"] == "approved", entry
    origin = home / "origin.git"
    assert git(origin, "rev-parse", "main") == tested
    assert not any(shared.rglob("six*")), "a branch's setup wrote into the shared cache"  # its own cache, gone
    assert 'name = "six"' in git(origin, "show", "main:uv.lock") and git(origin, "show", "main:tests/test_six.py")


def uv_add_six(tmp_path: Path, repo: Path) -> dict[str, str]:
    assert UV is not None
    work = tmp_path / "uv-add"
    git(tmp_path, "clone", "-q", str(repo), str(work))
    subprocess.run([UV, "add", "--no-sync", "six"], cwd=work, check=True, capture_output=True)
    return {"pyproject.toml": (work / "pyproject.toml").read_text(), "uv.lock": (work / "uv.lock").read_text(),
            "tests/test_six.py": SIX_TEST}  # fmt: skip
