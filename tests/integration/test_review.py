"""The merge gate end to end: real git with a bare origin, real pytest, scripted agent and reviewer."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from factoryctl.cli.terminal import queue_detail
from factoryctl.core.records import ReviewEntry
from factoryctl.jobs.cycle import Cycle
from factoryctl.jobs.prompting import evidence_lines
from factoryctl.jobs.review import person
from factoryctl.jobs.review.gate import MergeGate
from factoryctl.state.eventlog import EventFilter
from tests.factories import Factory, git, make_factory
from tests.helpers import meanwhile, run_cli, survivors, tool, wait_for

DOC_A = '"""Quantities on hand, per item (A)."""'
DOC_B = '"""Quantities on hand, per item (B)."""'
STOCK = (Path(__file__).parents[1] / "samples" / "py-app" / "inventory" / "stock.py").read_text()
DOC = '"""Quantities on hand, per item."""'
TOTAL = "\n    def total(self) -> int:\n        return sum(self._items.values())\n"

A_TEST = "from inventory.stock import Stock\n\n\ndef test_total() -> None:\n    s = Stock()\n    s.add('a', 2)\n" \
         "    assert s.total() == 2\n"  # fmt: skip
C_TEST = (
    "from inventory.stock import Stock\n\n\ndef test_no_total_yet() -> None:\n    assert not hasattr(Stock, 'total')\n"
)
D_TEST = "def test_trivial() -> None:\n    assert 1 + 1 == 2\n"

APPROVE = json.dumps({"verdict": "approve", "reasons": ["focused and tested"], "risk": "low", "issues": []})
REJECT = json.dumps({"verdict": "reject", "reasons": ["the test tests nothing"], "risk": "medium", "issues": []})


def session_call(session: str, actions: list[dict[str, Any]], summary: str) -> dict[str, Any]:
    return {"match": f"You are {session},", "actions": actions, "result": summary}


def review_call(session: str, answer: str, actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"match": f"by session {session}", "result": answer, "actions": actions or []}


FOUR_BRANCHES = [
    # A: good (changes the docstring, adds Stock.total and its test)
    session_call("s1", [{"write": "inventory/stock.py", "content": STOCK.replace(DOC, DOC_A) + TOTAL},
                        {"write": "tests/test_total.py", "content": A_TEST}], "Add Stock.total"),
    # B: the same docstring line, changed differently: conflicts once A has landed
    session_call("s2", [{"write": "inventory/stock.py", "content": STOCK.replace(DOC, DOC_B)}], "Reword docstring"),
    # C: passes alone, fails once A has landed
    session_call("s3", [{"write": "tests/test_c.py", "content": C_TEST}], "Pin the API"),
    # D: passes, but the reviewer rejects it
    session_call("s4", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test"),
]  # fmt: skip


def someone_elses_commit(factory: Factory, tmp_path: Path) -> tuple[Path, list[str]]:
    """A clone with a commit of someone else's, and the argv that pushes it to main."""
    other = tmp_path / "someone-else"
    git(tmp_path, "clone", "-q", str(factory.origin), str(other))
    (other / "CONTRIBUTING.md").write_text("be nice\n")
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "someone else's commit")
    return other, ["git", "-C", str(other), "push", "-q", "origin", "HEAD:main"]


def push_while_the_reviewer_thinks(factory: Factory, push: list[str]) -> list[dict[str, Any]]:
    """The reviewer runs sandboxed and cannot push: someone else's push comes from the test, meanwhile."""
    return meanwhile(factory.scenario.parent, lambda: subprocess.run(push, check=True, capture_output=True))


def pending_branches(factory: Factory, sessions: list[str]) -> dict[str, str]:
    """Run one cycle per session; each must push its branch. Returns session -> branch."""
    out = {}
    for session in sessions:
        report = Cycle(factory.ctx(), session).run()
        assert report.verdict == "pushed", (session, report.reason)
        assert report.branch is not None
        out[session] = report.branch
    return out


def queue(factory: Factory) -> dict[str, dict[str, Any]]:
    doc = json.loads((factory.home / "state" / "review-queue.json").read_text())
    return {e["branch"]: e for e in doc["branches"]}


def reviews(factory: Factory) -> list[Any]:
    return factory.ctx().log.tail(10_000, EventFilter(types=frozenset({"cto_review"})))


