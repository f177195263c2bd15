"""One sentence per event: every type the runtime writes has one, and none reads like a dump."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from factoryctl.rules.sentences import SENTENCES, line, sentence
from factoryctl.state.eventlog import Event

RUNTIME = Path(__file__).resolve().parents[2] / "runtime" / "factoryctl"
# `<log>.append("type", session=..., data=...)` or `.append("type")`, whatever the log is called, on one
# line or more (a list's `.append("text")` of a word would be counted too: the test would say so).
APPEND = re.compile(r"\.append\(\s*\"([a-z_]+)\"\s*(?:,\s*(?:session|data)=|\))")


def written_types() -> set[str]:
    return {m.group(1) for path in RUNTIME.rglob("*.py") for m in APPEND.finditer(path.read_text(encoding="utf-8"))}


def test_every_event_type_the_runtime_writes_has_a_sentence() -> None:
    found = written_types()
    assert len(found) >= 15 and {"ralph_cycle", "agent_call", "alert", "cto_review"} <= found  # the grep works
    missing = found - set(SENTENCES)
    assert not missing, f"event types without a sentence in rules/sentences.py: {', '.join(sorted(missing))}"


BRANCH = "brl/s1/20261205T105506Z"
CYCLE = {
    "task": 4, "task_title": "Add mean()", "branch": BRANCH, "base": "548393b71a" * 4, "head": "9f1c" * 10,
    "verdict": "pushed", "reason": "checks held; queued for review", "before": {"pytest": {"passed": 2, "total": 2}},
    "after": {"pytest": {"errors": 0, "failed": 0, "passed": 3, "total": 3, "crashed": False, "note": ""},
              "ruff": {"errors": 0, "failed": 0, "passed": 0, "total": 0, "crashed": False, "note": ""}},
    "baseline_computed": False, "files_changed": 1, "files": ["stats.py"], "lines_added": 4, "lines_deleted": 0,
    "agent_outcome": "success", "summary": "added mean", "cost_usd": 0.0123, "num_turns": 3,
    "durations": {"total_s": 12.4}, "notes": [],
}  # fmt: skip
CALL = {"purpose": "cycle", "outcome": "success", "reason": "", "cost_usd": 0.0123, "num_turns": 3, "input_tokens": 0,
        "output_tokens": 0, "duration_s": 0.065, "exit_code": 0, "agent": "/var/x/agent"}  # fmt: skip

# (type, session, data, the sentence a person reads)
SAMPLES: list[tuple[str, str | None, dict[str, Any], str]] = [
    ("ralph_cycle", "s1", CYCLE,
     f"s1 pushed {BRANCH}: checks held; queued for review (pytest 3 passed, ruff no errors; "
     "task #4 “Add mean()”; $0.01 in 12 s)"),
    ("ralph_cycle", "s2", {**CYCLE, "verdict": "discarded", "reason": "no change", "branch": None, "task": None,
                           "task_title": None, "cost_usd": 0.0, "durations": {"total_s": 3.0}},
     "s2 discarded its change: no change (3.0 s)"),
    ("ralph_cycle", "s3", {"verdict": "failed", "reason": "agent call failed: timeout: killed after 1200 s"},
     "s3's cycle failed: agent call failed: timeout: killed after 1200 s"),
    ("ralph_cycle", "s1", {"verdict": "waiting", "reason": "main is broken, waiting for it to be fixed: tsc crashed"},
     "s1 waited without calling the agent: main is broken, waiting for it to be fixed: tsc crashed"),
    ("agent_call", "s1", CALL, "s1's agent answered in 0.1 s, $0.01, 3 turns"),
    ("agent_call", "s1", {**CALL, "outcome": "denied", "reason": "the CLI refused every tool call (Bash, Write)",
                          "tool_calls": 2, "denied": ["Bash", "Write"], "cost_usd": 0.0},
     "s1's agent failed after 0.1 s: the CLI refused every tool call (Bash, Write), 3 turns, 2 tool calls, "
     "refused: Bash, Write"),
    ("agent_call", "s1", {**CALL, "outcome": "denied", "reason": "", "cost_usd": 0.0, "num_turns": 0},
     "s1's agent failed after 0.1 s: had its tool calls refused (the permission mode)"),
    ("agent_call", None, {**CALL, "purpose": "review", "input_tokens": 1200, "output_tokens": 34, "cost_usd": 0.0},
     "the reviewer's model call answered in 0.1 s, 3 turns, 1,234 tokens"),
    ("agent_call", "s2", {**CALL, "outcome": "timeout", "reason": "killed after 1200 s", "duration_s": 1200.2,
                          "exit_code": None, "cost_usd": 0.0, "num_turns": 0},
     "s2's agent failed after 20.0 min: timed out (killed after 1200 s)"),
    ("agent_call", None, {**CALL, "purpose": "standup", "outcome": "exit_nonzero", "exit_code": 1,
                          "reason": "exited 1: Not logged in", "cost_usd": 0.0, "num_turns": 0},
     "the standup's model call failed after 0.1 s: exited 1: Not logged in"),
    ("cto_review", "s1", {"branch": BRANCH, "session": "s1", "task": 4, "verdict": "approve",
                          "reasons": ["focused and tested"], "risk": "low", "issues": [], "landed": "abcdef0123456789",
                          "tested": "abcdef0123456789", "check_runs": 1, "duration_s": 4.2},
     f"{BRANCH} landed as abcdef0123: focused and tested (1 check run, 4.2 s)"),
    ("cto_review", "s2", {"branch": "brl/s2/x", "verdict": "reject", "reasons": ["conflict with main in: notes.md"],
                          "landed": None, "risk": None, "check_runs": 0, "duration_s": 0.3},
     "brl/s2/x was rejected: conflict with main in: notes.md (0.3 s)"),
    ("cto_review", "s2", {"branch": "brl/s2/y", "verdict": "awaiting_human", "reasons": ["touches CI"]},
     "brl/s2/y passed the review and waits for a person (factoryctl queue approve): touches CI"),
    ("review_run", None, {"branches": 3, "check_runs": 2}, "the review went through 3 branches with 2 check runs"),
    ("flake", None, {"checks": ["vitest"], "first": ["vitest: failed tests 0 -> 1"], "head": "0123456789abcdef"},
     "vitest failed once and passed on the second run on 0123456789 (a flaky test)"),
    ("team_standup", None, {"since": "x", "overlaps": [], "skipped": True, "reason": "nothing happened since the last",
                            "calls": 0, "cost_usd": 0.0},
     "the standup was skipped: nothing happened since the last"),
    ("team_standup", None, {"skipped": False, "transcript": "/f/standups/1.md", "calls": 7, "failed": [],
                            "cost_usd": 0.07, "tokens": None, "duration_s": 3.0,
                            "tasks_created": [{"id": 5}, {"id": 6}, {"duplicate_of": 5}],
                            "summary": "s1 adds mean(); s2 fixes the docs."},
     "the standup met: s1 adds mean(); s2 fixes the docs. (7 model calls, $0.07, 2 tasks created)"),
    ("doctor_analysis", None, {"sessions": {"s1": {"state": "stuck", "reason": "x"}}, "cost_usd": 0.03},
     "the doctor looked at the sessions: s1 stuck ($0.03)"),
    ("doctor_analysis", None, {"report": "/f/doctor/1.md", "sessions": {}, "call": "not needed", "calls": 0,
                               "cost_usd": 0.0, "summary": "Sessions: s1 productive, s2 idle."},
     "the doctor looked at the sessions: Sessions: s1 productive, s2 idle."),
    ("task", None, {"action": "added", "id": 3, "title": "Fix the flaky test", "priority": "high", "source": "http"},
     "task #3 added: Fix the flaky test (high priority, from http)"),
    ("task", "s2", {"action": "added", "id": 4, "title": "Docs", "priority": "normal"},
     "task #4 added: Docs (reserved for s2)"),
    ("task", "s1", {"action": "assigned", "id": 3}, "task #3 was assigned to s1"),
    ("task", None, {"action": "requeued", "id": 3, "note": "rejected: conflict"},
     "task #3 is back in the queue: rejected: conflict"),
    ("task", "s1", {"action": "done", "id": 3, "note": f"landed {BRANCH}"}, f"task #3 is done: landed {BRANCH}"),
    ("alert", "s1", {"key": "stuck:s1", "message": "s1 has not finished a cycle in 2 h"},
     "alert: s1 has not finished a cycle in 2 h"),
    ("alert_undelivered", None, {"key": "alert:budget", "chat": 111, "tries": 3, "error": "HTTP 502"},
     "a notice (alert:budget) could not be delivered to chat 111 after 3 tries: HTTP 502"),
    ("bot", None, {"action": "started", "chats": 1}, "the bot started, answering 1 chat"),
    ("bot", None, {"action": "stopped"}, "the bot stopped"),
    ("bot_refused", None, {"chat": 666}, "the bot ignored a message from chat 666 (not allow-listed)"),
    ("bot_message", None, {"chat": 111, "command": "status", "outcome": "ok", "latency_ms": 41.5},
     "the bot answered /status from chat 111 in 42 ms"),
    ("bot_message", None, {"chat": 111, "command": "unhandled", "outcome": "error", "latency_ms": 3.0},
     "the bot answered a request it cannot handle from chat 111 in 3 ms (with an error)"),
    ("bot_unhandled", None, {"text": "how much did we spend"},
     "the bot could not handle a message: “how much did we spend”"),
    ("bot_improve", None, {"messages": 2, "proposed": 1, "accepted": ["spend-today"], "refused": [], "coverage": {},
                           "cost_usd": 0.02, "note": ""},
     "bot improve read 2 unhandled messages: learned spend-today ($0.02)"),
    ("bot_improve", None, {"messages": 0, "accepted": [], "refused": [], "note": "nothing to learn"},
     "bot improve had no unhandled messages to learn from: nothing to learn"),
    ("trigger", None, {"source_ip": "127.0.0.1", "endpoint": "/trigger/review", "outcome": "started"},
     "HTTP /trigger/review from 127.0.0.1: started it"),
    ("trigger", None, {"source_ip": "10.0.0.2", "endpoint": "/trigger/task", "outcome": "queued", "task": 9},
     "HTTP /trigger/task from 10.0.0.2: queued task #9"),
    ("trigger", None, {"endpoint": "/trigger/review", "job": "review", "outcome": "finished", "exit_code": 0,
                       "duration_s": 14.2},
     "the review started over HTTP finished after 14 s"),
    ("scheduler", None, {"changed": True, "actions": ["assign task #3 to s1"], "errors": [],
                         "holds": {"closed": {}, "sessions": {}, "agent": None}, "resources": {"ram_percent": 40.0},
                         "budget": {}, "sessions": {"configured": 2, "running": 2}, "tasks": {"queued": 1}},
     "scheduler: assign task #3 to s1; nothing held back; 2 of 2 sessions running"),
    ("scheduler", None, {"actions": [], "errors": [], "holds": {"closed": {"resources": "RAM 91% (limit 85%)"}},
                         "sessions": {"configured": 2, "running": 1}},
     "scheduler: nothing to change; new cycles held back: resources (RAM 91% (limit 85%)); 1 of 2 sessions running"),
    ("baseline", "s1", {"commit": "548393b71a" * 4, "key": "k",
                        "checks": {"tsc": {"errors": 3, "crashed": False}, "vitest": {"passed": 10, "total": 10}}},
     "s1 measured main's baseline at 548393b71a: tsc 3 errors, vitest 10 passed"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "session", "data", "expected"), SAMPLES)
def test_an_event_reads_as_one_sentence(kind: str, session: str | None, data: dict[str, Any], expected: str) -> None:
    assert sentence(Event("2026-12-05T10:55:06.123Z", kind, session, data)) == expected


def test_every_sentence_has_a_sample() -> None:
    assert set(SENTENCES) == {kind for kind, *_ in SAMPLES}


# Python's words and dump syntax that must never reach a person.
DUMP = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|\w=|\{|\}|\[|\]|'\w+'|\bnan\b|\binf\b| - ")
JUNK: list[Any] = [None, True, 1.5e308 * 10, [], {}, [None, True], {"a": None}, "", "  ", -3]


@pytest.mark.parametrize("kind", sorted(SENTENCES))
def test_empty_or_damaged_fields_are_left_out_never_dumped(kind: str) -> None:
    keys = {k for t, _, data, _ in SAMPLES if t == kind for k in data}
    for junk in JUNK:
        said = sentence(Event("2026-12-05T10:55:06Z", kind, None, dict.fromkeys(keys, junk)))
        assert said and not DUMP.search(said), f"{kind} with every field {junk!r}: {said!r}"
    assert sentence(Event("2026-12-05T10:55:06Z", kind, None, {}))


def test_an_unknown_type_still_reads_as_words_and_the_line_has_its_time() -> None:
    event = Event("2026-12-05T10:55:06.123Z", "deploy_note", "s1", {"text": "hello", "n": None, "ok": True})
    assert line(event) == "2026-12-05 10:55:06  deploy note from s1; text hello"


def test_a_long_sentence_is_cut_with_an_ellipsis_and_stays_on_one_line() -> None:
    said = sentence(Event("t", "alert", None, {"message": "line one\nline two " + "x" * 1000}), limit=100)
    assert len(said) == 100 and said.endswith("…") and "\n" not in said


def test_a_check_before_and_after_reads_as_counts_never_none() -> None:
    from factoryctl.rules.words import check_change

    said = check_change("pytest", {}, {"failed": 1, "total": 6, "crashed": False}, ("errors", "failed", "total"))
    assert said == "pytest: errors none -> none, failed none -> 1, tests none -> 6"
    assert check_change("tsc", {"errors": 0}, {"errors": 2}, ("errors",)) == "tsc: errors 0 -> 2"


def test_money_and_durations_read_at_a_glance() -> None:
    from factoryctl.rules.words import money, seconds

    assert [money(x) for x in (0.0, 0.004, 0.0001, 0.0123, 2.5)] == ["$0.00", "$0.004", "<$0.001", "$0.01", "$2.50"]
    assert [seconds(x) for x in (0.065, 14.2, 200, 9000, None)] == ["0.1 s", "14 s", "3.3 min", "2.5 h", ""]
