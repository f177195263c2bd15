"""What a repository needs: its setup command and its checks, read from its files (pure).

`factoryctl init` and the deploy (when the host data names no checks) both use
`detect(files)`, where `files` maps the names of the few files that tell (manifests,
lockfiles, tsconfig, CI and task files) to their text. The repository's own CI is the
reference (rules/cisteps.py): a tool its CI runs is run with the same arguments (scope and
flags); a tool it configures but CI does not name runs as its config says; a CI step that
maps to no parser is said in a note. The rules:
- the lockfile picks the package manager: pnpm-lock.yaml -> `pnpm install --frozen-lockfile`
  (the pinned pnpm, `npx --yes pnpm@X`, when package.json's `packageManager` pins one),
  package-lock.json -> `npm ci`, yarn.lock -> `yarn install --frozen-lockfile`; a
  package.json without one -> `npm install` (and a note: commit a lockfile);
- tsconfig.json -> `tsc --noEmit`; vitest / jest / eslint among package.json's
  dependencies -> `vitest run` / `jest --ci` / `eslint .`, with the flags of the package
  script that runs them (`vitest run --passWithNoTests`);
- pyproject.toml -> pytest when it configures pytest or has a tests folder, ruff and mypy
  when it configures them or depends on them; mypy gets no path when its config names
  `files`; uv.lock -> `uv sync --frozen`, and the tools run through
  `uv run --frozen --no-sync`, which never re-locks, builds or downloads.
"""

from __future__ import annotations

import configparser
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from factoryctl.rules.cisteps import CI_FILES, WORKFLOW_DIRS, Step, ci_steps, precommit_hooks, tool_of, unmapped

# The files `detect` reads, relative to the repository root (a test folder is marked by "tests/";
# a folder of CI files, WORKFLOW_DIRS, is read file by file as "<folder>/<name>").
FILES = (
    "package.json", "pnpm-lock.yaml", "package-lock.json", "yarn.lock", "tsconfig.json",
    "pyproject.toml", "uv.lock", "requirements.txt", "mypy.ini", "setup.cfg", "pytest.ini",
    "tests/", "test/", *CI_FILES,
)  # fmt: skip
DIRS = WORKFLOW_DIRS

# What to install when a tool init needs is missing, by command name.
HOW_TO_GET = {
    "uv": "pip install uv (or curl -LsSf https://astral.sh/uv/install.sh | sh)",
    "pnpm": "npm install -g pnpm (a pinned one is run with npx --yes pnpm@VERSION)",
    "yarn": "corepack enable yarn, or npm install -g yarn",
    "npm": "apt-get install npm (or install Node.js, which ships npm)",
    "npx": "apt-get install npm (or install Node.js, which ships npx)",
    "node": "apt-get install nodejs",
    "corepack": "npm install -g corepack",
    "poetry": "pip install poetry",
    "python3": "apt-get install python3",
    "pyright": "npm install -g pyright",
}


# What the deploy installs for a program repo.setup or a check starts (measured releases).
# npm: installed globally at this version; pip: into the runtime's venv, linked into /usr/local/bin.
TOOL_PACKAGES: dict[str, tuple[str, str, str]] = {
    "pnpm": ("npm", "pnpm", "10.28.0"),
    "yarn": ("npm", "yarn", "1.22.22"),
    "corepack": ("npm", "corepack", "0.34.0"),
    "uv": ("pip", "uv", ""),
    "poetry": ("pip", "poetry", ""),
}


@dataclass(frozen=True)
class Toolchain:
    """What the server needs installed to run a repository's setup and checks."""

    npm: Mapping[str, str] = field(default_factory=dict)  # global npm package -> exact version
    pip: tuple[str, ...] = ()  # Python tools for the runtime's venv


def toolchain(commands: Sequence[Sequence[str]], extra_npm: Mapping[str, str] | None = None) -> Toolchain:
    """The tools `commands` (repo.setup, the checks) start, as packages to install; host data's extras win."""
    npm: dict[str, str] = {}
    pip: list[str] = []
    for argv in commands:
        if not argv:
            continue
        kind, package, version = TOOL_PACKAGES.get(argv[0].rsplit("/", 1)[-1], ("", "", ""))
        pinned = _npx_pinned(argv)
        if pinned is not None:  # `npx --yes pnpm@X`: that pnpm, installed, so setup finds it and downloads none
            kind, (package, version) = "npm", pinned
        if kind == "npm":
            npm[package] = version
        elif kind == "pip" and package not in pip:
            pip.append(package)
    npm.update(extra_npm or {})
    return Toolchain(npm, tuple(pip))


