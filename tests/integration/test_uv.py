"""A uv project (tests/samples/uv-app): checks run `uv run --frozen --no-sync`, so they never re-lock,
build or download, and a dependency change a person approves (`uv add six`: pyproject.toml and
uv.lock) lands: setup, which alone has the network, installs it in the gate's worktree. Real uv,
real git with a bare origin, the real CLI in the bubblewrap sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from factoryctl.core.clock import format_ts, utcnow
from factoryctl.core.records import ReviewEntry
from factoryctl.jobs.context import Context
from factoryctl.state.eventlog import EventFilter
from tests.factories import IGNORE, SAMPLES, git
from tests.helpers import BIN, run_cli, tool

UV = shutil.which("uv", path=f"{BIN}{os.pathsep}{os.environ['PATH']}")
pytestmark = pytest.mark.skipif(UV is None, reason="uv is not installed (scripts/setup.sh)")

APPROVE = json.dumps({"verdict": "approve", "reasons": ["adds six"], "risk": "low", "issues": []})
BRANCH = "brl/s1/20260101T000000Z"
SIX_TEST = "import six\n\n\ndef test_six_is_installed() -> None:\n    assert six.PY3\n"


def test_a_uv_dependency_change_approved_by_a_person_lands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert UV is not None
    monkeypatch.setenv("PATH", f"{Path(UV).parent}{os.pathsep}{os.environ['PATH']}")
    repo = tmp_path / "my-uv-app"
    shutil.copytree(SAMPLES / "uv-app", repo, ignore=IGNORE)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    scenario = tmp_path / "agent" / "scenario.json"
    scenario.parent.mkdir()
    scenario.write_text(json.dumps({"calls": [{"match": "by session s1", "result": APPROVE}]}))  # asked once
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

    # A person's branch: `uv add six` (pyproject.toml and uv.lock) and a test that needs it.
    work = tmp_path / "person"
    git(tmp_path, "clone", "-q", str(home / "origin.git"), str(work))
    base = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "-q", "-b", BRANCH)
    subprocess.run([UV, "add", "--no-sync", "six"], cwd=work, check=True, capture_output=True)
    (work / "tests" / "test_six.py").write_text(SIX_TEST)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "Use six")
    git(work, "push", "-q", "origin", "HEAD")
    queue_pending(home, base, git(work, "rev-parse", "HEAD"))

    first = run_cli("review", home=home, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    (entry,) = json.loads(run_cli("queue", "list", "--all", "--json", home=home).stdout)
    assert entry["status"] == "pending" and "waits for a person" in " ".join(entry["reasons"]), entry
    tested = entry["tested"]  # the merge result the gate tested before asking the person
    approved = run_cli("queue", "approve", BRANCH, home=home, timeout=600)  # lands it now: the gate is free
    assert approved.returncode == 0 and f"{BRANCH}: approve" in approved.stdout, approved.stdout + approved.stderr
    # main has not moved: the tested merge lands as it was tested, with no second run and no second reviewer call
    runs = Context.load(home).log.tail(10, EventFilter(types=frozenset({"review_run"})))
    assert [r.data["check_runs"] for r in runs] == [1, 0], runs
    (entry,) = json.loads(run_cli("queue", "list", "--all", "--json", home=home).stdout)
    assert entry["status"] == "approved", entry
    origin = home / "origin.git"
    assert git(origin, "rev-parse", "main") == tested
    assert not any(shared.rglob("six*")), "a branch's setup wrote into the shared cache"  # its own cache, gone
    assert 'name = "six"' in git(origin, "show", "main:uv.lock") and git(origin, "show", "main:tests/test_six.py")


def queue_pending(home: Path, base: str, head: str) -> None:
    Context.load(home).review_queue().add_pending(ReviewEntry(
        branch=BRANCH, session="s1", base=base, head=head, queued=format_ts(utcnow()), summary="Use six",
        files_changed=3, lines_added=20,
    ))  # fmt: skip
