"""What a check is and what it reports: parser names, the regex rule, Counts and CheckRun.

Plain values shared by the configuration (which parsers exist), the check adapter (which
fills them) and the rules (which compare them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from factoryctl.core.errors import UsageError


@dataclass(frozen=True)
class Counts:
    """What one check run reported; compared before and after a change."""

    errors: int = 0  # type/lint/compile errors reported (tsc, eslint, ruff, mypy, exitcode, regex)
    failed: int = 0  # failed (or errored) tests (vitest, jest, pytest)
    passed: int = 0  # passed tests
    total: int = 0  # tests run (test runners); 0 for linters
    crashed: bool = False  # the tool produced no report we can read
    note: str = ""  # short one-line reason when crashed (or a remark), never a traceback


PARSER_NAMES: tuple[str, ...] = (
    "tsc", "vitest", "jest", "pytest", "eslint", "ruff", "mypy", "exitcode", "regex",
)  # fmt: skip


REGEX_GROUPS = ("errors", "failed", "passed", "total")


def validate_pattern(pattern: str) -> None:
    """Refuse a regex check pattern that cannot count anything, in one line."""
    compile_pattern(pattern)


def compile_pattern(pattern: str | None) -> re.Pattern[str]:
    if not pattern:
        raise UsageError("parser 'regex' needs a pattern (e.g. '(?P<errors>\\d+) errors?')")
    try:
        compiled = re.compile(pattern, re.M)
    except re.error as exc:
        raise UsageError(f"invalid regex pattern {pattern!r}: {exc}") from None
    names = set(compiled.groupindex)
    if not names or not names <= set(REGEX_GROUPS):
        raise UsageError(
            f"regex pattern {pattern!r} must name its groups among {', '.join(REGEX_GROUPS)}"
            f" (e.g. (?P<errors>\\d+)); it has: {', '.join(sorted(names)) or 'none'}"
        )
    return compiled


@dataclass(frozen=True)
class CheckRun:
    """One check's counts, with when it ran (for the heavy-slot audit) and for how long."""

    name: str
    counts: Counts
    started: str
    ended: str
    duration_s: float
    heavy: bool
    # Each test's outcome from the tool's JUnit report (None: no report); kept out of events.
    tests: Mapping[str, str] | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self.counts), "started": self.started, "ended": self.ended,
                "duration_s": round(self.duration_s, 3), "heavy": self.heavy}  # fmt: skip


def counts_of(data: Mapping[str, Any]) -> Counts:
    return Counts(**{k: data[k] for k in Counts.__dataclass_fields__ if k in data})
