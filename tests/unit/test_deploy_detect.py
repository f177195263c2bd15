"""The deploy's check detection: the clone's files read on the host (a fact), then the same rules as init."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

from inventory import DEFAULTS, DEMO
from provision import hostdata
from provision.facts import RepoFiles, parse_repo_files

PKG = json.dumps({"devDependencies": {"vitest": "3", "typescript": "5"}})


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_repo_files_fact_reads_the_committed_tree_and_parses_its_output() -> None:
    command = RepoFiles().command(path="/home/factory/factory/repo")
    assert "cat-file -p HEAD:package.json" in command and "runuser -u factory" in command
    output = ["@@package.json", b64(PKG), "@@pnpm-lock.yaml", b64("lockfileVersion: '9.0'\n"), "@@tests/", "",
              "@@tsconfig.json", "!!not base64!!"]  # fmt: skip
    files = parse_repo_files(output)
    assert files["package.json"] == PKG and "lockfileVersion" in files["pnpm-lock.yaml"]
    assert files["tests/"] == "" and "tsconfig.json" in files


def test_host_data_without_checks_gets_the_detected_ones() -> None:
    checked = hostdata.check({**DEFAULTS, **DEMO, "factory_checks": []}, {})
    files = {"package.json": PKG, "pnpm-lock.yaml": "", "tsconfig.json": "{}"}
    updated, found = hostdata.with_detected(checked, files)
    assert found is not None
    assert [c.name for c in updated.settings.checks] == ["tsc", "vitest"]
    assert updated.settings.repo.setup == ["pnpm", "install", "--frozen-lockfile"]
    assert updated.config["checks"][0]["command"] == ["pnpm", "exec", "tsc", "--noEmit"]


def test_host_data_checks_win_and_no_clone_yet_changes_nothing() -> None:
    with_checks = hostdata.check({**DEFAULTS, **DEMO}, {})
    assert with_checks.config["checks"]
    assert hostdata.with_detected(with_checks, {"package.json": PKG})[0] is with_checks
    without = hostdata.check({**DEFAULTS, **DEMO, "factory_checks": []}, {})
    assert hostdata.with_detected(without, {}) == (without, None)


def test_the_fact_reads_the_ci_workflows_of_a_real_clone(tmp_path: Path) -> None:
    """The fact's shell, run on a real clone (as the current user instead of the factory user)."""
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text("jobs:\n  t:\n    steps:\n      - run: uv run mypy\n")
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n')
    for argv in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *argv], cwd=repo, check=True)
    command = RepoFiles().command(path=str(repo)).replace("runuser -u factory -- ", "")
    command = command.replace("id -u factory", "true", 1)
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    files = parse_repo_files(done.stdout.splitlines())
    assert "uv run mypy" in files[".github/workflows/ci.yml"] and "pyproject.toml" in files
