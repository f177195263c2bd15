"""The check parsers against real tool output captured by tests/samples/capture.py.

Each expected row follows from what capture.py broke in the sample (see the comments
there), not from what the parser happens to return.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from factoryctl.adapters.parsers import parse, strip_ansi
from factoryctl.core.checks import PARSER_NAMES, REGEX_GROUPS, Counts, validate_pattern
from factoryctl.core.errors import UsageError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "checks"


def ok(errors: int = 0, failed: int = 0, passed: int = 0, total: int = 0) -> Counts:
    return Counts(errors=errors, failed=failed, passed=passed, total=total)


def crashed(errors: int = 0) -> Counts:
    return Counts(errors=errors, crashed=True)


# (parser, case, expected counts, text the note must contain; "" = the note is empty)
EXPECTED: list[tuple[str, str, Counts, str]] = [
    # tsc: 3 errors in 2 files; 5.9 (plain and --pretty) and 7 (native) print them differently
    ("tsc", "green", ok(), ""),
    ("tsc", "failing", ok(errors=3), ""),
    ("tsc", "failing-pretty", ok(errors=3), ""),
    ("tsc", "green-ts7", ok(), ""),
    ("tsc", "failing-ts7", ok(errors=3), ""),
    ("tsc", "failing-pretty-ts7", ok(errors=3), ""),
    ("tsc", "config-error", crashed(errors=1), "TS5025"),
    ("tsc", "no-inputs", crashed(errors=1), "TS18003"),
    ("tsc", "missing-binary", crashed(), "npx canceled"),
    ("tsc", "timeout", crashed(), "killed at its timeout"),
    # vitest: 5 tests; failing breaks 1; a file that cannot load and an unhandled error
    # each count as one failed test
    ("vitest", "green", ok(passed=5, total=5), ""),
    ("vitest", "failing", ok(failed=1, passed=4, total=5), ""),
    ("vitest", "failing-color", ok(failed=1, passed=4, total=5), ""),
    ("vitest", "suite-error", ok(failed=1, passed=5, total=6), ""),
    ("vitest", "unhandled-error", ok(failed=1, passed=6, total=7), ""),
    ("vitest", "json-green", ok(passed=5, total=5), ""),
    ("vitest", "json-failing", ok(failed=1, passed=4, total=5), ""),
    ("vitest", "json-suite-error", ok(failed=1, passed=5, total=6), ""),
    ("vitest", "json-unhandled-error", ok(failed=1, passed=6, total=7), "no failure in the report"),
    ("vitest", "no-tests", ok(), "no tests found"),
    ("vitest", "json-no-tests", ok(), "no tests found"),
    ("vitest", "config-error", crashed(), "Expected identifier"),
    ("vitest", "timeout", crashed(), "killed at its timeout"),
    # jest: 4 tests; failing breaks 2; a file that cannot load counts as one failed test
    ("jest", "green", ok(passed=4, total=4), ""),
    ("jest", "failing", ok(failed=2, passed=2, total=4), ""),
    ("jest", "failing-color", ok(failed=2, passed=2, total=4), ""),
    ("jest", "suite-error", ok(failed=1, passed=4, total=5), ""),
    ("jest", "json-green", ok(passed=4, total=4), ""),
    ("jest", "json-failing", ok(failed=2, passed=2, total=4), ""),
    ("jest", "json-suite-error", ok(failed=1, passed=4, total=5), ""),
    ("jest", "no-tests", ok(), "no tests found"),
    ("jest", "json-no-tests", ok(), "no tests found"),
    ("jest", "config-error", crashed(), "SyntaxError"),
    # pytest: 5 tests; failing breaks 2; collection and setup errors count as failed
    ("pytest", "green", ok(passed=5, total=5), ""),
    ("pytest", "green-q", ok(passed=5, total=5), ""),
    ("pytest", "failing", ok(failed=2, passed=3, total=5), ""),
    ("pytest", "failing-q", ok(failed=2, passed=3, total=5), ""),
    ("pytest", "failing-color", ok(failed=2, passed=3, total=5), ""),
    ("pytest", "collection-error", ok(failed=1, total=1), ""),
    ("pytest", "collection-error-q", ok(failed=1, total=1), ""),
    ("pytest", "setup-error-q", ok(failed=1, passed=5, total=6), ""),
    ("pytest", "mixed-q", ok(passed=5, total=7), ""),
    ("pytest", "no-tests", ok(), "no tests collected"),
    ("pytest", "deselected-q", ok(), "no tests collected"),
    ("pytest", "usage-error", crashed(), "exit 4"),
    ("pytest", "conftest-error", crashed(), "ImportError while loading conftest"),
    ("pytest", "timeout", crashed(), "killed at its timeout"),
    # eslint: 2 errors and 1 warning (warnings not counted); a parse error is 1 error
    ("eslint", "green", ok(), ""),
    ("eslint", "failing", ok(errors=2), ""),
    ("eslint", "failing-color", ok(errors=2), ""),
    ("eslint", "parse-error", ok(errors=1), ""),
    ("eslint", "json-green", ok(), ""),
    ("eslint", "json-failing", ok(errors=2), ""),
    ("eslint", "config-error", crashed(), "no-such-rule"),
    ("eslint", "no-config", crashed(), "couldn't find an eslint.config"),
    # ruff, 3 errors; the broken line of syntax is reported as 2
    ("ruff", "green", ok(), ""),
    ("ruff", "failing", ok(errors=3), ""),
    ("ruff", "failing-concise", ok(errors=3), ""),
    ("ruff", "failing-color", ok(errors=3), ""),
    ("ruff", "syntax-error", ok(errors=2), ""),
    ("ruff", "json-green", ok(), ""),
    ("ruff", "json-failing", ok(errors=3), ""),
    ("ruff", "config-error", crashed(), "Unknown rule selector"),
    # mypy, 3 errors in 2 files; a syntax error or a missing path stops it early
    ("mypy", "green", ok(), ""),
    ("mypy", "failing", ok(errors=3), ""),
    ("mypy", "failing-color", ok(errors=3), ""),
    ("mypy", "syntax-error", crashed(errors=2), "prevented further checking"),
    ("mypy", "missing-path", crashed(errors=1), "Cannot read file"),
    # exitcode
    ("exitcode", "green", ok(), ""),
    ("exitcode", "failing", ok(errors=1), ""),
    ("exitcode", "timeout", crashed(), "killed at its timeout"),
    # regex (the pattern is stored beside the output)
    ("regex", "pytest-summary", ok(failed=2, passed=3), ""),
    ("regex", "eslint-errors", ok(errors=2), ""),
    ("regex", "no-match-green", ok(), ""),
    ("regex", "no-match-failed", crashed(), "matched nothing"),
]


def load(parser: str, case: str) -> tuple[str, str, int | None, str | None]:
    folder = FIXTURES / parser / case
    rc = (folder / "rc").read_text().strip()
    pattern = folder / "pattern"
    return (
        (folder / "stdout").read_text(),
        (folder / "stderr").read_text(),
        None if rc == "timeout" else int(rc),
        pattern.read_text().rstrip("\n") if pattern.exists() else None,
    )


@pytest.mark.parametrize(("parser", "case", "expected", "note"), EXPECTED, ids=[f"{p}/{c}" for p, c, _, _ in EXPECTED])
def test_parser_reads_captured_output(parser: str, case: str, expected: Counts, note: str) -> None:
    stdout, stderr, rc, pattern = load(parser, case)
    got = parse(parser, stdout, stderr, rc, pattern=pattern)
    assert dataclasses.replace(got, note="") == expected
    if note:
        assert note in got.note
    else:
        assert got.note == ""
    assert "\n" not in got.note and len(got.note) <= 160


def test_every_fixture_has_an_expectation_and_every_parser_a_fixture() -> None:
    on_disk = {(p.parent.name, p.name) for p in FIXTURES.glob("*/*") if p.is_dir()}
    assert on_disk == {(p, c) for p, c, _, _ in EXPECTED}
    assert {p for p, _ in on_disk} == set(PARSER_NAMES)


@pytest.mark.parametrize(
    ("parser", "case"),
    [("tsc", "failing-pretty"), ("vitest", "failing-color"), ("jest", "failing-color"),
     ("pytest", "failing-color"), ("eslint", "failing-color"), ("ruff", "failing-color"),
     ("mypy", "failing-color")],
)  # fmt: skip
def test_colored_output_counts_like_plain(parser: str, case: str) -> None:
    stdout, stderr, rc, _ = load(parser, case)
    assert "\x1b[" in stdout + stderr  # the fixture really is colored
    plain = parse(parser, strip_ansi(stdout), strip_ansi(stderr), rc)
    assert parse(parser, stdout, stderr, rc) == plain
    assert "\x1b" not in strip_ansi(stdout + stderr)


def test_strip_ansi_removes_colors_and_charset_switches() -> None:
    # mypy writes "\x1b(B" (select the ASCII charset) after each color.
    assert strip_ansi("\x1b[1m\x1b[31merror:\x1b(B\x1b[m x \x1b]8;;http://a\x07link") == "error: x link"


@pytest.mark.parametrize("parser", [p for p in PARSER_NAMES if p != "regex"])
def test_killed_at_timeout_is_crashed_whatever_was_printed(parser: str) -> None:
    stdout, stderr, _, _ = load("pytest", "green-q")
    assert parse(parser, stdout, stderr, None) == Counts(crashed=True, note="killed at its timeout")


def test_unknown_parser_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"unknown check parser 'tap'.*tsc, vitest"):
        parse("tap", "", "", 0)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (None, "needs a pattern"),
        ("", "needs a pattern"),
        (r"(?P<errors>\d+", "invalid regex pattern"),
        (r"(\d+) errors", "must name its groups"),
        (r"(?P<warnings>\d+) warnings", "has: warnings"),
    ],
)
def test_regex_refuses_a_pattern_that_cannot_count(pattern: str | None, message: str) -> None:
    with pytest.raises(UsageError, match=message) as raised:
        parse("regex", "3 errors", "", 1, pattern=pattern)
    assert "\n" not in str(raised.value)
    if pattern is not None:
        with pytest.raises(UsageError, match=message):
            validate_pattern(pattern)
    with pytest.raises(UsageError):  # a bad pattern is a config error even when killed
        parse("regex", "", "", None, pattern=pattern)


@pytest.mark.parametrize("group", REGEX_GROUPS)
def test_validate_pattern_accepts_each_named_count_group_and_parse_counts_it(group: str) -> None:
    pattern = rf"^(?P<{group}>\d+) {group}$"
    assert validate_pattern(pattern) is None  # accepted: no UsageError
    assert parse("regex", f"3 {group}\n", "", 1, pattern=pattern) == ok(**{group: 3})
    with pytest.raises(UsageError, match="must name its groups"):  # the same shape with another name is not
        validate_pattern(rf"^(?P<{group}x>\d+) {group}$")


def test_regex_sums_every_match_over_stdout_and_stderr() -> None:
    pattern = r"^(?P<errors>\d+) errors? in (?P<total>\d+)"
    got = parse("regex", "2 errors in 10\n1 error in 4\n", "3 errors in 1\n", 1, pattern=pattern)
    assert got == ok(errors=6, total=15)


def test_regex_group_that_is_not_a_number_is_crashed() -> None:
    got = parse("regex", "errors: many", "", 1, pattern=r"errors: (?P<errors>\w+)")
    assert got.crashed and "'many'" in got.note


@pytest.mark.parametrize(
    ("parser", "stdout", "rc", "expected"),
    [
        # seen from other versions and options than the captured ones
        ("pytest", "==== 1 failed, 9 passed, 2 warnings in 62.13s (0:01:02) ====\n", 1,
         ok(failed=1, passed=9, total=10)),
        ("pytest", "3 passed, 2 subtests passed in 0.05s\n", 0, ok(passed=3, total=3)),
        ("ruff", "Found 3 errors (1 fixed, 2 remaining).\n", 1, ok(errors=2)),
        ("tsc", "src/a.ts:3:1 - error TS2304: Cannot find name 'x'.\n\nFound 1 error in src/a.ts:3\n",
         2, ok(errors=1)),
        ("tsc", "src/a.ts(1,1): error TS6133: 'x' is declared but its value is never read.\n", 2,
         ok(errors=1)),
        ("vitest", "      Tests  1 failed | 3 passed | 2 skipped (6)\n", 1,
         ok(failed=1, passed=3, total=6)),
        ("jest", "Tests:       1 failed, 1 skipped, 2 passed, 4 total\n", 1,
         ok(failed=1, passed=2, total=4)),
        ("mypy", "a.py:1: error: x  [misc]\nb.py:2: error: y  [misc]\n", 1, ok(errors=2)),
        ("eslint", "[]\n", 0, ok()),
        ("ruff", "", 0, ok()),
        ("exitcode", "", 7, ok(errors=1)),
    ],
)  # fmt: skip
def test_other_output_shapes(parser: str, stdout: str, rc: int, expected: Counts) -> None:
    assert dataclasses.replace(parse(parser, stdout, "", rc), note="") == expected


@pytest.mark.parametrize("parser", ["vitest", "jest", "pytest", "eslint", "ruff", "mypy", "tsc"])
def test_nonzero_exit_with_nothing_readable_is_crashed(parser: str) -> None:
    got = parse(parser, "", "Segmentation fault\n", 1)
    assert got.crashed and "Segmentation fault" in got.note


def test_counts_are_frozen_values() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Counts().errors = 1  # type: ignore[misc]
