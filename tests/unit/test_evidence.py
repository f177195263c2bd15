"""Evidence: the lines of real captured tool output that say why a check got worse."""

from __future__ import annotations

from pathlib import Path

import pytest

from factoryctl.adapters.evidence import bound, extract
from factoryctl.adapters.parsers import parse
from factoryctl.core.defaults import EVIDENCE_LINE_CHARS, EVIDENCE_LINES

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "checks"


def captured(parser: str, case: str) -> tuple[str, str, int | None]:
    folder = FIXTURES / parser / case
    out = (folder / "stdout").read_text() if (folder / "stdout").exists() else ""
    err = (folder / "stderr").read_text() if (folder / "stderr").exists() else ""
    rc_text = (folder / "rc").read_text().strip() if (folder / "rc").exists() else "0"
    return out, err, None if rc_text in ("", "None", "timeout") else int(rc_text)


# (parser, case, a line the evidence must hold (substring))
CASES = [
    ("tsc", "failing", "src/money.ts(14,3): error TS2322: Type 'number' is not assignable to type 'string'."),
    ("tsc", "config-error", "TS5025"),
    ("vitest", "failing", "FAIL src/cart.test.ts > money > formats cents"),
    ("vitest", "suite-error", "Cannot find module './nope'"),
    ("vitest", "unhandled-error", "Error: late"),
    ("jest", "failing", "● initials › takes the first letter of each word"),
    ("jest", "json-failing", "initials takes the first letter of each word"),
    ("pytest", "failing", "FAILED tests/test_stock.py::test_take_reduces - AssertionError: assert 0 == 1"),
    ("pytest", "collection-error", "ERROR"),
    ("eslint", "failing", "lib/strings.js:12:9: 'unused' is assigned a value but never used no-unused-vars"),
    ("ruff", "failing", "inventory/report.py:5:8: F401"),
    ("mypy", "failing", 'inventory/stock.py:26: error: Argument 2 to "get" of "dict"'),
    ("tsc", "missing-binary", "npx canceled"),
]


@pytest.mark.parametrize(("parser", "case", "needle"), CASES, ids=[f"{p}-{c}" for p, c, _ in CASES])
def test_evidence_names_the_diagnostic_or_failing_test(parser: str, case: str, needle: str) -> None:
    out, err, rc = captured(parser, case)
    counts = parse(parser, out, err, rc)
    evidence = extract(parser, out, err, rc, counts, root="/tmp/factory-capture/x")
    assert evidence, f"{parser}/{case}: no evidence"
    assert any(needle in line for line in evidence), evidence
    assert len(evidence) <= EVIDENCE_LINES and all(len(line) <= EVIDENCE_LINE_CHARS for line in evidence)


@pytest.mark.parametrize("parser", ["tsc", "vitest", "jest", "pytest", "eslint", "ruff", "mypy"])
def test_a_green_run_keeps_no_evidence(parser: str) -> None:
    out, err, rc = captured(parser, "green")
    assert extract(parser, out, err, rc, parse(parser, out, err, rc)) == ()


def test_the_worktree_path_is_taken_out() -> None:
    out, err, rc = captured("eslint", "failing")
    evidence = extract("eslint", out, err, rc, parse("eslint", out, err, rc),
                       root="/tmp/factory-capture/eslint-failing/ts-app")  # fmt: skip
    assert evidence[0].startswith("lib/strings.js:12:9:")


def test_evidence_is_bounded_whatever_the_tool_prints() -> None:
    out = "".join(f"src/f{i}.ts(1,1): error TS2322: {'x' * 5000}\n" for i in range(10_000))
    counts = parse("tsc", out, "", 2)
    evidence = extract("tsc", out, "", 2, counts)
    assert len(evidence) == EVIDENCE_LINES
    assert all(len(line) <= EVIDENCE_LINE_CHARS for line in evidence)


def test_secrets_are_scrubbed_from_evidence() -> None:
    key = "sk-ant-api03-" + "A" * 40
    lines = [f"Error: request failed with key {key}", "token=abcdefgh12345678 leaked", "mine: s3cr3t-value-xyz"]
    kept = bound(lines, secrets=["s3cr3t-value-xyz"])
    assert all(key not in line and "abcdefgh12345678" not in line and "s3cr3t" not in line for line in kept)
    assert kept[0].startswith("Error: request failed with key ***")


def test_a_crash_keeps_its_tail_and_note() -> None:
    counts = parse("pytest", "", "Traceback...\nImportError: cannot import name 'x'\n", 4)
    evidence = extract("pytest", "", "Traceback...\nImportError: cannot import name 'x'\n", 4, counts)
    assert evidence[0] == counts.note
    assert any("ImportError: cannot import name 'x'" in line for line in evidence)


def test_a_timeout_is_evidence_too() -> None:
    counts = parse("vitest", "partial output\n", "", None)
    assert extract("vitest", "partial output\n", "", None, counts)[0] == "killed at its timeout"
