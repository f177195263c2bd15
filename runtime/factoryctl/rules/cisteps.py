"""What a repository's own CI runs: command lines read from its CI and task files (pure).

The repository's CI is the reference for its checks: `detect` proposes the same commands
with the same scope and flags. Read here, line by line and without running anything:
GitHub workflow `run:` steps, GitLab `script:` items, tox `commands`, nox `session.run(...)`,
the `Makefile` recipes of test/lint/check targets, and pre-commit hook ids; `npm test`,
`pnpm run X`, `yarn X` and `make X` are replaced by what they run (package.json scripts,
Makefile recipes). `tool_of` names the tool a command line runs, prefixes (`uv run`,
`python -m`, `npx`, `pnpm exec`) taken off, so the caller can map it to a check or say it
cannot.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

WORKFLOW_DIRS = (".github/workflows/",)
CI_FILES = (".gitlab-ci.yml", "tox.ini", "noxfile.py", ".pre-commit-config.yaml", "Makefile")
MAKE_TARGETS = ("test", "tests", "check", "lint", "typecheck", "type-check", "mypy", "ci")
MAX_DEPTH = 4  # script -> script -> make target ...: deeper is a loop or not worth following

# Tools we can measure, by the name a command line runs them under.
KNOWN = ("pytest", "mypy", "ruff", "tsc", "vitest", "jest", "eslint", "pyright", "node-test")
# Steps that install, fetch or set up: never a check, never "not mapped".
_SETUP_WORDS = {
    "install", "ci", "sync", "lock", "checkout", "cd", "echo", "export", "set", "source", ".", "mkdir", "cp", "rm",
    "pip", "pip3", "uv", "poetry", "corepack", "apt-get", "apt", "sudo", "git", "curl", "wget", "python -m pip",
    "npm ci", "pnpm install", "yarn install", "actions", "cat", "ls", "true", "exit", "if", "fi", "then", "else",
    "done", "for", "do", "build", "coverage", "codecov", "twine", "tox", "nox", "pre-commit", "make", "npm", "pnpm",
    "yarn", "npx", "node", "python", "python3",
}  # fmt: skip
_PREFIXES = (
    ("uv", "run"), ("poetry", "run"), ("pdm", "run"), ("hatch", "run"), ("pipenv", "run"), ("pnpm", "exec"),
    ("npm", "exec"), ("yarn", "exec"), ("pnpm", "dlx"), ("bunx",), ("npx",), ("python", "-m"), ("python3", "-m"),
    ("coverage", "run", "-m"),
)  # fmt: skip


@dataclass(frozen=True)
class Step:
    """One command line the repository's CI runs, and where it was read."""

    source: str  # e.g. ".github/workflows/test.yml", "package.json scripts.test"
    argv: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.argv)


def _split(line: str) -> list[list[str]]:
    """A shell line as argv lists (split on &&, ||, ;, |); a line that does not split is skipped."""
    try:
        words = shlex.split(line, comments=True, posix=True)
    except ValueError:
        return []
    out: list[list[str]] = [[]]
    for word in words:
        if word in ("&&", "||", ";", "|"):
            out.append([])
        elif word.endswith(";") and len(word) > 1:
            out[-1].append(word[:-1])
            out.append([])
        else:
            out[-1].append(word)
    return [argv for argv in out if argv]