def _npx_pinned(argv: Sequence[str]) -> tuple[str, str] | None:
    """(package, version) of a pinned package manager `npx --yes NAME@VERSION ...` runs, else None."""
    if argv[0].rsplit("/", 1)[-1] != "npx":
        return None
    spec = next((a for a in argv[1:] if not a.startswith("-")), "")
    match = re.fullmatch(r"(pnpm|yarn)@(\d+\.\d+\.\d+)", spec)
    return None if match is None else (match[1], match[2])


@dataclass(frozen=True)
class Detected:
    setup: tuple[str, ...] = ()
    checks: tuple[Mapping[str, Any], ...] = ()  # [[checks]] tables, as factory.toml holds them
    found: tuple[str, ...] = ()  # what was seen, one line each, for the person running init
    notes: tuple[str, ...] = field(default=())  # what to check by hand

    def as_dict(self) -> dict[str, Any]:
        return {"setup": list(self.setup), "checks": [dict(c) for c in self.checks],
                "found": list(self.found), "notes": list(self.notes)}  # fmt: skip


def _check(name: str, command: list[str], parser: str, *, heavy: bool = True, timeout_s: int = 900,
           **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {"name": name, "command": command, "parser": parser, "heavy": heavy, "timeout_s": timeout_s, **extra}


def _package_json(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def package_scripts(files: Mapping[str, str]) -> dict[str, str]:
    """package.json's scripts (name -> command line), the ones that are strings."""
    scripts = (_package_json(files.get("package.json")) or {}).get("scripts")
    return {k: v for k, v in scripts.items() if isinstance(v, str)} if isinstance(scripts, dict) else {}


def _ci_args(steps: list[Step], tool: str) -> tuple[Step, tuple[str, ...]] | None:
    """The first CI step that runs `tool`, and the arguments it runs it with."""
    for step in steps:
        found = tool_of(step.argv)
        if found is not None and found[0] == tool:
            return step, found[1]
    return None


_DROP = {  # flags we set ourselves (reports, caches) or that would hang (watch): the CI's are left out
    "pytest": ("--junitxml", "--junit-xml", "-p", "--cov", "--cov-report"),
    "vitest": ("--reporter", "--outputFile", "--watch", "--coverage"),
    "ruff": ("--output-format", "--no-cache", "--fix"),
    "mypy": ("--cache-dir",),
}


_TAKES_VALUE = ("-p", "--junitxml", "--junit-xml", "--cov-report", "--reporter", "--outputFile", "--output-format",
                "--cache-dir")  # fmt: skip


def _clean(tool: str, args: tuple[str, ...]) -> list[str]:
    drop = _DROP.get(tool, ())
    out: list[str] = []
    skip = False
    for word in args:
        if skip:
            skip = False
            continue
        key = word.split("=", 1)[0]
        if key in drop:
            skip = "=" not in word and key in _TAKES_VALUE  # its value is the next word: dropped too
            continue
        out.append(word)
    return out


Found = tuple[list[str], list[dict[str, Any]], list[str], list[str]]  # setup, checks, found, notes


def _node(files: Mapping[str, str], steps: list[Step]) -> Found:
    package = _package_json(files.get("package.json"))
    if package is None and "tsconfig.json" not in files:
        return [], [], [], []
    found, notes = [], []
    pinned = package.get("packageManager") if isinstance(package, dict) else None
    pin = re.fullmatch(r"(pnpm|yarn|npm)@(\d[\w.+-]*)", pinned.split("+", 1)[0]) if isinstance(pinned, str) else None
    run = ["npx", "--no-install"]  # the installed binaries: checks never start a package manager (no lockfile check)
    if "pnpm-lock.yaml" in files:
        if pin and pin[1] == "pnpm":
            setup = ["npx", "--yes", f"pnpm@{pin[2]}", "install", "--frozen-lockfile"]
            found.append(f"pnpm-lock.yaml, packageManager pnpm@{pin[2]}: that pnpm, run with npx")
        else:
            setup, run = ["pnpm", "install", "--frozen-lockfile"], ["pnpm", "exec"]
            found.append("pnpm-lock.yaml: pnpm")
    elif "package-lock.json" in files:
        setup = ["npm", "ci", "--no-audit", "--no-fund"]
        found.append("package-lock.json: npm")
    elif "yarn.lock" in files:
        if pin and pin[1] == "yarn" and not pin[2].startswith("1."):
            setup = ["corepack", "yarn", "install", "--immutable"]
            found.append(f"yarn.lock, packageManager yarn@{pin[2]}: corepack yarn")
        else:
            setup, run = ["yarn", "install", "--frozen-lockfile"], ["yarn", "run"]
            found.append("yarn.lock: yarn")
    else:
        setup = ["npm", "install", "--no-audit", "--no-fund"]
        found.append("package.json without a lockfile: npm install")
        notes.append("commit a lockfile: without one every worktree may install different versions")
    deps: dict[str, Any] = {}
    for key in ("dependencies", "devDependencies"):
        section = (package or {}).get(key)
        if isinstance(section, dict):
            deps.update(section)
    checks = []
    wanted = [("tsc", "tsconfig.json" in files or "typescript" in deps, ["--noEmit"], "tsc"),
              ("vitest", "vitest" in deps, ["run"], "vitest"), ("jest", "jest" in deps, ["--ci"], "jest"),
              ("eslint", "eslint" in deps, ["."], "eslint")]  # fmt: skip
    for tool, present, default, parser in wanted:
        ci = _ci_args(steps, tool)
        if not present and ci is None:
            continue
        args = default if ci is None else _clean(tool, ci[1])
        if tool == "vitest" and not {"run", "--run"} & set(args):
            args = ["run", *args]  # `vitest` alone watches
        if tool == "jest" and "--ci" not in args:
            args = ["--ci", *args]
        if tool == "tsc" and "--noEmit" not in args:
            args = [*args, "--noEmit"]  # emitted files would be left in the worktree and void the run
        checks.append(_check(tool, [*run, tool, *args], parser, heavy=tool != "eslint"))
        where = f" (as {ci[0].source} runs it)" if ci else ""
        found.append(f"{tool}: {tool} {' '.join(args)}{where}")
    node_test = _ci_args(steps, "node-test")
    if node_test is not None:
        checks.append(_check("node-test", ["node", *node_test[1]], "regex", pattern=NODE_TEST_PATTERN))
        found.append(f"node --test ({node_test[0].source})")
    if package is None:
        setup = []
        notes.append("tsconfig.json without package.json: tsc must be on PATH")
    return setup, checks, found, notes


# node --test's summary, TAP (`# tests 3`) or spec (`ℹ tests 3`) reporter.
NODE_TEST_PATTERN = r"^(?:#|ℹ) (?:tests (?P<total>\d+)|pass (?P<passed>\d+)|fail (?P<failed>\d+))\s*$"
PYRIGHT_PATTERN = r"^(?P<errors>\d+) errors?, \d+ warnings?"


def _ini_option(files: Mapping[str, str], name: str, section: str, key: str) -> str | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(files.get(name, ""))
    except configparser.Error:
        return None
    return parser.get(section, key, fallback=None)


def _mypy_files(files: Mapping[str, str], tool: Mapping[str, Any]) -> str | None:
    """What mypy's own config says to check (`files`), if it says."""
    mypy = tool.get("mypy")
    if isinstance(mypy, dict) and mypy.get("files"):
        named = mypy["files"]
        return ", ".join(named) if isinstance(named, list) else str(named)
    for name in ("mypy.ini", "setup.cfg"):
        value = _ini_option(files, name, "mypy", "files")
        if value:
            return value.strip()
    return None


def _python(files: Mapping[str, str], steps: list[Step]) -> Found:
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
    mentions = text.lower() + "".join(" ".join(s.argv) for s in steps)
    hooks = set(precommit_hooks(files.get(".pre-commit-config.yaml", "")))  # tools CI runs through pre-commit
    if "uv.lock" in files:
        # --no-sync: a check never builds, re-locks or downloads (setup did, with the network).
        setup, run = ["uv", "sync", "--frozen"], ["uv", "run", "--frozen", "--no-sync", "python", "-B", "-m"]
        found.append("uv.lock: uv sync --frozen; checks with uv run --frozen --no-sync")
    else:
        setup, run = [], ["python3", "-B", "-m"]  # -B: no __pycache__ left in the worktree
        notes.append("no uv.lock: checks run with the python3 on PATH, which needs the project's dependencies")
    checks = []
    pytest_ci = _ci_args(steps, "pytest")
    if "pytest" in tool or "pytest" in mentions or "tests/" in files or "test/" in files or "pytest.ini" in files:
        args = [] if pytest_ci is None else _clean("pytest", pytest_ci[1])
        # No -q of ours: the repository's addopts may hold one (with ours pytest prints no summary).
        checks.append(_check("pytest", [*run, "pytest", "-p", "no:cacheprovider", *args], "pytest"))
        found.append(f"pytest: pytest {' '.join(args)}".rstrip() + (f" (as {pytest_ci[0].source} runs it)" if
                                                                   pytest_ci else ""))  # fmt: skip
    ruff_ci = _ci_args(steps, "ruff")
    if "ruff" in tool or '"ruff' in mentions or ruff_ci is not None or "ruff" in hooks:
        args = ["check", "."] if ruff_ci is None or not ruff_ci[1] else _clean("ruff", ruff_ci[1])
        if args[0] != "check":
            args = ["check", "."]  # `ruff format --check` is not counted; the check is
        # JSON: counted the same whatever output-format the repository's config sets.
        command = [*run, "ruff", *args[:1], "--no-cache", "--output-format=json", *args[1:]]
        checks.append(_check("ruff", command, "ruff", heavy=False))
        found.append(f"ruff: ruff {' '.join(args)}")
    mypy_ci = _ci_args(steps, "mypy")
    if "mypy" in tool or '"mypy' in mentions or mypy_ci is not None or "mypy.ini" in files or "mypy" in hooks:
        named = _mypy_files(files, tool)
        if mypy_ci is not None:
            args = _clean("mypy", mypy_ci[1])
            where = f" (as {mypy_ci[0].source} runs it)"
        elif named:
            args, where = [], f" (no path: its config names files = {named})"
        else:
            args, where = ["."], ""
        checks.append(_check("mypy", [*run, "mypy", "--cache-dir=/dev/null", *args], "mypy"))
        found.append(f"mypy: mypy {' '.join(args)}".rstrip() + where)
    pyright_ci = _ci_args(steps, "pyright")
    if pyright_ci is not None or "pyright" in tool:
        args = [] if pyright_ci is None else list(pyright_ci[1])
        command = [*run, "pyright", *args] if "uv.lock" in files else ["pyright", *args]
        checks.append(_check("pyright", command, "regex", pattern=PYRIGHT_PATTERN))
        found.append(f"pyright: pyright {' '.join(args)}".rstrip())
    return setup, checks, found, notes


def _unmapped_notes(steps: list[Step], files: Mapping[str, str]) -> list[str]:
    notes = []
    seen: set[str] = set()
    for step in steps:
        if unmapped(step) and step.text not in seen:
            seen.add(step.text)
            notes.append(f"{step.source} runs `{step.text[:120]}`: not mapped to a check (add a [[checks]] "
                         "with parser exitcode or regex to measure it)")  # fmt: skip
    hooks = precommit_hooks(files.get(".pre-commit-config.yaml", ""))
    known = {"ruff", "ruff-format", "mypy", "eslint", "pyright", "trailing-whitespace", "end-of-file-fixer",
             "check-yaml", "check-toml", "check-added-large-files", "check-merge-conflict"}  # fmt: skip
    other = [h for h in hooks if h not in known]
    if other:
        notes.append(f".pre-commit-config.yaml hooks not mapped to a check: {', '.join(other[:8])}")
    return notes


def detect(files: Mapping[str, str]) -> Detected:
    """The setup and checks for a repository whose telling files are `files` (name -> text)."""
    steps = ci_steps(files, package_scripts(files))
    node_setup, node_checks, node_found, node_notes = _node(files, steps)
    py_setup, py_checks, py_found, py_notes = _python(files, steps)
    setup = node_setup or py_setup
    notes = node_notes + py_notes + _unmapped_notes(steps, files)
    ci_found = sorted({s.source for s in steps})
    if ci_found:
        node_found.insert(0, f"CI and task files read: {', '.join(ci_found)}")
    if node_setup and py_setup:
        notes.append(f"both Node and Python setups found; repo.setup runs only {' '.join(node_setup)}")
    checks = node_checks + py_checks
    if not checks:
        notes.append("no checks detected: add [[checks]] to factory.toml, or the gate waits for a person")
    return Detected(tuple(setup), tuple(checks), tuple(node_found + py_found), tuple(notes))