def main_passes_its_checks(factory: Factory, tmp_path: Path) -> None:
    check = tmp_path / f"check-{time.time_ns()}"
    git(tmp_path, "clone", "-q", str(factory.origin), str(check))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=check,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("batch_min", [10, 1], ids=["one-by-one", "batched"])
def test_only_the_good_branch_reaches_main_and_main_is_the_tested_commit(tmp_path: Path, batch_min: int) -> None:
    factory = make_factory(tmp_path, sessions=4, extra=f"[review]\nbatch_min = {batch_min}\n")
    factory.script([*FOUR_BRANCHES, *(review_call(s, APPROVE) for s in ("s1", "s2", "s3")), review_call("s4", REJECT)])
    branches = pending_branches(factory, ["s1", "s2", "s3", "s4"])
    start = factory.main_sha()
    outcomes = {o.branch: o for o in MergeGate(factory.ctx()).run()}
    assert {b: outcomes[b].verdict for b in branches.values()} == {
        branches["s1"]: "approve", branches["s2"]: "reject", branches["s3"]: "reject", branches["s4"]: "reject",
    }  # fmt: skip
    assert "conflict with main in: inventory/stock.py" in outcomes[branches["s2"]].reasons[0]
    assert "pytest: failed tests 0 -> 1" in outcomes[branches["s3"]].reasons[0]
    assert outcomes[branches["s4"]].reasons == ("the test tests nothing",)
    main = factory.main_sha()
    landed = [e for e in reviews(factory) if e.data["verdict"] == "approve"]
    assert len(landed) == 1 and landed[0].data["landed"] == main == landed[0].data["tested"]
    assert git(factory.origin, "rev-parse", f"{main}^1") == start  # a merge commit on top of the old main
    assert factory.show("main", "tests/test_total.py") == A_TEST.strip()
    assert factory.origin_branches() == ["main"]  # every reviewed branch deleted...
    archived = git(factory.origin, "for-each-ref", "--format=%(refname)", "refs/archive/").splitlines()
    assert sorted(archived) == sorted(f"refs/archive/{b}" for b in branches.values())  # ...and archived
    q = queue(factory)
    assert [q[branches[s]]["status"] for s in ("s1", "s2", "s3", "s4")] == [
        "approved",
        "rejected",
        "rejected",
        "rejected",
    ]
    # Rejected on the merge result: the failing test is kept in the event, the queue, `queue show`
    # and what the session's next prompt reads, not the cycle's older (passing) evidence.
    failing = "FAILED tests/test_c.py::test_no_total_yet"
    entry = q[branches["s3"]]
    assert any(line.startswith(failing) for line in entry["evidence"]["pytest"]), entry["evidence"]
    (event,) = [e for e in reviews(factory) if e.data["branch"] == branches["s3"]]
    assert any(line.startswith(failing) for line in event.data["evidence"]["pytest"]), event.data
    assert failing in queue_detail(ReviewEntry.from_dict(entry))
    assert any(failing in line for line in evidence_lines(factory.ctx().log, "s3")), evidence_lines(
        factory.ctx().log, "s3"
    )
    main_passes_its_checks(factory, tmp_path)
    # The reasons reach the rejected session's next cycle prompt.
    factory.script([{"match": "You are s4,", "result": "noop"}])
    prompt_file = factory.scenario.parent / "prompt.txt"  # the sandbox lets the agent write there
    toml = factory.home / "factory.toml"
    toml.write_text(toml.read_text().replace(f'"{factory.scenario}"]', f'"{factory.scenario}", "--save-prompt", '
                                             f'"{prompt_file}"]', 1))  # fmt: skip
    Cycle(factory.ctx(), "s4").run()
    assert "the test tests nothing" in prompt_file.read_text()


def test_batched_review_of_passing_branches_takes_one_check_run(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=4, extra="[review]\nbatch_min = 2\n")
    calls = [session_call(s, [{"write": f"tests/test_{s}.py", "content": D_TEST}], "Add a test") for s in
             ("s1", "s2", "s3", "s4")]  # fmt: skip
    factory.script([*calls, *(review_call(s, APPROVE) for s in ("s1", "s2", "s3", "s4"))])
    pending_branches(factory, ["s1", "s2", "s3", "s4"])
    gate = MergeGate(factory.ctx())
    outcomes = gate.run()
    assert [o.verdict for o in outcomes] == ["approve"] * 4
    assert gate.check_runs == 1  # main's baseline was cached by the cycles; one test of the batch
    assert len({o.landed for o in outcomes}) == 1 == len({factory.main_sha()} | {o.landed for o in outcomes})
    main_passes_its_checks(factory, tmp_path)