def _yaml_runs(text: str) -> list[str]:
    """The `run:` lines of a GitHub workflow (inline and `|` blocks), without a YAML library."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = re.match(r"^(\s*)(?:-\s+)?run:\s*(.*)$", lines[i])
        i += 1
        if not match:
            continue
        rest = match[2].strip()
        if rest and rest[0] not in "|>":
            out.append(rest.strip("'\""))
            continue
        indent = len(match[1])
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            if lines[i].strip():
                out.append(lines[i].strip())
            i += 1
    return out


def _gitlab_scripts(text: str) -> list[str]:
    """The items of every `script:` list of a .gitlab-ci.yml."""
    out: list[str] = []
    inside = -1
    for line in text.splitlines():
        key = re.match(r"^(\s*)script:\s*(.*)$", line)
        if key:
            inside = len(key[1])
            if key[2].strip().startswith("["):
                out += [s.strip().strip("'\"") for s in key[2].strip("[] ").split(",") if s.strip()]
                inside = -1
            continue
        item = re.match(r"^(\s*)-\s+(.*)$", line)
        if inside >= 0 and item and len(item[1]) >= inside:
            out.append(item[2].strip().strip("'\""))
        elif line.strip() and inside >= 0 and len(line) - len(line.lstrip()) <= inside:
            inside = -1
    return out


def _tox_commands(text: str) -> list[str]:
    out: list[str] = []
    inside = False
    for line in text.splitlines():
        if re.match(r"^\s*commands\s*=", line):
            inside = True
            first = line.split("=", 1)[1].strip()
            if first:
                out.append(first)
            continue
        if inside and line[:1].isspace() and line.strip():
            out.append(line.strip())
        else:
            inside = False
    return [re.sub(r"\{posargs(?::([^}]*))?\}", lambda m: m[1] or "", c).strip() for c in out]  # its defaults


def _nox_runs(text: str) -> list[str]:
    out = []
    for call in re.finditer(r"session\.run\(([^)]*)\)", text):
        args = re.findall(r"[\"']([^\"']+)[\"']", call[1].split("=", 1)[0] if "=" in call[1] else call[1])
        if args:
            out.append(shlex.join(args))
    return out


def _make_recipes(text: str) -> dict[str, list[str]]:
    recipes: dict[str, list[str]] = {}
    target = None
    for line in text.splitlines():
        rule = re.match(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", line)
        if rule:
            target = rule[1]
            recipes.setdefault(target, [])
        elif target and line.startswith("\t"):
            recipes[target].append(line.strip().lstrip("@-"))
        elif line.strip() and not line.startswith("#"):
            target = None
    return recipes


def precommit_hooks(text: str) -> list[str]:
    """The hook ids of a .pre-commit-config.yaml."""
    return re.findall(r"^\s*-?\s*id:\s*['\"]?([\w.-]+)", text, re.M)


def ci_steps(files: Mapping[str, str], scripts: Mapping[str, str]) -> list[Step]:
    """Every command line the CI files run, with package scripts and make targets expanded."""
    raw: list[tuple[str, str]] = []
    for name in sorted(files):
        if name.startswith(WORKFLOW_DIRS) and name.endswith((".yml", ".yaml")):
            raw += [(name, line) for line in _yaml_runs(files[name])]
    if ".gitlab-ci.yml" in files:
        raw += [(".gitlab-ci.yml", line) for line in _gitlab_scripts(files[".gitlab-ci.yml"])]
    if "tox.ini" in files:
        raw += [("tox.ini", line) for line in _tox_commands(files["tox.ini"])]
    if "noxfile.py" in files:
        raw += [("noxfile.py", line) for line in _nox_runs(files["noxfile.py"])]
    recipes = _make_recipes(files.get("Makefile", ""))
    if not raw:  # no CI file: the Makefile's check targets, then package.json's test script, are what people run
        raw += [("Makefile", f"make {t}") for t in MAKE_TARGETS if t in recipes]
        raw += [(f"package.json scripts.{s}", f"npm run {s}") for s in ("test", "typecheck", "lint") if s in scripts]
    out: list[Step] = []
    for source, line in raw:
        for argv in _split(line):
            out += _expand(source, argv, scripts, recipes, 0)
    return out


def _expand(source: str, argv: list[str], scripts: Mapping[str, str], recipes: Mapping[str, list[str]],
            depth: int) -> list[Step]:  # fmt: skip
    if depth >= MAX_DEPTH:
        return [Step(source, tuple(argv))]
    script = _script_name(argv)
    if script is not None and script in scripts:
        where = f"package.json scripts.{script}"
        return [s for sub in _split(scripts[script]) for s in _expand(where, sub, scripts, recipes, depth + 1)]
    if argv[0] == "make" and len(argv) > 1 and argv[1] in recipes:
        where = f"Makefile {argv[1]}"
        lines = recipes[argv[1]]
        return [s for line in lines for sub in _split(line) for s in _expand(where, sub, scripts, recipes, depth + 1)]
    return [Step(source, tuple(argv))]


def _script_name(argv: list[str]) -> str | None:
    """`npm test` -> "test", `pnpm run lint` / `yarn lint` / `npm run-script x` -> the script's name."""
    if argv[0] not in ("npm", "pnpm", "yarn", "bun") or len(argv) < 2:
        return None
    rest = [w for w in argv[1:] if not w.startswith("-")]
    if not rest:
        return None
    if rest[0] in ("run", "run-script") and len(rest) > 1:
        return rest[1]
    if rest[0] in ("test", "t"):
        return "test"
    return rest[0] if argv[0] in ("pnpm", "yarn", "bun") and rest[0] not in ("install", "exec", "dlx") else None


def tool_of(argv: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
    """(tool, its arguments) for a command line that runs one we know; None otherwise."""
    words = list(argv)
    while words and "=" in words[0] and not words[0].startswith("-"):  # FOO=1 pytest
        words = words[1:]
    changed = True
    while changed and words:
        changed = False
        for prefix in _PREFIXES:
            if tuple(words[: len(prefix)]) == prefix:
                words = words[len(prefix) :]
                while words and words[0].startswith("-") and prefix[-1] in ("run", "exec"):
                    words = words[1:]  # uv run --frozen pytest
                changed = True
                break
    if not words:
        return None
    head = words[0].rsplit("/", 1)[-1]
    if head == "node" and "--test" in words:
        return "node-test", tuple(words[1:])
    if head in KNOWN:
        return head, tuple(words[1:])
    return None


def unmapped(step: Step) -> bool:
    """A step that runs something other than setup and a tool we know: to be said, not guessed."""
    if tool_of(step.argv) is not None:
        return False
    head = step.argv[0].rsplit("/", 1)[-1]
    return head not in _SETUP_WORDS and not head.startswith(("$", "${"))
