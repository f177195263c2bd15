"""The standup's rules: overlaps, answer schemas, grounding (nothing imagined), duplicate tasks."""

from __future__ import annotations

import json

import pytest

from factoryctl.rules.standup import (
    AnswerRejected,
    CycleFact,
    Overlap,
    StandupFacts,
    StandupSession,
    duplicate_of,
    grounded,
    overlaps,
    parse_answer,
)

B1 = "brl/s1/20261130T100000Z"
SHA = "0123456789abcdef0123456789abcdef01234567"
FACTS = StandupFacts(
    since="2026-11-30T08:00:00.000Z",
    now="2026-11-30T10:00:00.000Z",
    sessions=(
        StandupSession("s1", cycles=(CycleFact("t", "pushed", "ok", B1, 3, ("a.py",)),), commits=((SHA, "Add a"),)),
        StandupSession("s2"),
    ),
    tasks={3: "Add a", 4: "Fix b"},
)


def test_overlaps_are_files_of_more_than_one_session() -> None:
    found = overlaps({"s1": {"a.py", "b.py"}, "s2": {"b.py"}, "s10": {"b.py", "c.py"}, "s3": set()})
    assert found == (Overlap("b.py", ("s1", "s2", "s10")),)
    assert "s2, s10" in found[0].advice("s1")


@pytest.mark.parametrize(
    ("round_no", "answer"),
    [
        (1, {"done": [f"pushed {B1} (commit {SHA[:9]}) for task #3"], "stuck": [], "needs": ["review"]}),
        (2, {"responses": [{"to": "s2", "text": "I can help with #4"}, {"to": "team", "text": "a.py is mine"}]}),
        (3, {"next_task": {"title": "Guard NaN in stats", "body": ""}, "proposal": "pair on b"}),
        (0, {"summary": "good day", "priorities": ["#4"], "blockers": []}),
    ],
)
def test_grounded_answers_stand(round_no: int, answer: dict[str, object]) -> None:
    assert grounded(round_no, "Here it is:\n```json\n" + json.dumps(answer) + "\n```", FACTS, "brl")


@pytest.mark.parametrize(
    ("round_no", "answer", "problem"),
    [
        (1, {"done": ["pushed brl/s1/20991231T000000Z"], "stuck": [], "needs": []}, "branch brl/s1/2099"),
        (1, {"done": ["landed commit deadbeef1234"], "stuck": [], "needs": []}, "commit deadbeef1234"),
        (1, {"done": ["finished task #99"], "stuck": [], "needs": []}, "task #99"),
        (2, {"responses": [{"to": "s7", "text": "hi"}]}, "s7"),
        (3, {"next_task": {"title": "Redo brl/s2/x"}, "proposal": "p"}, "branch brl/s2/x"),
        (3, {"next_task": {"title": ""}, "proposal": "p"}, "title"),
        (1, {"done": "not a list"}, "list of strings"),
        (0, {"priorities": []}, "summary"),
    ],
)
def test_made_up_or_malformed_answers_are_rejected(round_no: int, answer: dict[str, object], problem: str) -> None:
    with pytest.raises(AnswerRejected, match=problem.replace("#", r"\#")):
        grounded(round_no, json.dumps(answer), FACTS, "brl")


def test_no_json_is_rejected() -> None:
    with pytest.raises(AnswerRejected, match="no JSON"):
        parse_answer(1, "I did great things", ["s1"])


def test_text_is_bounded() -> None:
    answer = parse_answer(1, json.dumps({"done": ["x" * 5000] * 50}), ["s1"])
    assert len(answer["done"]) == 8 and all(len(d) <= 600 for d in answer["done"])


def test_duplicate_tasks_are_found() -> None:
    open_titles = {3: "Add Stock.total with a test", 4: "Fix the flaky login test"}
    assert duplicate_of("add stock.total with a test", open_titles) == 3
    assert duplicate_of("Fix the flaky login tests", open_titles) == 4
    assert duplicate_of("Write the README section on backups", open_titles) is None
