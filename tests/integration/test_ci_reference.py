"""The repository's own CI is the reference (issue 22): `factoryctl init` reads what the repository
runs, respects its tools' own configuration, runs its pinned package manager, proves what it wrote
and prints main's baseline, which agrees with what the repository's CI says. Real git, the real
CLI, real pytest/mypy, real vitest and the pinned pnpm, in the bubblewrap sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.factories import IGNORE, SAMPLES, git
from tests.helpers import BIN, run_cli, tool

PINNED_PNPM = "10.28.0"  # unjs/ufo's pin: pnpm 12 cannot install such a repository


def seed(tmp_path: Path, sample: str, files: dict[str, str]) -> Path:
    repo = tmp_path / f"my-{sample}"
    shutil.copytree(SAMPLES / sample, repo, ignore=IGNORE)
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


def init(repo: Path, home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    agent = tool("factory-scripted-agent")
    return run_cli("init", str(repo), "--home", str(home), "--agent", agent, "--json", *extra, home=home, timeout=600)


def test_mypy_files_and_pytest_addopts_q_give_the_baseline_ci_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")  # python3 with pytest and mypy
    pyproject = (SAMPLES / "py-app" / "pyproject.toml").read_text()
    pyproject = pyproject.replace('testpaths = ["tests"]', 'testpaths = ["tests"]\naddopts = "-q"')
    pyproject = pyproject.replace("strict = true", 'strict = true\nfiles = ["inventory", "tests"]')
    assert 'addopts = "-q"' in pyproject and "files = [" in pyproject
    repo = seed(tmp_path, "py-app", {
        "pyproject.toml": pyproject,
        "scripts/loose.py": "def f(x):\n    return x + 1\n\n\nf('a')\n",  # outside mypy's files: CI never checks it
    })  # fmt: skip
    done = init(repo, tmp_path / "factory")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    mypy = next(c for c in report["checks"] if c["name"] == "mypy")
    assert mypy["command"][-1] == "--cache-dir=/dev/null"  # no path of ours: the config's files
    baseline = report["proof"]["baseline"]
    # What the repository's CI says, run as CI runs it (its own addopts and config, no flag of ours).
    ci_pytest = subprocess.run([str(BIN / "python"), "-m", "pytest"], cwd=repo, capture_output=True, text=True)
    ci_mypy = subprocess.run([str(BIN / "python"), "-m", "mypy"], cwd=repo, capture_output=True, text=True)
    assert ci_pytest.returncode == 0 and ci_mypy.returncode == 0, ci_pytest.stdout + ci_mypy.stdout
    passed = int(ci_pytest.stdout.split(" passed")[0].split()[-1])
    assert baseline["pytest"]["crashed"] is False, baseline["pytest"]
    assert (baseline["pytest"]["passed"], baseline["pytest"]["failed"]) == (passed, 0)
    assert (baseline["mypy"]["errors"], baseline["mypy"]["crashed"]) == (0, False)
    assert report["proof"]["ok"] and report["proof"]["python"] == f"python3 on PATH: {BIN / 'python3'}", report["proof"]


@pytest.mark.skipif(shutil.which("npx") is None, reason="npm is not installed")
def test_a_pinned_pnpm_and_a_spec_without_tests_give_the_baseline_ci_gives(tmp_path: Path) -> None:
    package = json.loads((SAMPLES / "ts-pnpm" / "package.json").read_text())
    package["packageManager"] = f"pnpm@{PINNED_PNPM}"
    package["scripts"]["test"] = "vitest run --passWithNoTests"
    repo = seed(tmp_path, "ts-pnpm", {
        "package.json": json.dumps(package, indent=2) + "\n",
        ".gitignore": "node_modules/\n",
        "src/later.test.ts": 'import { describe } from "vitest";\n\ndescribe.todo("later");\n',
    })  # fmt: skip
    done = init(repo, tmp_path / "factory")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["setup"] == ["npx", "--yes", f"pnpm@{PINNED_PNPM}", "install", "--frozen-lockfile"]
    vitest = next(c for c in report["checks"] if c["name"] == "vitest")
    assert "--passWithNoTests" in vitest["command"]
    # CI: the pinned pnpm installs and runs the repository's own test script.
    work = tmp_path / "ci"
    git(tmp_path, "clone", "-q", str(repo), str(work))
    pnpm = ["npx", "--yes", f"pnpm@{PINNED_PNPM}"]
    subprocess.run([*pnpm, "install", "--frozen-lockfile"], cwd=work, check=True, capture_output=True)
    ci = subprocess.run([*pnpm, "test"], cwd=work, capture_output=True, text=True)
    assert ci.returncode == 0, ci.stdout + ci.stderr
    baseline = report["proof"]["baseline"]
    assert baseline["vitest"]["crashed"] is False and baseline["vitest"]["failed"] == 0, baseline
    assert baseline["tsc"]["errors"] == 0 and report["proof"]["ok"], report["proof"]


def test_init_on_a_repository_whose_tool_is_missing_says_which_and_how_to_get_it(tmp_path: Path) -> None:
    repo = seed(tmp_path, "py-app", {"uv.lock": "version = 1\n"})
    home = tmp_path / "factory"
    bare = tmp_path / "bin"  # a PATH with git, bwrap and python, but no uv
    bare.mkdir()
    for name in ("git", "bwrap", "python3", "true", "sh"):
        found = shutil.which(name)
        assert found is not None
        (bare / name).symlink_to(found)
    env = {**os.environ, "PATH": str(bare), "FACTORY_HOME": str(home)}
    agent = tool("factory-scripted-agent")
    done = subprocess.run([tool("factoryctl"), "init", str(repo), "--home", str(home), "--agent", agent],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "problem: repo.setup needs `uv`, which is not installed: pip install uv" in done.stdout, done.stdout
    assert (home / "factory.toml").is_file()  # the home stays: fix the tool, then `init --check`
    (bare / "uv").write_text("#!/bin/sh\nexit 0\n")  # a uv in /tmp: the sandbox has a /tmp of its own
    (bare / "uv").chmod(0o755)
    again = subprocess.run([tool("factoryctl"), "init", "--check", "--home", str(home)], env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "needs `uv`" not in again.stdout, again.stdout
    assert f"problem: repo.setup runs {bare / 'uv'}, inside a folder the sandbox hides: install uv" in again.stdout
    assert again.returncode == 1


def test_a_relative_agent_path_is_written_absolute_and_a_missing_one_is_refused(tmp_path: Path) -> None:
    repo = seed(tmp_path, "py-app", {})
    shutil.copy(tool("factory-scripted-agent"), tmp_path / "my-agent")
    env = {**os.environ, "FACTORY_HOME": str(tmp_path / "x")}
    done = subprocess.run([tool("factoryctl"), "init", str(repo), "--home", "f", "--agent", "./my-agent -v",
                           "--no-prove"], cwd=tmp_path, env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f'command = ["{tmp_path / "my-agent"}", "-v"]' in (tmp_path / "f" / "factory.toml").read_text()
    done = subprocess.run([tool("factoryctl"), "init", str(repo), "--home", "g", "--agent", "./nope"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and done.stderr.startswith("Error: --agent: './nope'"), done.stderr
    assert not (tmp_path / "g").exists()
