"""Counts from machine-readable reports (issue 22): what a tool's own output settings cannot change.

The JSON below is what mypy 2.4 (`-O json`) and ruff (`--output-format=json`) printed for a file
with one error each; the JUnit text is what pytest writes with `--junitxml`."""

from __future__ import annotations

import json

import pytest

from factoryctl.adapters.evidence import extract
from factoryctl.adapters.junit import counts_from_report, parse_junit
from factoryctl.adapters.parsers import parse, summary_missing

MYPY_JSON = (
    '{"file": "a.py", "line": 2, "column": 11, "end_line": 2, "end_column": 12, "message": "Incompatible return '
    'value type (got \\"int\\", expected \\"str\\")", "hint": null, "code": "return-value", "severity": "error"}\n'
)
RUFF_JSON = json.dumps([{"cell": None, "code": "F401", "end_location": {"column": 10, "row": 3}, "filename":
                         "/w/a.py", "fix": None, "location": {"column": 8, "row": 3}, "message":
                         "`os` imported but unused", "noqa_row": 3, "url": "https://docs.astral.sh/ruff/rules/"}],
                       indent=2)  # fmt: skip
JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="3">
<testcase classname="tests.test_a" name="test_one" /><testcase classname="tests.test_a" name="test_two">
<failure message="assert 1 == 2">boom</failure></testcase>
<testcase classname="tests.test_a" name="test_three"><skipped /></testcase></testsuite></testsuites>"""


def test_mypy_json_lines_are_counted_and_kept_as_evidence() -> None:
    counts = parse("mypy", MYPY_JSON, "", 1)
    assert (counts.errors, counts.crashed) == (1, False)
    (line,) = extract("mypy", MYPY_JSON, "", 1, counts)
    assert line.startswith("a.py:2: error: Incompatible return value type") and line.endswith("[return-value]")
    assert parse("mypy", MYPY_JSON, "", 2).crashed  # a blocking error: the rest was never looked at


def test_ruff_json_is_counted_and_kept_as_evidence_without_the_worktree_path() -> None:
    counts = parse("ruff", RUFF_JSON, "", 1)
    assert counts.errors == 1
    assert extract("ruff", RUFF_JSON, "", 1, counts, root="/w") == ("a.py:3:8: F401 `os` imported but unused",)
    assert parse("ruff", "[]\n", "", 0).errors == 0


# pytest with the repository's addopts "-q" and ours prints only the progress line, no summary.
QQ = "..F                                                                   [100%]\n"


@pytest.mark.parametrize(("parser", "out", "rc", "missing"), [
    ("pytest", QQ, 1, True),
    ("pytest", QQ + "1 failed, 1 passed, 1 skipped in 0.05s\n", 1, False),
    ("pytest", "", 4, False),  # a usage or conftest error stays a crash
    ("vitest", " ✓ src/a.test.ts (1 test) 2ms\n", 0, True),
    ("vitest", "      Tests  1 passed (1)\n", 0, False),
    ("ruff", "", 0, False),
])  # fmt: skip
def test_a_runner_without_a_summary_line_is_seen(parser: str, out: str, rc: int, missing: bool) -> None:
    assert summary_missing(parser, out, rc) is missing


def test_counts_come_from_the_report_when_the_exit_code_agrees() -> None:
    tests = parse_junit(JUNIT)
    assert tests is not None
    counts = counts_from_report("pytest", tests, 1)
    assert (counts.failed, counts.passed, counts.total, counts.crashed) == (1, 1, 3, False)
    assert counts_from_report("pytest", tests, 0).crashed  # a failure in the report, exit 0: not believed
    assert counts_from_report("pytest", {}, 5).total == 0  # nothing collected
    assert counts_from_report("vitest", {"a::b": "passed"}, 0).passed == 1
    assert counts_from_report("pytest", tests, 3).crashed
