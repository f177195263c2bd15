"""What makes a change worse, and which paths it may not touch: the cycle's and the gate's shared rules."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from collections.abc import Mapping, Sequence

from factoryctl.core.checks import CheckRun, Counts
from factoryctl.core.config import Settings
from factoryctl.core.defaults import LOST_TESTS_SHOWN, PACKAGE_JSON_SENSITIVE_KEYS, PYPROJECT_SENSITIVE_KEYS
from factoryctl.core.records import Task

NO_CHECKS = "no checks are configured ([[checks]] in factory.toml): a change is judged by the reviewer alone"
CHANGED_DURING_CHECKS = "the worktree changed during the checks (HEAD or a tracked file): they did not test the commit"


def worse(before: Mapping[str, Counts], after: Mapping[str, Counts]) -> list[str]:
    """Why `after` is worse than `before` (empty when it is not): the discard and reject rule."""
    reasons = []
    for name, old in before.items():
        new = after.get(name)
        if new is None:
            reasons.append(f"{name}: did not run")
            continue
        if new.crashed:  # unverifiable is never "not worse", even when main's run crashed too
            reasons.append(f"{name}: crashed ({new.note or 'no report'})")
            continue
        if new.errors > old.errors:
            reasons.append(f"{name}: errors {old.errors} -> {new.errors}")
        if new.failed > old.failed:
            reasons.append(f"{name}: failed tests {old.failed} -> {new.failed}")
        if new.total < old.total:
            reasons.append(f"{name}: tests {old.total} -> {new.total}")
    return reasons


def protected_touched(files: Sequence[str], protected: Sequence[str]) -> list[str]:
    """Changed files under a protected path (a prefix like `.github/`, or an exact file)."""
    hits = []
    for path in files:
        for rule in protected:
            if path == rule.rstrip("/") or (rule.endswith("/") and path.startswith(rule)):
                hits.append(path)
                break
    return hits


def commit_message(session: str, task: Task | None, summary: str) -> str:
    lines = [line.strip() for line in summary.strip().splitlines() if line.strip()]
    subject = (lines[-1] if lines else f"{session}: change")[:72]
    body = "\n".join(lines)[:2000]
    trailer = f"Factory-Session: {session}" + (f"\nFactory-Task: {task.id}" if task else "")
    return f"{subject}\n\n{body}\n\n{trailer}\n" if body and body != subject else f"{subject}\n\n{trailer}\n"


def no_checks_reason(settings: Settings) -> str | None:
    """Why the gate must not land a branch by itself for want of checks, or None.

    With no [[checks]] nothing measures a change: cycles and `status` say so, and the gate
    waits for a person unless `review.allow_without_checks` is true.
    """
    if settings.checks or settings.review.allow_without_checks:
        return None
    return NO_CHECKS + "; the gate waits for a person (review.allow_without_checks = false)"


def main_problems(sound: Mapping[str, Counts] | None, current: Mapping[str, Counts]) -> list[str]:
    """Why main's checks cannot be trusted as a baseline now (empty: they can).

    A check that crashes on main measures nothing, and more errors or failing tests than
    main's last sound baseline mean main itself regressed: every change would be judged
    against a broken yardstick, so cycles wait instead of paying for an agent call.
    Fewer tests alone is not a problem (a person may delete tests on purpose).
    """
    problems = [f"main's check {name} crashes: {c.note or 'no report'}" for name, c in current.items() if c.crashed]
    for name, old in (sound or {}).items():
        new = current.get(name)
        if new is None or new.crashed:
            continue
        if new.errors > old.errors:
            problems.append(f"main's check {name} regressed: errors {old.errors} -> {new.errors}")
        if new.failed > old.failed:
            problems.append(f"main's check {name} regressed: failed tests {old.failed} -> {new.failed}")
    return problems


def worse_reasons(
    counts: Mapping[str, Counts], tests: Mapping[str, Mapping[str, str] | None], after: Mapping[str, CheckRun]
) -> list[str]:
    """Why a run is worse than main's (counts and tests by name); empty when it is not."""
    now_tests = {name: run.tests for name, run in after.items()}
    return worse(counts, {n: r.counts for n, r in after.items()}) + tests_worse(tests, now_tests)


