"""What a repository needs: its setup command and its checks, read from its files (pure).

`factoryctl init` and the deploy (when the host data names no checks) both use
`detect(files)`, where `files` maps the names of the few files that tell (manifests,
lockfiles, tsconfig) to their text. The rules:
- the lockfile picks the package manager: pnpm-lock.yaml -> `pnpm install --frozen-lockfile`,
  package-lock.json -> `npm ci`, yarn.lock -> `yarn install --frozen-lockfile`; a
  package.json without one -> `npm install` (and a note: commit a lockfile);
- tsconfig.json -> `tsc --noEmit`; vitest / jest / eslint among package.json's
  dependencies -> `vitest run` / `jest --ci` / `eslint .`, run through the package manager;
- pyproject.toml -> pytest when it configures pytest or has a tests folder, ruff and mypy
  when it configures them (`[tool.ruff]`, `[tool.mypy]`) or depends on them; uv.lock ->
  `uv sync --frozen` and the tools run through `uv run`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The files `detect` reads, relative to the repository root (a test folder is marked by "tests/").
FILES = (
    "package.json", "pnpm-lock.yaml", "package-lock.json", "yarn.lock", "tsconfig.json",
    "pyproject.toml", "uv.lock", "requirements.txt", "tests/", "test/",
)  # fmt: skip


@dataclass(frozen=True)
class Detected:
    setup: tuple[str, ...] = ()
    checks: tuple[Mapping[str, Any], ...] = ()  # [[checks]] tables, as factory.toml holds them
    found: tuple[str, ...] = ()  # what was seen, one line each, for the person running init
    notes: tuple[str, ...] = field(default=())  # what to check by hand

    def as_dict(self) -> dict[str, Any]:
        return {"setup": list(self.setup), "checks": [dict(c) for c in self.checks],
                "found": list(self.found), "notes": list(self.notes)}  # fmt: skip


def _check(name: str, command: list[str], parser: str, *, heavy: bool = True, timeout_s: int = 900) -> dict[str, Any]:
    return {"name": name, "command": command, "parser": parser, "heavy": heavy, "timeout_s": timeout_s}


def _package_json(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _node(files: Mapping[str, str]) -> tuple[list[str], list[dict[str, Any]], list[str], list[str]]:
    package = _package_json(files.get("package.json"))
    if package is None and "tsconfig.json" not in files:
        return [], [], [], []
    found, notes = [], []
    if "pnpm-lock.yaml" in files:
        setup, run = ["pnpm", "install", "--frozen-lockfile"], ["pnpm", "exec"]
        found.append("pnpm-lock.yaml: pnpm")
    elif "package-lock.json" in files:
        setup, run = ["npm", "ci", "--no-audit", "--no-fund"], ["npx", "--no-install"]
        found.append("package-lock.json: npm")
    elif "yarn.lock" in files:
        setup, run = ["yarn", "install", "--frozen-lockfile"], ["yarn", "run"]
        found.append("yarn.lock: yarn")
    else:
        setup, run = ["npm", "install", "--no-audit", "--no-fund"], ["npx", "--no-install"]
        found.append("package.json without a lockfile: npm install")
        notes.append("commit a lockfile: without one every worktree may install different versions")
    deps: dict[str, Any] = {}
    for key in ("dependencies", "devDependencies"):
        section = (package or {}).get(key)
        if isinstance(section, dict):
            deps.update(section)
    checks = []
    if "tsconfig.json" in files:
        checks.append(_check("tsc", [*run, "tsc", "--noEmit"], "tsc"))
        found.append("tsconfig.json: tsc --noEmit")
    if "vitest" in deps:
        checks.append(_check("vitest", [*run, "vitest", "run"], "vitest"))
        found.append("vitest in package.json: vitest run")
    if "jest" in deps:
        checks.append(_check("jest", [*run, "jest", "--ci"], "jest"))
        found.append("jest in package.json: jest --ci")
    if "eslint" in deps:
        checks.append(_check("eslint", [*run, "eslint", "."], "eslint", heavy=False))
        found.append("eslint in package.json: eslint .")
    if package is None:
        setup = []
        notes.append("tsconfig.json without package.json: tsc must be on PATH")
    return setup, checks, found, notes


def _python(files: Mapping[str, str]) -> tuple[list[str], list[dict[str, Any]], list[str], list[str]]:
    text = files.get("pyproject.toml")
    if text is None:
        return [], [], [], []
    found, notes = ["pyproject.toml: Python"], []
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        data = {}
        notes.append("pyproject.toml does not parse: checks guessed from its text")
    raw_tool = data.get("tool")
    tool: dict[str, Any] = raw_tool if isinstance(raw_tool, dict) else {}
    mentions = text.lower()
    if "uv.lock" in files:
        setup, run = ["uv", "sync", "--frozen"], ["uv", "run", "python", "-B", "-m"]
        found.append("uv.lock: uv sync --frozen")
    else:
        setup, run = [], ["python3", "-B", "-m"]  # -B: no __pycache__ left in the worktree
        notes.append("no uv.lock: checks run with the python3 on PATH, which needs the project's dependencies")
    checks = []
    if "pytest" in tool or "pytest" in mentions or "tests/" in files or "test/" in files:
        checks.append(_check("pytest", [*run, "pytest", "-q", "-p", "no:cacheprovider"], "pytest"))
        found.append("pytest: pytest -q")
    if "ruff" in tool or '"ruff' in mentions:
        checks.append(_check("ruff", [*run, "ruff", "check", "--no-cache", "."], "ruff", heavy=False))
        found.append("ruff: ruff check .")
    if "mypy" in tool or '"mypy' in mentions:
        checks.append(_check("mypy", [*run, "mypy", "--cache-dir=/dev/null", "."], "mypy"))
        found.append("mypy: mypy .")
    return setup, checks, found, notes


def detect(files: Mapping[str, str]) -> Detected:
    """The setup and checks for a repository whose telling files are `files` (name -> text)."""
    node_setup, node_checks, node_found, node_notes = _node(files)
    py_setup, py_checks, py_found, py_notes = _python(files)
    setup = node_setup or py_setup
    notes = node_notes + py_notes
    if node_setup and py_setup:
        notes.append(f"both Node and Python setups found; repo.setup runs only {' '.join(node_setup)}")
    checks = node_checks + py_checks
    if not checks:
        notes.append("no checks detected: add [[checks]] to factory.toml, or the gate waits for a person")
    return Detected(tuple(setup), tuple(checks), tuple(node_found + py_found), tuple(notes))
