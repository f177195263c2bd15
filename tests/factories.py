"""Build a real factory in tmp_path: a bare origin seeded from a sample project, the main
clone under FACTORY_HOME, factory.toml pointing at the scripted agent."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factoryctl.jobs.context import Context
from tests.helpers import REPO_ROOT, tool

SAMPLES = REPO_ROOT / "tests" / "samples"
TS_MODULES = SAMPLES / "ts-app" / "node_modules"
IGNORE = shutil.ignore_patterns("node_modules", ".ruff_cache", ".mypy_cache", ".pytest_cache", "__pycache__")

# The project's dev venv runs the sample's pytest: its own plugins (schemathesis, hypothesis, testinfra ...)
# are not the sample's, and loading them costs ~2 s per check run.
NO_DEV_PLUGINS = ", ".join(f'"-p", "no:{name}"' for name in ("testinfra", "anyio", "hypothesispytest", "schemathesis",
                                                               "typeguard"))  # fmt: skip
# Each check run gets a fresh HOME and with it an empty PYTHONPYCACHEPREFIX: pytest (and the stdlib it
# imports) would be compiled from source at every run, ~0.4 s of CPU. The tests' pytest reads the
# bytecode of this venv's own files from a prefix compiled once per run (`warm_check_bytecode`); `-X`
# wins over the variable. The worktree's own modules are still compiled from source: their bytecode
# is never found in the prefix, and a `__pycache__` a branch planted is never read.
CHECK_PYCACHE = Path(sys.executable).parent.parent / "check-pycache"
PYTEST_CHECK = f"""
[[checks]]
name = "pytest"
command = ["{sys.executable}", "-X", "pycache_prefix={CHECK_PYCACHE}", "-m", "pytest", "-q", "-p", "no:cacheprovider",
           {NO_DEV_PLUGINS}]
parser = "pytest"
heavy = true
timeout_s = 120
"""

TS_CHECKS = """
[[checks]]
name = "tsc"
command = ["npx", "--no-install", "tsc", "--noEmit"]
parser = "tsc"
heavy = true
timeout_s = 120

[[checks]]
name = "vitest"
command = ["npx", "--no-install", "vitest", "run"]
parser = "vitest"
heavy = true
timeout_s = 120
"""


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


@dataclass
class Factory:
    home: Path
    origin: Path
    scenario: Path

    def ctx(self) -> Context:
        return Context.load(self.home)

    def script(self, calls: list[dict[str, Any]], repeat: bool = False) -> None:
        self.scenario.write_text(json.dumps({"calls": calls, "repeat": repeat}))
        self.scenario.with_name(self.scenario.name + ".state").unlink(missing_ok=True)

    def origin_branches(self) -> list[str]:
        out = git(self.origin, "for-each-ref", "--format=%(refname:short)", "refs/heads/")
        return sorted(out.splitlines())

    def local_branches(self) -> list[str]:
        out = git(self.home / "repo", "for-each-ref", "--format=%(refname:short)", "refs/heads/")
        return sorted(out.splitlines())

    def main_sha(self) -> str:
        return git(self.origin, "rev-parse", "refs/heads/main")

    def show(self, ref: str, path: str) -> str:
        return git(self.origin, "show", f"{ref}:{path}")


def make_factory(
    tmp_path: Path,
    sample: str = "py-app",
    checks: str = PYTEST_CHECK,
    sessions: int = 2,
    extra: str = "",
    agent_timeout_s: int = 30,
    reviewer_timeout_s: int = 30,
    ignore_rules: bool = True,
) -> Factory:
    template = _template(tmp_path.parent / "factory-templates", sample, ignore_rules)
    if checks is PYTEST_CHECK:
        warm_check_bytecode(template / "repo")
    origin = tmp_path / "origin.git"
    shutil.copytree(template / "origin.git", origin, symlinks=True)
    home = tmp_path / "factory"
    home.mkdir(exist_ok=True)
    shutil.copytree(template / "repo", home / "repo", symlinks=True)
    config = home / "repo" / ".git" / "config"
    config.write_text(config.read_text().replace(str(template / "origin.git"), str(origin)))
    # The scripted agent keeps its scenario's state next to it: the sandbox lets it write there.
    scenario = tmp_path / "agent" / "scenario.json"
    scenario.parent.mkdir(exist_ok=True)
    setup = ""
    writable = [str(scenario.parent)]
    if sample == "ts-app":
        writable.append(str(TS_MODULES))  # shared by the tests' worktrees (symlinked): vitest writes its cache
        setup = f'\nsetup = ["ln", "-sfn", "{TS_MODULES}", "node_modules"]'
    (home / "factory.toml").write_text(
        f"""
