"""Classifying what an agent process left behind: one typed outcome per kind of failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factoryctl.adapters.agent import CallOutcome, StreamReader, parse_result
from factoryctl.adapters.runner import Completed

FIXTURES = Path(__file__).parents[1] / "fixtures" / "claude"


def done(stdout: str = "", rc: int | None = 0, stderr: str = "", timed_out: bool = False) -> Completed:
    return Completed(("agent",), rc, stdout, stderr, 1.5, timed_out)


def result(**fields: object) -> str:
    base = {"type": "result", "subtype": "success", "is_error": False, "result": "did it",
            "total_cost_usd": 0.25, "num_turns": 4, "session_id": "abc"}  # fmt: skip
    base.update(fields)
    return json.dumps(base)


def test_success_needs_exit_0_subtype_success_and_no_error() -> None:
    got = parse_result(done(result()), 60)
    assert got.ok and got.outcome is CallOutcome.SUCCESS
    assert (got.text, got.cost_usd, got.num_turns, got.session_id) == ("did it", 0.25, 4, "abc")


@pytest.mark.parametrize(
    ("completed", "outcome", "reason"),
    [
        (done(timed_out=True, rc=None), CallOutcome.TIMEOUT, "no answer within 60s"),
        (done("garbage {not json", 0), CallOutcome.MALFORMED, "no JSON result in output: garbage"),
        (done("", 0), CallOutcome.MALFORMED, "empty"),
        (done("", 3, stderr="segfault"), CallOutcome.EXIT_NONZERO, "exited 3: segfault"),
        (done(result(), 2), CallOutcome.EXIT_NONZERO, "exited 2"),
        (done(result(is_error=True, result="tool crashed")), CallOutcome.ERROR, "tool crashed"),
        (done(result(subtype="error_during_execution")), CallOutcome.ERROR, "error_during_execution"),
        (done(result(subtype="error_max_turns", num_turns=40), 1), CallOutcome.MAX_TURNS, "after 40 turns"),
        (done(result(subtype="error_max_budget_usd"), 1), CallOutcome.BUDGET, "spending limit"),
        (done("Invalid API key · Please run /login", 1), CallOutcome.NOT_LOGGED_IN, "not logged in"),
    ],
)
def test_every_failure_is_typed_with_a_short_reason(completed: Completed, outcome: CallOutcome, reason: str) -> None:
    got = parse_result(completed, 60)
    assert not got.ok
    assert got.outcome is outcome
    assert reason in got.reason
    assert "\n" not in got.reason and len(got.reason) < 300


def test_cost_is_kept_on_failed_calls_and_bad_numbers_are_malformed_output_costing_zero() -> None:
    assert parse_result(done(result(subtype="error_max_turns"), 1), 60).cost_usd == 0.25
    bad = parse_result(done(result(total_cost_usd="lots", num_turns=True)), 60)
    assert bad.outcome is CallOutcome.MALFORMED and bad.cost_usd == 0.0


# Numbers from the agent: finite, non-negative, bounded; else the call is malformed output (cost 0).
BAD_NUMBERS = [
    '{"type": "result", "subtype": "success", "is_error": false, "total_cost_usd": NaN, "num_turns": 1}',
    '{"type": "result", "subtype": "success", "is_error": false, "total_cost_usd": Infinity, "num_turns": 1}',
    '{"type": "result", "subtype": "success", "is_error": false, "total_cost_usd": 1e400, "num_turns": 1}',
    result(total_cost_usd=-500),
    result(total_cost_usd=10**9),
    '{"type": "result", "subtype": "success", "is_error": false, "total_cost_usd": 0.1, "num_turns": 1e400}',
    result(num_turns=10**30),
    result(num_turns=-1),
    result(num_turns="4"),
    "[" * 100_000 + "]" * 100_000,
    '{"type": "result", "x": ' + "[" * 5000 + "]" * 5000 + "}",
]


@pytest.mark.parametrize("stdout", BAD_NUMBERS, ids=range(len(BAD_NUMBERS)))
def test_numbers_that_are_not_finite_non_negative_and_bounded_are_malformed(stdout: str) -> None:
    got = parse_result(done(stdout), 60)
    assert got.outcome is CallOutcome.MALFORMED
    assert got.cost_usd == 0.0 and got.num_turns == 0


def test_the_result_line_is_found_after_other_output() -> None:
    got = parse_result(done("warming up\n" + result()), 60)
    assert got.ok


@pytest.mark.parametrize("name", ["not-logged-in", "not-logged-in-text"])
def test_real_claude_not_logged_in_output_is_a_typed_failure(name: str) -> None:
    # Captured from the real `claude` CLI (see VERSION) with no credentials.
    stdout = (FIXTURES / f"{name}.stdout").read_text()
    rc = int((FIXTURES / f"{name}.rc").read_text())
    got = parse_result(done(stdout, rc), 60)
    assert got.outcome is CallOutcome.NOT_LOGGED_IN
    assert "Please run /login" in got.reason


# -- Claude Code's stream-json, read as it arrives --------------------------------------------


def stream_lines(*tools: tuple[str, dict[str, object]], final: str | None = None) -> list[str]:
    lines = [json.dumps({"type": "system", "subtype": "init", "cwd": "/w/s1"})]
    for i, (name, given) in enumerate(tools):
        block = {"type": "tool_use", "id": f"t{i}", "name": name, "input": given}
        lines.append(json.dumps({"type": "assistant", "message": {"content": [block]}}))
        lines.append(json.dumps({"type": "user", "message": {"content": [{"type": "tool_result"}]}}))
    if final is not None:
        lines.append(final)
    return lines


def read(lines: list[str], cwd: Path = Path("/w/s1")) -> tuple[StreamReader, list[str]]:
    seen: list[str] = []
    reader = StreamReader(cwd, seen.append)
    for line in lines:
        reader.line(line)
    return reader, seen


def test_the_stream_tells_each_tool_call_as_it_happens_and_ends_in_the_result() -> None:
    lines = stream_lines(("Read", {"file_path": "/w/s1/src/calc.py"}), ("Edit", {"file_path": "src/calc.py"}),
                         ("Bash", {"command": "pytest -q\n\x1b[31m && rm -rf /", "description": "x"}),
                         ("Glob", {"pattern": "**/*.py"}), ("TodoWrite", {}), final=result())  # fmt: skip
    reader, seen = read(lines)
    assert seen == ["Read src/calc.py", "Edit src/calc.py", "Bash: pytest -q [31m && rm -rf /", "Glob **/*.py",
                    "TodoWrite"]  # fmt: skip
    got = parse_result(done("\n".join(lines)), 60, reader)
    assert got.ok and got.tool_calls == 5


def test_a_stream_that_stops_before_its_result_is_a_stream_cut_not_garbage() -> None:
    lines = stream_lines(("Read", {"file_path": "a.py"}))
    reader, _ = read(lines)
    got = parse_result(done("\n".join(lines), rc=1, stderr="socket hang up"), 60, reader)
    assert got.outcome is CallOutcome.STREAM_CUT and "socket hang up" in got.reason
    # Without the reader (a capture cut short), the same output is still not taken for a result.
    assert parse_result(done("\n".join(lines), rc=1), 60).outcome is CallOutcome.EXIT_NONZERO


def test_a_long_tool_line_is_clipped() -> None:
    _, seen = read(stream_lines(("Bash", {"command": "x" * 5000})))
    assert len(seen[0]) == 120 and seen[0].endswith("…")


DENIAL = [{"tool_name": "Bash", "tool_use_id": "t0", "tool_input": {}}]


def test_every_tool_call_denied_is_its_own_outcome_and_a_partial_denial_is_kept() -> None:
    all_denied = stream_lines(("Bash", {"command": "x"}), final=result(permission_denials=DENIAL))
    reader, _ = read(all_denied)
    got = parse_result(done("\n".join(all_denied)), 60, reader)
    assert got.outcome is CallOutcome.DENIED and got.denied == ("Bash",)
    assert "refused every tool call (Bash)" in got.reason and "--permission-mode" in got.reason
    partial = stream_lines(("Write", {"file_path": "a"}), ("Bash", {"command": "x"}),
                           final=result(permission_denials=DENIAL))  # fmt: skip
    reader, _ = read(partial)
    got = parse_result(done("\n".join(partial)), 60, reader)
    assert got.ok and got.denied == ("Bash",)
    # Plain JSON output says nothing of the calls made: a denial is kept, the call not failed for it.
    assert parse_result(done(result(permission_denials=DENIAL)), 60).ok


@pytest.mark.parametrize(
    ("fields", "outcome", "reason"),
    [
        ({"api_error_status": 529, "result": "API Error: 529 Overloaded"}, CallOutcome.OVERLOADED, "overloaded (529)"),
        ({"api_error_status": 429, "result": "rate limited"}, CallOutcome.OVERLOADED, "(429)"),
        ({"api_error_status": 401, "result": "Invalid API key · Fix external API key"}, CallOutcome.NOT_LOGGED_IN,
         "not logged in"),
        ({"api_error_status": 500, "result": "API Error: 500"}, CallOutcome.API_ERROR, "answered 500"),
        ({"api_error_status": None, "result": "API Error: API returned an empty or malformed response (HTTP 200)"},
         CallOutcome.STREAM_CUT, "broke off"),
    ],
)  # fmt: skip
def test_model_service_errors_each_have_their_outcome(fields: dict[str, object], outcome: CallOutcome,
                                                      reason: str) -> None:  # fmt: skip
    got = parse_result(done(result(is_error=True, **fields), rc=1), 60)
    assert got.outcome is outcome and reason in got.reason


def test_root_refusing_bypass_outside_a_sandbox_is_one_clear_line() -> None:
    printed = "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons"
    got = parse_result(done("", rc=1, stderr=printed), 60)
    assert got.outcome is CallOutcome.EXIT_NONZERO and "run the factory as an unprivileged user" in got.reason
