"""`factoryctl init` on the samples: a factory whose first cycle and review work with no hand edits."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.factories import IGNORE, SAMPLES, git
from tests.helpers import BIN, run_cli, tool

APPROVE = json.dumps({"verdict": "approve", "reasons": ["focused and tested"], "risk": "low", "issues": []})
PY_TEST = (
    "from inventory.stock import Stock\n\n\ndef test_plum_is_zero() -> None:\n    assert Stock().count('plum') == 0\n"
)
TS_TEST = 'import { expect, it } from "vitest";\n\nit("adds", () => {\n  expect(1 + 1).toBe(2);\n});\n'


def seed(tmp_path: Path, sample: str) -> Path:
    """The sample as a person's own repository: a git repo with one commit, nothing else added."""
    repo = tmp_path / f"my-{sample}"
    shutil.copytree(SAMPLES / sample, repo, ignore=IGNORE)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


def agent_for(tmp_path: Path, change: dict[str, str], summary: str) -> str:
    scenario = tmp_path / "agent" / "scenario.json"
    scenario.parent.mkdir(exist_ok=True)
    calls = [
        {
            "match": "You are s1,",
            "actions": [{"write": change["path"], "content": change["content"]}],
            "result": summary,
        },
        {"match": "by session s1", "result": APPROVE},
    ]
    scenario.write_text(json.dumps({"calls": calls}))
    return f"{tool('factory-scripted-agent')} --scenario {scenario}"


def let_the_stand_in_keep_its_state(home: Path, tmp_path: Path) -> None:
    """The scripted agent (the model's stand-in, not part of the user's setup) writes its state next
    to its scenario: the sandbox must let it. A real agent needs no such line."""
    with (home / "factory.toml").open("a") as fh:
        fh.write(f"\n[sandbox]\nwritable = [{json.dumps(str(tmp_path / 'agent'))}]\n")


def first_cycle_and_review_land(home: Path, origin: Path, path: str) -> None:
    cycle = run_cli("cycle", "s1", home=home, timeout=600)
    assert cycle.returncode == 0 and "pushed: checks held" in cycle.stdout, cycle.stdout + cycle.stderr
    review = run_cli("review", home=home, timeout=600)
    assert review.returncode == 0, review.stdout + review.stderr
    (entry,) = json.loads(run_cli("queue", "list", "--all", "--json", home=home).stdout)
    assert entry["status"] == "approved", entry
    assert git(origin, "show", f"main:{path}")  # landed on the factory's shared remote


def test_init_on_the_python_sample_works_with_no_hand_edits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")  # python3 with pytest, ruff and mypy
    repo, home = seed(tmp_path, "py-app"), tmp_path / "factory"
    agent = agent_for(tmp_path, {"path": "tests/test_plum.py", "content": PY_TEST}, "Test an unknown item")
    done = run_cli("init", str(repo), "--home", str(home), "--agent", agent, home=tmp_path / "unused", timeout=600)
    assert done.returncode == 0, done.stderr
    for line in ("pytest: python3 -B -m pytest", "ruff: python3 -B -m ruff check", "mypy: python3 -B -m mypy"):
        assert line in done.stdout, done.stdout
    let_the_stand_in_keep_its_state(home, tmp_path)
    shown = json.loads(run_cli("config", "show", "--json", home=home).stdout)
    assert [c["name"] for c in shown["checks"]] == ["pytest", "ruff", "mypy"]
    first_cycle_and_review_land(home, home / "origin.git", "tests/test_plum.py")
    assert git(repo, "rev-parse", "main") == git(repo, "rev-parse", "HEAD")  # the person's repository untouched
    assert "test_plum" not in git(repo, "ls-files")


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_init_on_the_typescript_sample_works_with_no_hand_edits(tmp_path: Path) -> None:
    repo, home = seed(tmp_path, "ts-app"), tmp_path / "factory"
    agent = agent_for(tmp_path, {"path": "src/adds.test.ts", "content": TS_TEST}, "Test addition")
    done = run_cli("init", str(repo), "--home", str(home), "--agent", agent, home=tmp_path / "unused", timeout=600)
    assert done.returncode == 0, done.stderr
    assert "setup:  npm ci" in done.stdout
    let_the_stand_in_keep_its_state(home, tmp_path)
    shown = json.loads(run_cli("config", "show", "--json", home=home).stdout)
    assert [c["name"] for c in shown["checks"]] == ["tsc", "vitest", "jest", "eslint"]
    assert {c["name"]: c["retry_on_regression"] for c in shown["checks"]} == {
        "tsc": False, "vitest": True, "jest": True, "eslint": False,
    }  # fmt: skip
    first_cycle_and_review_land(home, home / "origin.git", "src/adds.test.ts")


def test_init_refuses_an_existing_home_and_bad_sources(tmp_path: Path) -> None:
    repo, home = seed(tmp_path, "py-app"), tmp_path / "factory"
    home.mkdir()
    (home / "factory.toml").write_text("# mine\n")
    done = run_cli("init", str(repo), "--home", str(home), home=home)
    assert done.returncode == 2 and done.stderr.startswith("Error: ") and "refusing to overwrite" in done.stderr
    assert (home / "factory.toml").read_text() == "# mine\n" and sorted(p.name for p in home.iterdir()) == [
        "factory.toml"
    ]
    for bad in ("--upload-pack=touch /tmp/x", "not-a-path-or-url", str(tmp_path)):
        done = run_cli("init", "--home", str(tmp_path / "new"), "--", bad, home=home)
        assert done.returncode == 2 and done.stderr.startswith("Error: "), (bad, done.stderr)
        assert not (tmp_path / "new").exists()
