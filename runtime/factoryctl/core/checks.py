"""What a check is and what it reports: parser names, the regex rule, Counts and CheckRun.

Plain values shared by the configuration (which parsers exist), the check adapter (which
fills them) and the rules (which compare them).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from factoryctl.core.defaults import NOTE_CHARS
from factoryctl.core.errors import BadRecord, UsageError


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


# Test runners: a regression may be a flake, so the gate may run them once more.
TEST_RUNNERS: tuple[str, ...] = ("vitest", "jest", "pytest")


REGEX_GROUPS = ("errors", "failed", "passed", "total")
MAX_PATTERN_CHARS = 500  # a check's regex: long enough for any summary line, short enough to read


def validate_pattern(pattern: str) -> None:
    """Refuse a regex check pattern that cannot count anything, in one line."""
    compile_pattern(pattern)


@functools.lru_cache(maxsize=64)
def compile_pattern(pattern: str | None) -> re.Pattern[str]:
    """The check's pattern compiled (once per pattern: cached), or a one-line UsageError."""
    if not pattern:
        raise UsageError("parser 'regex' needs a pattern (e.g. '(?P<errors>\\d+) errors?')")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise UsageError(f"regex pattern is {len(pattern)} characters; the limit is {MAX_PATTERN_CHARS}")
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
    evidence: tuple[str, ...] = field(default=())  # what the tool said that matters (adapters/evidence.py)
    # Each test's outcome from the tool's JUnit report (None: no report); kept out of events.
    tests: Mapping[str, str] | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self.counts), "started": self.started, "ended": self.ended,
                "duration_s": round(self.duration_s, 3), "heavy": self.heavy,
                "evidence": list(self.evidence)}  # fmt: skip


MAX_COUNT = 10_000_000  # more errors or tests than this in one run is a damaged record


def counts_of(data: Mapping[str, Any]) -> Counts:
    """Counts from a stored record, every field checked (BadRecord names the one that is wrong)."""
    values: dict[str, Any] = {}
    for name in ("errors", "failed", "passed", "total"):
        value = data.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            raise BadRecord(f"count {name!r} must be a whole number from 0 to {MAX_COUNT:,}, not {value!r}"[:200])
        values[name] = value
    crashed, note = data.get("crashed", False), data.get("note", "")
    if not isinstance(crashed, bool) or not isinstance(note, str):
        raise BadRecord("count 'crashed' must be true/false and 'note' a string")
    return Counts(**values, crashed=crashed, note=note[:NOTE_CHARS])