def test_main_moved_during_the_review_is_detected_and_redone(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1)
    other, push_other = someone_elses_commit(factory, tmp_path)
    factory.script([
        session_call("s1", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test"),
        review_call("s1", APPROVE, push_while_the_reviewer_thinks(factory, push_other)),  # main moves meanwhile
        review_call("s1", APPROVE),
    ])  # fmt: skip
    branch = pending_branches(factory, ["s1"])["s1"]
    theirs = git(other, "rev-parse", "HEAD")
    (outcome,) = MergeGate(factory.ctx()).run()
    assert outcome.verdict == "approve"
    main = factory.main_sha()
    assert git(factory.origin, "rev-parse", f"{main}^1") == theirs  # nobody's commit overwritten
    assert factory.show("main", "CONTRIBUTING.md") == "be nice"
    assert factory.show("main", "tests/test_d.py") == D_TEST.strip()
    assert queue(factory)[branch]["landed"] == main
    main_passes_its_checks(factory, tmp_path)


def test_a_reviewer_answering_garbage_leaves_the_branch_pending_with_an_alert(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1)
    factory.script([
        session_call("s1", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test"),
        review_call("s1", "Looks great to me!"),
        review_call("s1", '{"verdict": "maybe"}'),
    ])  # fmt: skip
    branch = pending_branches(factory, ["s1"])["s1"]
    before = factory.main_sha()
    (outcome,) = MergeGate(factory.ctx()).run()
    assert outcome.verdict == "pending"
    assert "verdict must be 'approve' or 'reject', got 'maybe'" in outcome.reasons[0]
    assert queue(factory)[branch]["status"] == "pending"
    assert factory.main_sha() == before and branch in factory.origin_branches()
    alerts = factory.ctx().log.tail(10, EventFilter(types=frozenset({"alert"})))
    assert len(alerts) == 1 and branch in alerts[0].data["message"]


def test_a_hanging_reviewer_is_killed_at_its_timeout(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1, reviewer_timeout_s=2)
    marker = f"hung-reviewer-{time.time_ns()}"
    hang = {"run": ["python3", "-c", "import time; time.sleep(120)", marker]}
    factory.script([
        session_call("s1", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test"),
        review_call("s1", APPROVE, [hang]), review_call("s1", APPROVE, [hang]),
    ])  # fmt: skip
    branch = pending_branches(factory, ["s1"])["s1"]
    started = time.monotonic()
    (outcome,) = MergeGate(factory.ctx()).run()
    assert time.monotonic() - started < 30
    assert outcome.verdict == "pending" and "timeout" in outcome.reasons[0]
    assert queue(factory)[branch]["status"] == "pending"
    assert survivors(marker) == []


def test_a_rejected_branch_is_restored_from_its_archive_ref(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1)
    factory.script([
        session_call("s1", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test"),
        review_call("s1", REJECT),
    ])  # fmt: skip
    branch = pending_branches(factory, ["s1"])["s1"]
    head = git(factory.origin, "rev-parse", branch)
    MergeGate(factory.ctx()).run()
    assert branch not in factory.origin_branches()
    proc = run_cli("queue", "restore", branch, home=factory.home)
    assert proc.returncode == 0, proc.stderr
    assert git(factory.origin, "rev-parse", branch) == head
    assert queue(factory)[branch]["status"] == "pending"
    listed = json.loads(run_cli("queue", "list", "--json", home=factory.home).stdout)
    assert [e["branch"] for e in listed] == [branch]
    again = run_cli("queue", "restore", branch, home=factory.home)
    assert again.returncode == 1 and "already pending" in again.stderr


def reviewer_running(pid: int) -> bool:
    """Whether the process `pid` is in a call to the scripted agent (the reviewer) now."""
    try:
        return any("factory-scripted-agent" in " ".join(c.cmdline()) for c in psutil.Process(pid).children(True))
    except psutil.Error:  # a child ended while we looked: look again
        return False


def test_a_review_killed_halfway_leaves_everything_consistent_and_the_next_run_finishes(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=2)
    factory.script([
        session_call("s1", [{"write": "tests/test_s1.py", "content": D_TEST}], "Add a test"),
        session_call("s2", [{"write": "tests/test_s2.py", "content": D_TEST}], "Add another test"),
        review_call("s1", APPROVE),
        review_call("s2", APPROVE, [{"sleep": 120}]),  # killed while the reviewer thinks about s2
        review_call("s2", APPROVE),
    ])  # fmt: skip
    branches = pending_branches(factory, ["s1", "s2"])
    env = {**os.environ, "FACTORY_HOME": str(factory.home)}
    proc = subprocess.Popen([tool("factoryctl"), "review"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and queue(factory)[branches["s1"]]["status"] != "approved":
        time.sleep(0.1)
    wait_for(lambda: reviewer_running(proc.pid), 60, "the reviewer call for s2")  # s1's has ended: this is s2's
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)  # the review dies first, then what it ran (some may have ended)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    proc.communicate()
    q = queue(factory)
    assert q[branches["s1"]]["status"] == "approved" and q[branches["s2"]]["status"] == "pending"
    assert factory.main_sha() == q[branches["s1"]]["landed"]
    assert factory.origin_branches() == sorted(["main", branches["s2"]])
    main_passes_its_checks(factory, tmp_path)
    # The next run finishes the work.
    outcomes = MergeGate(factory.ctx()).run()
    assert [(o.branch, o.verdict) for o in outcomes] == [(branches["s2"], "approve")]
    assert factory.origin_branches() == ["main"]
    main_passes_its_checks(factory, tmp_path)


def test_a_branch_landed_by_an_interrupted_run_is_recorded_not_merged_twice(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1)
    factory.script([session_call("s1", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test")])
    branch = pending_branches(factory, ["s1"])["s1"]
    # The state a run leaves when it dies right after pushing main: landed, not yet archived.
    clone = tmp_path / "crash"
    git(tmp_path, "clone", "-q", str(factory.origin), str(clone))
    git(clone, "merge", "-q", "--no-ff", "-m", f"Merge {branch}", f"origin/{branch}")
    git(clone, "push", "-q", "origin", "HEAD:main")
    landed = git(clone, "rev-parse", "HEAD")
    (outcome,) = MergeGate(factory.ctx()).run()  # no reviewer call is scripted: none may be made
    assert outcome.verdict == "approve" and outcome.landed == landed
    assert factory.main_sha() == landed
    assert factory.origin_branches() == ["main"]
    assert queue(factory)[branch]["status"] == "approved"


def test_human_mode_waits_for_a_person(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1, extra='[review]\nmode = "human"\n')
    factory.script([
        session_call("s1", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test"),
        review_call("s1", APPROVE), review_call("s1", APPROVE),
    ])  # fmt: skip
    branch = pending_branches(factory, ["s1"])["s1"]
    before = factory.main_sha()
    (outcome,) = MergeGate(factory.ctx()).run()
    assert outcome.verdict == "awaiting_human" and factory.main_sha() == before
    assert queue(factory)[branch]["awaiting"] == "human"
    assert MergeGate(factory.ctx()).run() == []  # not reviewed (nor paid for) again while it waits
    proc = run_cli("queue", "approve", branch, home=factory.home)
    assert proc.returncode == 0, proc.stderr
    assert f"{branch}: approve" in proc.stdout
    assert factory.main_sha() != before and queue(factory)[branch]["status"] == "approved"


def test_dry_run_and_second_review_change_nothing(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1)
    factory.script([
        session_call("s1", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test"),
        review_call("s1", APPROVE, [{"sleep": 5}]),
    ])  # fmt: skip
    branch = pending_branches(factory, ["s1"])["s1"]
    before = (factory.main_sha(), factory.origin_branches(), queue(factory))
    dry = run_cli("review", "--dry-run", "--json", home=factory.home)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["outcomes"][0]["verdict"] == "would_land"
    assert (factory.main_sha(), factory.origin_branches(), queue(factory)) == before
    env = {**os.environ, "FACTORY_HOME": str(factory.home)}
    first = subprocess.Popen([tool("factoryctl"), "review"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: reviewer_running(first.pid), 60, "the first review's reviewer call")  # it holds the lock
    second = run_cli("review", home=factory.home)
    assert second.returncode == 0 and second.stderr.startswith("review is already running")
    first.communicate(timeout=60)
    assert queue(factory)[branch]["status"] == "approved"


def test_queue_commands_reject_bad_input(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1)
    for args, message in [
        (["queue", "show", "brl/s1/nope"], "no branch 'brl/s1/nope' in the review queue"),
        (["queue", "approve", "x;rm -rf /"], "invalid branch name"),
        (["queue", "reject", "--reason", "x", "$(reboot)"], "invalid branch name"),
        (["review", "--branch", "brl/s1/nope"], "no pending branch 'brl/s1/nope'"),
    ]:
        proc = run_cli(*args, home=factory.home)
        assert proc.returncode != 0 and message in proc.stderr and proc.stderr.count("\n") == 1, (args, proc.stderr)


def test_a_branch_that_moved_after_its_cycle_is_rejected(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1)
    factory.script([session_call("s1", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test")])
    branch = pending_branches(factory, ["s1"])["s1"]
    sneaky = tmp_path / "sneaky"
    git(tmp_path, "clone", "-q", "-b", branch, str(factory.origin), str(sneaky))
    (sneaky / ".github").mkdir()
    (sneaky / ".github" / "evil.yml").write_text("on: push\n")
    git(sneaky, "add", "-A")
    git(sneaky, "commit", "-q", "-m", "untested")
    git(sneaky, "push", "-q", "origin", f"HEAD:{branch}")
    before = factory.main_sha()
    (outcome,) = MergeGate(factory.ctx()).run()  # no reviewer call is scripted: none may be made
    assert outcome.verdict == "reject" and "the branch moved after its cycle tested it" in outcome.reasons[0]
    assert factory.main_sha() == before


def test_a_check_that_crashes_on_the_merge_result_rejects_even_if_main_crashed_too(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1)
    factory.script([
        session_call("s1", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test"),
        review_call("s1", APPROVE),
    ])  # fmt: skip
    branch = pending_branches(factory, ["s1"])["s1"]
    toml = factory.home / "factory.toml"
    toml.write_text(toml.read_text().replace('"-m", "pytest"', '"-m", "no_such_module_pytest"'))
    before = factory.main_sha()
    (outcome,) = MergeGate(factory.ctx()).run()
    assert outcome.verdict == "reject" and "pytest: crashed" in outcome.reasons[0]
    assert factory.main_sha() == before
    baselines = list((factory.home / "state" / "baselines").glob("*.json"))
    assert baselines and all('"crashed": true' not in p.read_text() for p in baselines)  # crashes are not cached
    assert queue(factory)[branch]["status"] == "rejected"


FLAKY_TEST = """from pathlib import Path


def test_flaky() -> None:
    counter = Path({path!r})
    runs = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(runs))
    assert runs != 2  # the cycle's run passes, the gate's first run fails, its retry passes
"""


def test_a_flaky_check_at_the_gate_is_retried_once_and_recorded(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1)
    counter = factory.scenario.parent / "flaky-runs"  # writable from inside the sandbox
    factory.script([
        session_call("s1", [{"write": "tests/test_flaky.py", "content": FLAKY_TEST.format(path=str(counter))}], "Add"),
        review_call("s1", APPROVE),
    ])  # fmt: skip
    branch = pending_branches(factory, ["s1"])["s1"]
    gate = MergeGate(factory.ctx())
    (outcome,) = gate.run()
    assert outcome.verdict == "approve", outcome.reasons
    assert counter.read_text() == "3" and gate.check_runs == 2  # the merge result, then its retry
    flakes = factory.ctx().log.tail(10, EventFilter(types=frozenset({"flake"})))
    assert len(flakes) == 1 and flakes[0].data["checks"] == ["pytest"]
    assert queue(factory)[branch]["status"] == "approved"


def test_the_gate_rechecks_protected_paths_itself(tmp_path: Path) -> None:
    """A branch the cycle let through (the rule was different then) is still held to the gate's rule."""
    factory = make_factory(tmp_path, sessions=1)
    factory.script([session_call("s1", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test")])
    branch = pending_branches(factory, ["s1"])["s1"]
    toml = factory.home / "factory.toml"
    toml.write_text(toml.read_text().replace("[repo]", '[repo]\nprotected_paths = ["tests/"]', 1))
    before = factory.main_sha()
    (outcome,) = MergeGate(factory.ctx()).run()  # no reviewer call is scripted: none may be made
    assert outcome.verdict == "reject" and outcome.reasons == ("touches protected paths: tests/test_d.py",)
    assert factory.main_sha() == before and queue(factory)[branch]["status"] == "rejected"


def test_main_moving_during_a_batch_sends_the_batch_one_by_one(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=2, extra="[review]\nbatch_min = 1\n")
    other, push_other = someone_elses_commit(factory, tmp_path)
    factory.script([
        session_call("s1", [{"write": "tests/test_s1.py", "content": D_TEST}], "Add a test"),
        session_call("s2", [{"write": "tests/test_s2.py", "content": D_TEST}], "Add another test"),
        review_call("s1", APPROVE),
        review_call("s2", APPROVE, push_while_the_reviewer_thinks(factory, push_other)),  # before the batch lands
        review_call("s1", APPROVE), review_call("s2", APPROVE),  # one by one, on the new main
    ])  # fmt: skip
    branches = pending_branches(factory, ["s1", "s2"])
    theirs = git(other, "rev-parse", "HEAD")
    outcomes = MergeGate(factory.ctx()).run()
    assert [o.verdict for o in outcomes] == ["approve", "approve"]
    assert len({o.landed for o in outcomes}) == 2  # landed one by one, not as the (stale) batch
    main = factory.main_sha()
    assert git(factory.origin, "merge-base", "--is-ancestor", theirs, main) == ""  # nobody's commit overwritten
    assert {queue(factory)[b]["status"] for b in branches.values()} == {"approved"}
    main_passes_its_checks(factory, tmp_path)


def test_a_batch_in_human_mode_waits_then_lands_the_approved_together(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=2, extra='[review]\nbatch_min = 1\nmode = "human"\n')
    calls = [session_call(s, [{"write": f"tests/test_{s}.py", "content": D_TEST}], "Add a test") for s in ("s1", "s2")]
    factory.script([*calls, *(review_call(s, APPROVE) for s in ("s1", "s2", "s1", "s2"))])
    branches = pending_branches(factory, ["s1", "s2"])
    before = factory.main_sha()
    first = MergeGate(factory.ctx()).run()
    assert [o.verdict for o in first] == ["awaiting_human", "awaiting_human"] and factory.main_sha() == before
    assert MergeGate(factory.ctx()).run() == []  # nobody approved yet: nothing is asked again
    for branch in branches.values():
        person.approve(factory.ctx(), branch)  # a person's word, without starting a review
    second = MergeGate(factory.ctx()).run()  # both approved: merged and tested as one batch
    assert [o.verdict for o in second] == ["approve", "approve"]
    assert {o.landed for o in second} == {factory.main_sha()}
    assert all("landed in a batch of 2" in o.reasons for o in second)
    main_passes_its_checks(factory, tmp_path)


# Setup fails with `broken-setup` in the gate's worktree only: its cycle (which runs setup for the change's
# manifests too) passes, as a branch whose lockfile goes stale only once merged would.
SETUP = ('[repo]\nsetup = ["sh", "-c", "test ! -e broken-setup || test \\"${PWD##*/}\\" != review"]\n'
         'setup_inputs = ["broken-setup", "pyproject.toml"]\n')  # fmt: skip


def test_one_branch_that_breaks_setup_never_stops_the_review(tmp_path: Path) -> None:
    """Its setup fails on the merge result (like a stale lockfile): rejected with why; the others land."""
    factory = make_factory(tmp_path, sessions=3)
    toml = factory.home / "factory.toml"
    toml.write_text(toml.read_text().replace("[repo]\n", SETUP, 1))
    factory.script([
        session_call("s1", [{"write": "broken-setup", "content": "x\n"},
                            {"write": "tests/test_s1.py", "content": D_TEST}], "Add a dependency"),
        session_call("s2", [{"write": "tests/test_s2.py", "content": D_TEST}], "Add a test"),
        session_call("s3", [{"write": "tests/test_s3.py", "content": D_TEST}], "Add another test"),
        *(review_call(s, APPROVE) for s in ("s1", "s2", "s3")),
    ])  # fmt: skip
    branches = pending_branches(factory, ["s1", "s2", "s3"])
    with (factory.home / "state" / "review-queue.json").open("r+") as fh:  # a malformed entry, queued first
        doc = json.load(fh)
        doc["branches"].insert(0, {"status": "pending", "session": "s9", "task": "abc"})
        fh.seek(0)
        fh.write(json.dumps(doc))
        fh.truncate()
    outcomes = {o.branch: o for o in MergeGate(factory.ctx()).run()}
    assert outcomes[branches["s1"]].verdict == "reject"
    assert outcomes[branches["s1"]].reasons[0].startswith("repo.setup failed on the merge result: repo.setup")
    assert [outcomes[branches[s]].verdict for s in ("s2", "s3")] == ["approve", "approve"]
    alerts = factory.ctx().log.tail(20, EventFilter(types=frozenset({"alert"})))
    assert any("field 'branch' is missing or empty" in a.data["message"] for a in alerts)
    main_passes_its_checks(factory, tmp_path)


def test_a_reviewer_that_cannot_start_leaves_the_branch_pending_and_says_so(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1)
    factory.script([session_call("s1", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test")])
    branch = pending_branches(factory, ["s1"])["s1"]
    # A reviewer command that is not there: not the branch's fault, and not a verdict.
    toml = factory.home / "factory.toml"
    text = toml.read_text()
    reviewer_start = text.index("[reviewer]")
    toml.write_text(text[:reviewer_start] + text[reviewer_start:].replace('command = ["', 'command = ["/no/such/', 1))
    (first,) = MergeGate(factory.ctx()).run()
    assert first.verdict == "pending" and "missing_command" in first.reasons[0]
    assert queue(factory)[branch]["status"] == "pending" and branch in factory.origin_branches()
    alerts = factory.ctx().log.tail(5, EventFilter(types=frozenset({"alert"})))
    assert len(alerts) == 1 and "command not found" in alerts[0].data["message"]


def test_main_that_cannot_be_set_up_ends_the_review_in_one_line(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1)
    factory.script([session_call("s1", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test")])
    pending_branches(factory, ["s1"])
    toml = factory.home / "factory.toml"
    toml.write_text(toml.read_text().replace("[repo]\n", '[repo]\nsetup = ["false"]\n', 1))
    shutil.rmtree(factory.home / "state" / "baselines")  # main's baseline must be computed again
    proc = run_cli("review", home=factory.home)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "cannot be set up, no branch can be reviewed: repo.setup 'false' exited 1" in proc.stderr
    alerts = factory.ctx().log.tail(5, EventFilter(types=frozenset({"alert"})))
    assert any("cannot be set up" in a.data["message"] for a in alerts)


PAIR_CHECK = """
[[checks]]
name = "pair"
command = ["sh", "-c", "test ! -e a.txt || test ! -e b.txt"]
parser = "exitcode"
"""


def test_a_deterministic_failure_at_the_gate_is_not_retried(tmp_path: Path) -> None:
    """Each branch passes alone; together they fail. An exitcode check cannot flake: one run, rejected."""
    factory = make_factory(tmp_path, sessions=2, checks=PAIR_CHECK)
    factory.script([
        session_call("s1", [{"write": "a.txt", "content": "a\n"}], "Add a"),
        session_call("s2", [{"write": "b.txt", "content": "b\n"}], "Add b"),
        review_call("s1", APPROVE), review_call("s2", APPROVE),
    ])  # fmt: skip
    branches = pending_branches(factory, ["s1", "s2"])
    gate = MergeGate(factory.ctx())
    outcomes = {o.branch: o for o in gate.run()}
    assert outcomes[branches["s1"]].verdict == "approve"
    second = outcomes[branches["s2"]]
    assert second.verdict == "reject" and "pair: errors 0 -> 1" in second.reasons[0]
    assert second.check_runs == 1  # the merge result once (main's baseline came with s1's landing): no retry


def test_a_batch_rejects_a_conflicting_branch_before_asking_the_reviewer(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=2, extra="[review]\nbatch_min = 1\n")
    factory.script([
        session_call("s1", [{"write": "inventory/stock.py", "content": STOCK.replace(DOC, DOC_B)}], "Reword docstring"),
        session_call("s2", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test"),
        review_call("s2", APPROVE),  # no call for s1: asking about it would fail the call, not reject it
    ])  # fmt: skip
    branches = pending_branches(factory, ["s1", "s2"])
    other, _ = someone_elses_commit(factory, tmp_path)
    (other / "inventory" / "stock.py").write_text(STOCK.replace(DOC, DOC_A))  # the same line, changed on main
    git(other, "commit", "-q", "-am", "Reword the docstring on main")
    git(other, "push", "-q", "origin", "HEAD:main")
    outcomes = {o.branch: o for o in MergeGate(factory.ctx()).run()}
    assert outcomes[branches["s1"]].verdict == "reject", outcomes[branches["s1"]]
    assert outcomes[branches["s1"]].reasons == ("conflict with main in: inventory/stock.py",)
    assert outcomes[branches["s2"]].verdict == "approve"