[factory]
sessions = {sessions}
[repo]{setup}
[agent]
command = ["{tool("factory-scripted-agent")}", "--scenario", "{scenario}"]
timeout_s = {agent_timeout_s}
[reviewer]
command = ["{tool("factory-scripted-agent")}", "--scenario", "{scenario}"]
timeout_s = {reviewer_timeout_s}
[cycle]
interval_s = 60
[sandbox]
writable = {json.dumps(writable)}
{checks}
{extra}
"""
    )
    factory = Factory(home, origin, scenario)
    factory.script([{"result": "nothing"}])
    return factory


_WARMED: set[Path] = set()


def warm_check_bytecode(sample: Path) -> None:
    """Compile what the tests' pytest check imports into `CHECK_PYCACHE`, once per test run."""
    if CHECK_PYCACHE in _WARMED:
        return
    work = sample.parent / "warm-bytecode"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(sample, work, ignore=IGNORE)
    plugins = NO_DEV_PLUGINS.replace('"', "").split(", ")
    argv = [sys.executable, "-X", f"pycache_prefix={CHECK_PYCACHE}", "-m", "pytest", "-q", "-p", "no:cacheprovider",
            *plugins, f"--junitxml={work / 'junit.xml'}"]  # fmt: skip
    subprocess.run(argv, cwd=work, capture_output=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    shutil.rmtree(work, ignore_errors=True)
    _WARMED.add(CHECK_PYCACHE)


def _template(root: Path, sample: str, ignore_rules: bool) -> Path:
    """A sample's bare origin and main clone, built once per test run and copied by each test (a copy is
    cheaper than five git processes).

    `root` is under pytest's base temp folder, shared by the run's tests; each test copies, never changes, it.
    """
    template = root / f"{sample}-{'ignoring' if ignore_rules else 'bare'}"
    if (template / "done").exists():
        return template
    shutil.rmtree(template, ignore_errors=True)
    seed = template / "seed"
    shutil.copytree(SAMPLES / sample, seed, ignore=IGNORE)
    if ignore_rules:  # False: a repository that ignores nothing (by-products are the factory's business)
        (seed / ".gitignore").write_text("node_modules\n__pycache__/\n.pytest_cache/\n")
    (seed / "CLAUDE.md").write_text("Keep changes small. Tests live next to the code.\n")
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "initial")
    git(template, "clone", "-q", "--bare", str(seed), str(template / "origin.git"))
    git(template, "clone", "-q", str(template / "origin.git"), str(template / "repo"))
    (template / "done").touch()
    return template


# The real Claude Code CLI, as the default configuration runs it (tests/support/messages_standin.py
# plays the model behind it).
CLAUDE_AGENT = ["claude", "-p", "--model", "sonnet", "--output-format", "stream-json", "--verbose",
                "--permission-mode", "bypassPermissions", "--max-turns", "12", "--max-budget-usd", "2"]  # fmt: skip
CLAUDE_REVIEWER = ["claude", "-p", "--model", "sonnet", "--output-format", "json", "--max-turns", "3"]


def use_claude(factory: Factory, agent: list[str] | None = None, reviewer: list[str] | None = None) -> None:
    """The factory's agent and reviewer become the real `claude` CLI."""
    toml = factory.home / "factory.toml"
    text = toml.read_text()
    scripted = f'["{tool("factory-scripted-agent")}", "--scenario", "{factory.scenario}"]'
    assert text.count(scripted) == 2, "use_claude expects make_factory's agent and reviewer commands"
    text = text.replace(scripted, json.dumps(agent or CLAUDE_AGENT), 1)
    text = text.replace(scripted, json.dumps(reviewer or CLAUDE_REVIEWER), 1)
    toml.write_text(text)
