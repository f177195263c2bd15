"""JUnit XML reports (pytest --junitxml, vitest's junit reporter): each test's outcome, by identity.

Counting lines of a summary can be fooled (a test deleted and a trivial one added keeps the
count); a report names every test, so a test that passed on main and is missing, skipped,
xfailed or failing on a branch is seen. The report is written by code the agent touched:
it is parsed with defusedxml (no entity expansion), within size and count bounds.
"""

from __future__ import annotations

from pathlib import Path

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from factoryctl.core.checks import Counts
from factoryctl.core.defaults import JUNIT_MAX_BYTES, JUNIT_MAX_TESTS

Outcomes = dict[str, str]  # test id -> passed | failed | skipped
_RANK = {"passed": 0, "skipped": 1, "failed": 2}


def report_args(parser: str, report: Path) -> list[str]:
    """The flags that make this parser's tool write a JUnit report to `report` (none: no report)."""
    if parser == "pytest":
        return [f"--junitxml={report}"]
    if parser == "vitest":
        return ["--reporter=default", "--reporter=junit", f"--outputFile.junit={report}"]
    return []


def parse_junit(text: str) -> Outcomes | None:
    """Outcomes per test id (`classname::name`), or None when the report cannot be trusted."""
    if len(text) > JUNIT_MAX_BYTES:
        return None
    try:
        root = ElementTree.fromstring(text)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        return None
    out: Outcomes = {}
    for case in root.iter("testcase"):
        if len(out) >= JUNIT_MAX_TESTS:
            return None
        name = f"{case.get('classname') or case.get('file') or ''}::{case.get('name') or ''}"
        tags = {child.tag for child in case}
        outcome = "failed" if tags & {"failure", "error"} else "skipped" if "skipped" in tags else "passed"
        # The same id twice (parametrized duplicates): the worst outcome stands.
        if _RANK[outcome] >= _RANK.get(out.get(name, "passed"), 0):
            out[name] = outcome
    return out


# Exit codes that agree with a report's failures, per runner (pytest: 2 interrupted, e.g. a collection
# error, which the report names as an errored test; 5 nothing collected).
_AGREES = {
    "pytest": {0: "clean", 1: "failed", 2: "failed", 5: "empty"},
    "vitest": {0: "clean", 1: "failed"},
}


def counts_from_report(parser: str, tests: Outcomes, returncode: int | None) -> Counts:
    """Counts from the JUnit report alone, when the tool printed no summary line (its own config
    made it quiet: pytest's addopts `-q` with ours is `-qq`); a crash unless the exit code agrees."""
    failed = sum(1 for outcome in tests.values() if outcome == "failed")
    passed = sum(1 for outcome in tests.values() if outcome == "passed")
    counts = Counts(failed=failed, passed=passed, total=len(tests), note="counted from its test report")
    want = _AGREES.get(parser, {}).get(returncode if returncode is not None else -1)
    ok = {"clean": failed == 0, "failed": failed > 0, "empty": not tests}.get(want or "", False)
    if not ok:
        why = f"its test report ({failed} failed of {len(tests)}) disagrees with its exit code {returncode}"
        return Counts(crashed=True, note=why)
    return counts


def disagreement(counts: Counts, tests: Outcomes) -> str | None:
    """Why a test report and the tool's summary cannot both be true (None: they agree).

    Both come from the process that ran the code under test; a report claiming more passes or
    more tests than the summary, or no failure where the summary has one, was rewritten.
    (A test failing in its call and erroring in teardown is one test in the report and two in
    the summary, so the report may hold fewer; never more.)
    """
    passed = sum(1 for outcome in tests.values() if outcome == "passed")
    failed = sum(1 for outcome in tests.values() if outcome == "failed")
    if len(tests) > counts.total:
        return f"its test report names {len(tests)} tests, its summary {counts.total}"
    if passed > counts.total - counts.failed:
        return f"its test report has {passed} passed, its summary {counts.total - counts.failed} at most"
    if failed > counts.failed or (counts.failed and not failed and counts.total == len(tests)):
        return f"its test report has {failed} failed, its summary {counts.failed}"
    return None
