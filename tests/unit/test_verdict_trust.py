"""What a check's verdict is built from cannot be cut or forged quietly: cut output is marked, the report
comes through a named pipe, and a summary or report that disagrees with itself makes the run crash."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from factoryctl.adapters.junit import disagreement
from factoryctl.adapters.parsers import parse
from factoryctl.adapters.runner import run
from factoryctl.core.checks import Counts


def test_output_past_the_limit_is_marked_cut() -> None:
    done = run([sys.executable, "-c", "print('x' * 100)"], limit=10)
    assert done.cut and done.stdout == "x" * 10
    whole = run([sys.executable, "-c", "print('x' * 100)"], limit=None)
    assert not whole.cut and whole.stdout.strip() == "x" * 100


def test_the_report_pipe_keeps_everything_written_to_it(tmp_path: Path) -> None:
    pipe = tmp_path / "report" / "junit.xml"
    pipe.parent.mkdir()
    code = "import sys\nfor _ in range(2):\n    open(sys.argv[1], 'w').write('<r/>')\n"  # written twice: both stay
    done = run([sys.executable, "-c", code, str(pipe)], report=pipe, report_limit=100)
    assert done.report == b"<r/><r/>"


def test_a_report_past_its_limit_is_none(tmp_path: Path) -> None:
    pipe = tmp_path / "junit.xml"
    done = run([sys.executable, "-c", "import sys; open(sys.argv[1], 'w').write('x' * 1000)", str(pipe)],
               report=pipe, report_limit=100)  # fmt: skip
    assert done.report is None


def test_a_report_nobody_writes_is_empty_not_a_hang(tmp_path: Path) -> None:
    done = run([sys.executable, "-c", "pass"], report=tmp_path / "junit.xml", timeout=10)
    assert done.report == b"" and done.duration_s < 5


def test_two_different_pytest_summaries_crash() -> None:
    out = "F....\n1 failed, 5 passed in 0.12s\n6 passed in 0.01s\n"
    got = parse("pytest", out, "", 0)
    assert got.crashed and "pytest printed 2 different summaries (1 failed, 5 passed, 6 passed)" in got.note
    assert not parse("pytest", "6 passed in 0.01s\n6 passed in 0.01s\n", "", 0).crashed  # the same line twice


SUMMARY = Counts(failed=1, passed=5, total=6)


@pytest.mark.parametrize(
    ("tests", "why"),
    [
        ({f"t{i}": "passed" for i in range(5)} | {"t5": "failed"}, None),
        ({f"t{i}": "passed" for i in range(6)}, "its test report has 6 passed, its summary 5 at most"),
        ({f"t{i}": "passed" for i in range(7)}, "its test report names 7 tests, its summary 6"),
        ({f"t{i}": "passed" for i in range(5)} | {"t5": "skipped"}, "its test report has 0 failed, its summary 1"),
        ({"t0": "failed", "t1": "failed"}, "its test report has 2 failed, its summary 1"),
    ],
)  # fmt: skip
def test_a_report_that_disagrees_with_the_summary(tests: dict[str, str], why: str | None) -> None:
    assert disagreement(SUMMARY, tests) == why
