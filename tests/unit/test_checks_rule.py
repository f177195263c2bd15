"""The "worse" rule that discards a change in a cycle and rejects it at the gate."""

from __future__ import annotations

from factoryctl.core.checks import Counts
from factoryctl.rules.changes import worse


def test_more_errors_more_failures_fewer_tests_or_a_crash_is_worse() -> None:
    before = {"tsc": Counts(errors=2), "vitest": Counts(failed=1, passed=9, total=10)}
    assert worse(before, {"tsc": Counts(errors=2), "vitest": Counts(failed=1, passed=10, total=11)}) == []
    assert worse(before, {"tsc": Counts(errors=1), "vitest": Counts(failed=0, passed=10, total=10)}) == []
    assert worse(before, {"tsc": Counts(errors=3), "vitest": Counts(failed=2, passed=7, total=9)}) == [
        "tsc: errors 2 -> 3",
        "vitest: failed tests 1 -> 2",
        "vitest: tests 10 -> 9",
    ]
    assert worse(before, {"tsc": Counts(errors=2)}) == ["vitest: did not run"]


def test_a_crashed_run_is_worse_even_when_the_baseline_crashed_too() -> None:
    crashed = Counts(crashed=True, note="killed at its timeout")
    assert worse({"tsc": crashed}, {"tsc": crashed}) == ["tsc: crashed (killed at its timeout)"]
    assert worse({"tsc": Counts()}, {"tsc": crashed}) == ["tsc: crashed (killed at its timeout)"]
