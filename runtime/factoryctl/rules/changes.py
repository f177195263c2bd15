"""What makes a change worse, and which paths it may not touch: the cycle's and the gate's shared rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from factoryctl.core.checks import Counts
from factoryctl.core.config import Settings
from factoryctl.core.records import Task

NO_CHECKS = "no checks are configured ([[checks]] in factory.toml): a change is judged by the reviewer alone"


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