def tests_worse(
    before: Mapping[str, Mapping[str, str] | None], after: Mapping[str, Mapping[str, str] | None]
) -> list[str]:
    """Tests that passed on main and are missing, skipped or failing now, by name, per check.

    Compared only where main's run wrote a report; a branch whose run wrote none then is worse
    (a report that vanishes is a way to hide tests).
    """
    reasons = []
    for check, old in before.items():
        if old is None:
            continue
        new = after.get(check)
        if new is None:
            reasons.append(f"{check}: wrote no test report (main's run did)")
            continue
        lost = sorted(t for t, outcome in old.items() if outcome == "passed" and new.get(t) != "passed")
        if lost:
            shown = ", ".join(f"{t} ({new.get(t, 'missing')})" for t in lost[:LOST_TESTS_SHOWN])
            more = f" and {len(lost) - LOST_TESTS_SHOWN} more" if len(lost) > LOST_TESTS_SHOWN else ""
            reasons.append(f"{check}: passed on main, not now: {shown}{more}")
    return reasons


def sensitive_touched(files: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """Changed files matching a sensitive pattern: a glob on the whole path, or on the name when it has no '/'."""
    hits = []
    for path in files:
        name = path.rsplit("/", 1)[-1]
        if any(fnmatch.fnmatchcase(path if "/" in pat else name, pat) for pat in patterns):
            hits.append(path)
    return hits


def judging_config_changed(path: str, before: str | None, after: str | None) -> bool:
    """Whether a change to this sensitive file changes how the checks judge.

    pyproject.toml: its [tool.*] tables (pytest, mypy, ruff, coverage ... configuration), its
    build system, entry points and scripts (a pytest11 plugin, a command named like a tool);
    package.json: its scripts and test-runner keys. Anything unreadable counts as a change;
    every other sensitive file always does.
    """
    name = path.rsplit("/", 1)[-1]
    if name not in ("pyproject.toml", "package.json") or before is None or after is None:
        return True
    try:
        if name == "pyproject.toml":
            old_toml, new_toml = tomllib.loads(before), tomllib.loads(after)
            return any(_dotted(old_toml, key) != _dotted(new_toml, key) for key in PYPROJECT_SENSITIVE_KEYS)
        old, new = json.loads(before), json.loads(after)
    except (ValueError, RecursionError):
        return True
    if not isinstance(old, dict) or not isinstance(new, dict):
        return True
    return any(old.get(key) != new.get(key) for key in PACKAGE_JSON_SENSITIVE_KEYS)


def _dotted(table: Mapping[str, object], key: str) -> object:
    """`table["a"]["b"]` for "a.b" (None where a part is missing)."""
    value: object = table
    for part in key.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def new_on_import_path(added: Sequence[str], top_level: Sequence[str]) -> list[str]:
    """Added files that can change what an import finds: a new top-level folder or module (`pythonpath
    = ["."]`, a rootdir on sys.path: a `.shadow/` copy of the good code), or a module or package named
    like one of the project's own top-level ones somewhere else (`tests/inventory/` shadowing `inventory`)."""
    existing = set(top_level)
    packages = {name.removesuffix(".py") for name in top_level if not name.startswith(".")}
    packages -= {"tests", "test", "docs", "src", "scripts"}
    hits = []
    for path in added:
        parts = path.split("/")
        if not parts[-1].endswith(IMPORTABLE):  # notes, data, docs: nothing an import finds
            continue
        if parts[0] not in existing or any(part.removesuffix(".py") in packages for part in parts[1:]):
            hits.append(path)
    return hits


# What Python's import system loads: source, bytecode, extension modules, path files.
IMPORTABLE = (".py", ".pyc", ".pyo", ".pth", ".so", ".pyd")
