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


def read_report(path: Path) -> Outcomes | None:
    try:
        if path.is_symlink() or path.stat().st_size > JUNIT_MAX_BYTES:
            return None
        return parse_junit(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
