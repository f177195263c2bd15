"""The merge gate's decisions, table-driven and without git: facts in, a Decision (or None: go on) out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from factoryctl.core.errors import BadRecord
from factoryctl.core.records import QueueStatus, ReviewEntry
from factoryctl.rules import gate
from factoryctl.rules.gate import BranchFacts, GateVerdict
from factoryctl.rules.verdict import ReviewerVerdict

ENTRY = ReviewEntry("brl/s1/20261124T080000Z", session="s1", head="a" * 40, queued="2026-11-24T08:00:00.000Z")
MAIN = "m" * 40
APPROVE = ReviewerVerdict(True, ("focused",), "low")
REJECT = ReviewerVerdict(False, ("tests nothing",), "medium")


@pytest.mark.parametrize(
    ("facts", "verdict", "reason"),
    [
        (BranchFacts(head=None), GateVerdict.REJECT, "the branch is gone from origin"),
        (BranchFacts(head=None, archived="b" * 40), GateVerdict.REJECT, "the branch is gone from origin (archived)"),
        (BranchFacts(head=None, archived="b" * 40, archived_on_main=True), GateVerdict.LANDED,
         "landed by an earlier, interrupted review"),
        (BranchFacts(head="a" * 40, head_on_main=True), GateVerdict.LANDED,
         "already on main (an earlier review landed it)"),
        (BranchFacts(head="c" * 40), GateVerdict.REJECT,
         "the branch moved after its cycle tested it (aaaaaaaaaa -> cccccccccc)"),
        (BranchFacts(head="a" * 40, protected=(".github/x.yml",)), GateVerdict.REJECT,
         "touches protected paths: .github/x.yml"),
        (BranchFacts(head="a" * 40), None, None),
    ],
    ids=["gone", "gone-archived", "landed-earlier", "already-on-main", "moved", "protected", "go-on"],
)  # fmt: skip
def test_before_merge(facts: BranchFacts, verdict: GateVerdict | None, reason: str | None) -> None:
    decision = gate.before_merge(ENTRY, facts, MAIN)
    if verdict is None:
        assert decision is None
        return
    assert decision is not None and decision.verdict is verdict and decision.reasons == (reason,)
    assert decision.landed == (MAIN if verdict is GateVerdict.LANDED else None)


def test_a_branch_whose_cycle_recorded_no_head_is_not_called_moved() -> None:
    assert gate.before_merge(replace(ENTRY, head=None), BranchFacts(head="c" * 40), MAIN) is None


@pytest.mark.parametrize(
    ("conflicts", "expected"),
    [({}, None), ({"other": ["x.py"]}, None), ({ENTRY.branch: ["a.py", "b.py"]}, "conflict with main in: a.py, b.py")],
)
def test_after_merge(conflicts: dict[str, list[str]], expected: str | None) -> None:
    decision = gate.after_merge(ENTRY.branch, conflicts, "main")
    assert (decision.reasons[0] if decision else None) == expected


def test_after_checks() -> None:
    assert gate.after_checks(ENTRY.branch, []) is None
    decision = gate.after_checks(ENTRY.branch, ["pytest: failed tests 0 -> 1", "tsc: errors 0 -> 2"])
    assert decision is not None and decision.verdict is GateVerdict.REJECT
    assert decision.reasons == (
        "checks got worse on the merge result: pytest: failed tests 0 -> 1; tsc: errors 0 -> 2",
    )


@pytest.mark.parametrize(
    ("answer", "human", "approved", "dry", "verdict"),
    [
        (APPROVE, False, False, False, None),
        (APPROVE, True, True, False, None),
        (APPROVE, True, False, False, GateVerdict.AWAITING_HUMAN),
        (APPROVE, False, False, True, GateVerdict.WOULD_LAND),
        (APPROVE, True, False, True, GateVerdict.WOULD_LAND),
        (REJECT, False, False, False, GateVerdict.REJECT),
        (REJECT, True, True, False, GateVerdict.REJECT),
        ("reviewer call failed: timeout: no answer", False, False, False, GateVerdict.PENDING),
    ],
    ids=["land", "human-approved-land", "wait-for-person", "dry", "dry-human", "reject", "reject-human", "no-answer"],
)
def test_after_reviewer(
    answer: ReviewerVerdict | str, human: bool, approved: bool, dry: bool, verdict: GateVerdict | None
) -> None:
    entry = replace(ENTRY, human_approved=approved)
    decision = gate.after_reviewer(entry, answer, human_mode=human, dry_run=dry)
    assert (decision.verdict if decision else None) is verdict
    if verdict is GateVerdict.PENDING:
        assert decision is not None and decision.alert == f"{ENTRY.branch}: {answer}; left pending"
    if verdict is GateVerdict.REJECT:
        assert decision is not None and decision.reasons == ("tests nothing",) and decision.review is REJECT


def test_landed_and_batches() -> None:
    one = gate.landed(ENTRY.branch, MAIN, APPROVE)
    assert (one.verdict, one.landed, one.tested, one.reasons) == (GateVerdict.LANDED, MAIN, MAIN, ("focused",))
    assert gate.landed(ENTRY.branch, MAIN, APPROVE, batch_of=3).reasons == ("focused", "landed in a batch of 3")


def test_a_failed_review_is_pending_then_rejected_when_it_keeps_failing() -> None:
    first = gate.review_failed(ENTRY, "git fetch timed out", limit=2)
    assert first.verdict is GateVerdict.PENDING and first.failed_review
    assert first.reasons == ("review failed: git fetch timed out",) and first.alert is not None
    again = gate.review_failed(replace(ENTRY, failures=1), "git fetch timed out", limit=2)
    assert again.verdict is GateVerdict.REJECT and again.reasons == ("its review failed 2 times: git fetch timed out",)


def test_setup_failing_on_the_merge_result_rejects_the_branch() -> None:
    decision = gate.setup_failed(
        ENTRY.branch, "repo.setup 'pnpm install --frozen-lockfile' exited 1: outdated lockfile"
    )
    assert decision.verdict is GateVerdict.REJECT
    assert decision.reasons[0].startswith("repo.setup failed on the merge result: repo.setup 'pnpm install")


def test_main_kept_moving_leaves_it_pending_with_an_alert() -> None:
    decision = gate.main_kept_moving(ENTRY.branch, "main", 3)
    assert decision.verdict is GateVerdict.PENDING and decision.reasons == ("main kept moving",)
    assert decision.alert == f"{ENTRY.branch}: main moved 3 times during its review; left pending"


@pytest.mark.parametrize(
    ("verdict", "dry"),
    [(GateVerdict.LANDED, GateVerdict.WOULD_LAND), (GateVerdict.REJECT, GateVerdict.WOULD_REJECT),
     (GateVerdict.PENDING, GateVerdict.PENDING), (GateVerdict.AWAITING_HUMAN, GateVerdict.AWAITING_HUMAN)],
)  # fmt: skip
def test_a_dry_run_never_lands_or_rejects(verdict: GateVerdict, dry: GateVerdict) -> None:
    assert gate.in_dry_run(gate.Decision(ENTRY.branch, verdict)).verdict is dry


def test_a_persons_word() -> None:
    assert gate.by_person("b", GateVerdict.REJECT, "too big").reasons == ("rejected by a person: too big",)
    assert gate.by_person("b", GateVerdict.HUMAN_APPROVE).reasons == ("approved by a person",)
    assert gate.by_person("b", GateVerdict.RESTORED).reasons == ()


def entry(
    branch: str, queued: str, task: int | None = None, approved: bool = False, waits: bool = False
) -> ReviewEntry:
    return ReviewEntry(branch, task=task, queued=queued, human_approved=approved, awaiting="human" if waits else None)


def test_review_order_priority_then_age_and_a_persons_approvals_first() -> None:
    entries = [
        entry("old-low", "2026-11-24T01", task=1),
        entry("new-urgent", "2026-11-24T03", task=2),
        entry("mid-none", "2026-11-24T02"),
        entry("waiting", "2026-11-24T00", waits=True),
        entry("approved", "2026-11-24T04", approved=True, waits=True),
        entry("bad-priority", "2026-11-24T00", task=3),
    ]
    priority = {1: "low", 2: "urgent", 3: "bogus"}
    auto = gate.review_order(entries, priority, human_mode=False, only=None)
    assert [e.branch for e in auto] == ["new-urgent", "bad-priority", "mid-none", "approved", "old-low"]
    human = gate.review_order(entries, priority, human_mode=True, only=None)
    assert human[0].branch == "approved"  # a person's approvals first
    assert [e.branch for e in gate.review_order(entries, priority, human_mode=False, only="waiting")] == ["waiting"]


def test_batch_split_halves() -> None:
    assert gate.batch_split([1, 2, 3, 4, 5]) == ([1, 2], [3, 4, 5])
    assert gate.batch_split([1]) == ([], [1])


# -- the queue entry as read from disk ---------------------------------------------------------


def test_an_entry_round_trips() -> None:
    full = replace(ENTRY, task=3, reasons=("x",), before={"pytest": {"failed": 0}}, landed=MAIN)
    assert ReviewEntry.from_dict(full.as_dict()) == full
    assert ReviewEntry.from_dict({"branch": "b"}).status is QueueStatus.PENDING


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("x", "an entry must be a JSON object, not str"),
        ({}, "field 'branch' is missing or empty"),
        ({"branch": ""}, "field 'branch' is missing or empty"),
        ({"branch": 7}, "field 'branch' must be str, not int"),
        ({"branch": "b", "status": "merged"},
         "field 'status' must be one of pending, approved, rejected, not 'merged'"),
        ({"branch": "b", "task": "abc"}, "field 'task' must be int, not str"),
        ({"branch": "b", "task": True}, "field 'task' must be int, not bool"),
        ({"branch": "b", "reasons": "x"}, "field 'reasons' must be list, not str"),
        ({"branch": "b", "reasons": [1]}, "field 'reasons' must be a list of strings"),
        ({"branch": "b", "after": {"pytest": 3}}, "field 'after' must map check names to objects"),
        ({"branch": "b", "lines_added": -1}, "field 'lines_added' must not be negative"),
        ({"branch": "b", "awaiting": "robot"}, "field 'awaiting' must be 'human' or absent, not 'robot'"),
        ({"branch": "b", "human_approved": "yes"}, "field 'human_approved' must be bool, not str"),
    ],
)  # fmt: skip
def test_a_malformed_entry_names_its_field(raw: object, message: str) -> None:
    with pytest.raises(BadRecord) as info:
        ReviewEntry.from_dict(raw)
    assert str(info.value) == message
