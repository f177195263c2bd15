"""The work cycle end to end: real git with a bare origin, the scripted agent, real checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from factoryctl.jobs.context import Context
from factoryctl.jobs.cycle import Cycle
from factoryctl.jobs.loop import Loop, next_delay
from tests.factories import PYTEST_CHECK, SAMPLES, TS_CHECKS, TS_MODULES, Factory, git, make_factory
from tests.helpers import events, meanwhile, run_cli, survivors, tool

GOOD_TEST = """
from inventory.stock import Stock


def test_count_of_unknown_item_is_zero() -> None:
    assert Stock().count("plum") == 0
"""

SAMPLE_STOCK = (SAMPLES / "py-app" / "inventory" / "stock.py").read_text()
TAKE = """        have = self._items.get(item, 0)
        if quantity > have:
            raise OutOfStock(item)
        self._items[item] = have - quantity
"""
BROKEN_TAKE = SAMPLE_STOCK.replace(TAKE, "        self._items[item] = self._items.get(item, 0) + quantity\n")
assert BROKEN_TAKE != SAMPLE_STOCK


def only_cycle(factory: Factory) -> dict[str, Any]:
    (event,) = events(factory.home, "ralph_cycle")
    return dict(event.data)


def test_a_good_change_is_pushed_and_pending_in_the_review_queue(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    factory.script([{
        "actions": [{"write": "tests/test_more.py", "content": GOOD_TEST}],
        "result": "Add a test for unknown items", "cost_usd": 0.12, "num_turns": 5,
    }])  # fmt: skip
    ctx = factory.ctx()
    task = ctx.tasks().add("Test unknown items")
    report = Cycle(ctx, "s1").run()
    assert report.verdict == "pushed", report.reason
    branch = report.branch
    assert branch is not None and branch.startswith("brl/s1/") and branch.endswith("Z")
    assert factory.origin_branches() == sorted(["main", branch])
    assert factory.show(branch, "tests/test_more.py") == GOOD_TEST.strip()
    author = subprocess.run(["git", "log", "-1", "--format=%an <%ae>|%s", branch], cwd=factory.origin,
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert author == "factory s1 <s1@factory.invalid>|Add a test for unknown items"
    (entry,) = json.loads((factory.home / "state" / "review-queue.json").read_text())["branches"]
    assert entry["status"] == "pending" and entry["branch"] == branch and entry["task"] == task.id
    assert entry["before"]["pytest"]["total"] == 5 and entry["after"]["pytest"]["total"] == 6
    data = only_cycle(factory)
    assert data["verdict"] == "pushed" and data["task"] == task.id
    assert data["base"] == factory.main_sha() and data["head"] == entry["head"]
    assert data["before"]["pytest"]["passed"] == 5 and data["after"]["pytest"]["passed"] == 6
    assert data["files"] == ["tests/test_more.py"] and data["lines_added"] == GOOD_TEST.count("\n")
    assert data["cost_usd"] == 0.12 and data["num_turns"] == 5
    assert set(data["durations"]) >= {"agent_s", "checks_s", "total_s", "baseline_s"}
    assert ctx.tasks().get(task.id).status == "pushed"
    assert [h["status"] for h in ctx.tasks().get(task.id).history] == ["queued", "assigned", "in_progress", "pushed"]
    assert factory.main_sha() == data["base"]  # the cycle never touches main


def test_an_agent_that_tries_to_commit_its_own_work_is_handled_the_same(tmp_path: Path) -> None:
    """The agent's git is read-only (its commit fails); the runtime commits what it left, as always."""
    factory = make_factory(tmp_path)
    factory.script([{
        "actions": [{"write": "tests/test_more.py", "content": GOOD_TEST}, {"commit": "my own commit"},
                    {"write": "NOTES.md", "content": "left uncommitted\n"}],
        "result": "Add a test",
    }])  # fmt: skip
    report = Cycle(factory.ctx(), "s1").run()
    assert report.verdict == "pushed", report.reason
    assert report.files == ("NOTES.md", "tests/test_more.py")
    log = subprocess.run(["git", "log", "--format=%s", f"main..{report.branch}"], cwd=factory.origin,
                         capture_output=True, text=True, check=True).stdout.split("\n")  # fmt: skip
    assert log[:2] == ["Add a test", ""]


@pytest.mark.parametrize(
    ("actions", "reason"),
    [
        ([{"write": "inventory/stock.py", "content": BROKEN_TAKE}], "pytest: failed tests 0 -> 2"),
        ([{"delete": "tests/test_stock.py"}], "pytest: tests 5 -> 0"),
        ([], "no change"),
        ([{"write": ".github/workflows/ci.yml", "content": "on: push\n"}], "touches protected paths: .github/"),
        (
            [{"write": ".github/workflows/é ü.yml", "content": "on: push\n"}],
            "touches protected paths: .github/workflows/é ü.yml",
        ),
        # Its git is read-only in the sandbox: it cannot leave its branch, and nothing changed.
        ([{"run": ["git", "checkout", "-q", "-b", "elsewhere"]}], "no change"),
    ],
)
def test_a_bad_change_is_discarded_and_its_branch_is_gone(
    tmp_path: Path, actions: list[dict[str, Any]], reason: str
) -> None:
    factory = make_factory(tmp_path)
    factory.script([{"actions": actions, "result": "a change"}])
    ctx = factory.ctx()
    task = ctx.tasks().add("Something")
    report = Cycle(ctx, "s1").run()
    assert report.verdict == "discarded"
    assert reason in report.reason
    assert reason in only_cycle(factory)["reason"]
    assert factory.origin_branches() == ["main"]
    assert not [b for b in factory.local_branches() if b.startswith("brl/")]
    assert ctx.tasks().get(task.id).status == "queued"  # requeued for another try
    assert (
        json.loads(
            (factory.home / "state" / "review-queue.json").read_text()
            if (factory.home / "state" / "review-queue.json").exists()
            else '{"branches": []}'
        )["branches"]
        == []
    )


@pytest.mark.skipif(not TS_MODULES.is_dir(), reason="sample node_modules missing: npm ci --prefix tests/samples/ts-app")
def test_typescript_checks_end_to_end_type_error_discarded_good_change_pushed(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sample="ts-app", checks=TS_CHECKS)
    type_error = "export const total: number = 'not a number';\n"
    good = 'import { expect, it } from "vitest";\nit("adds", () => { expect(1 + 1).toBe(2); });\n'
    factory.script([
        {"match": "", "actions": [{"write": "src/bad.ts", "content": type_error}], "result": "bad"},
        {"actions": [{"write": "src/extra.test.ts", "content": good}], "result": "Add a test"},
    ])  # fmt: skip
    first = Cycle(factory.ctx(), "s1").run()
    assert first.verdict == "discarded" and "tsc: errors 0 -> 1" in first.reason
    second = Cycle(factory.ctx(), "s1").run()
    assert second.verdict == "pushed", second.reason
    assert second.after["vitest"].counts.total == second.before["vitest"].total + 1
    assert len(events(factory.home, "baseline")) == 1  # main did not move: one baseline for both cycles


@pytest.mark.parametrize(
    ("call", "outcome"),
    [
        ({"actions": [{"sleep": 60}]}, "timeout"),
        ({"exit": 4, "stdout": "", "stderr": "crashed"}, "exit_nonzero"),
        ({"stdout": "\x00\x01 garbage ]]"}, "malformed_output"),
        ({"stdout": "Not logged in · Please run /login", "exit": 1}, "not_logged_in"),
    ],
)
def test_a_failing_agent_ends_the_cycle_cleanly_and_the_loop_backs_off(
    tmp_path: Path, call: dict[str, Any], outcome: str
) -> None:
    # 2 s only where the agent hangs: a quick failure must not turn into a timeout on a loaded machine
    factory = make_factory(tmp_path, agent_timeout_s=2 if outcome == "timeout" else 30)
    marker = f"agent-child-{time.time_ns()}"
    call = {**call, "actions": [{"write": "x.txt", "content": "partial"}, *call.get("actions", [])]}
    call["actions"].insert(0, {"run": ["sh", "-c", f"sleep 120 & exec true {marker}"]})
    factory.script([call], repeat=True)
    waits: list[float] = []
    loop = Loop(factory.ctx(), "s1", out=lambda text: None, sleep=waits.append, max_cycles=3)
    assert loop.run() == 0
    cycles = [e.data for e in events(factory.home, "ralph_cycle")]
    assert [c["verdict"] for c in cycles] == ["failed"] * 3
    assert all(c["agent_outcome"] == outcome for c in cycles)
    assert waits == [120.0, 240.0]  # interval 60 s doubled per consecutive failure
    assert factory.origin_branches() == ["main"]
    assert not [b for b in factory.local_branches() if b.startswith("brl/")]
    assert not (factory.home / "worktrees" / "s1" / "x.txt").exists()
    assert survivors(marker) == []


def test_backoff_is_capped_and_resets() -> None:
    assert next_delay(900, 100, 0, 3600) == 800
    assert [next_delay(900, 5, n, 3600) for n in (1, 2, 3, 4)] == [1800, 3600, 3600, 3600]
    assert next_delay(900, 1000, 0, 3600) == 0


def test_eight_sessions_at_once_share_one_baseline_and_respect_heavy_slots(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=8)
    factory.script(
        [{"actions": [{"write": "tests/test_{cwd_name}.py", "content": GOOD_TEST}], "result": "Add a test"}],
        repeat=True,
    )
    env = {**os.environ, "FACTORY_HOME": str(factory.home)}
    procs = [subprocess.Popen([tool("factoryctl"), "cycle", f"s{i}", "--json"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(1, 9)]  # fmt: skip
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    assert [r["verdict"] for r in reports] == ["pushed"] * 8
    for i, report in enumerate(reports, start=1):  # each branch holds its own session's file only
        assert report["files"] == [f"tests/test_s{i}.py"]
    baselines = events(factory.home, "baseline")
    assert len(baselines) == 1 and baselines[0].data["commit"] == factory.main_sha()
    spans = [(c["started"], c["ended"]) for c in baselines[0].data["checks"].values() if c["heavy"]]
    spans += [(r["after"]["pytest"]["started"], r["after"]["pytest"]["ended"]) for r in reports]
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    inside = peak = 0
    for _, step in edges:
        inside += step
        peak = max(peak, inside)
    assert 1 <= peak <= 2  # heavy_slots = 2
    assert sum(r["baseline_computed"] for r in reports) == 1


def test_sigterm_ends_the_loop_cleanly_with_no_half_made_branch(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    marker = f"slow-agent-{time.time_ns()}"
    factory.script([{"actions": [{"write": "half.txt", "content": "x"},
                                 {"run": ["python3", "-c", "import time; time.sleep(60)", marker]}]}])  # fmt: skip
    env = {**os.environ, "FACTORY_HOME": str(factory.home)}
    proc = subprocess.Popen([tool("factoryctl"), "loop", "s1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if survivors(marker):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the agent never started: " + proc.communicate()[1])
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopping (SIGTERM)" in out
    assert "calling the agent on brl/s1/" in out
    (cycle,) = events(factory.home, "ralph_cycle")
    assert cycle.data["verdict"] == "interrupted"
    assert factory.origin_branches() == ["main"]
    assert not [b for b in factory.local_branches() if b.startswith("brl/")]
    assert not (factory.home / "worktrees" / "s1" / "half.txt").exists()
    assert survivors(marker) == []
    state = json.loads((factory.home / "state" / "sessions.json").read_text())
    assert state["s1"]["state"] == "stopped"


def test_a_paused_session_waits(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    flag = factory.home / "state" / "paused.s1"
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text("maintenance")
    lines: list[str] = []
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            flag.unlink()

    Loop(factory.ctx(), "s1", out=lines.append, sleep=sleep, max_cycles=1).run()
    assert naps == [10.0, 10.0, 10.0]
    assert any("waiting: paused (paused.s1): maintenance" in line for line in lines)
    assert len(events(factory.home, "ralph_cycle")) == 1


def test_worktrees_are_reused_and_orphans_collected(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=2)
    Cycle(factory.ctx(), "s1").run()
    # An ignored file survives the reset between cycles, but not a worktree made anew.
    (factory.home / "repo" / ".git" / "info" / "exclude").write_text("reuse-marker\n")
    marker = factory.home / "worktrees" / "s1" / "reuse-marker"
    marker.write_text("from the first cycle")
    Cycle(factory.ctx(), "s2").run()
    second = Cycle(factory.ctx(), "s1").run()  # the same session again: its worktree is reused
    assert second.base is not None and marker.read_text() == "from the first cycle"
    assert (factory.home / "worktrees" / "s2").is_dir()
    (factory.home / "factory.toml").write_text(
        (factory.home / "factory.toml").read_text().replace("sessions = 2", "sessions = 1")
    )
    Cycle(factory.ctx(), "s1").run()
    assert not (factory.home / "worktrees" / "s2").exists()
    assert marker.exists()
    listed = subprocess.run(["git", "worktree", "list"], cwd=factory.home / "repo", capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert "worktrees/s2" not in listed and "worktrees/s1" in listed


def test_cycle_for_an_unknown_session_is_a_clear_error(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    proc = run_cli("cycle", "s9", home=factory.home)
    assert proc.returncode == 2 and proc.stderr == "Error: unknown session 's9'; this factory has s1..s2\n"


def test_the_prompt_carries_task_context_baseline_and_rejections(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, checks=PYTEST_CHECK)
    ctx = factory.ctx()
    (factory.home / "skills").mkdir()
    (factory.home / "skills" / "testing.md").write_text("Always add a test.\n" + "x" * 20_000)
    ctx.log.append("cto_review", data={"session": "s1", "branch": "brl/s1/x", "verdict": "reject",
                                        "reasons": ["the change mixes two things"]})  # fmt: skip
    ctx.tasks().add("Speed up report", body="It is slow with 10k items.")
    factory.script([{"actions": [{"run": ["sh", "-c", "cat > /dev/null"]}], "result": "noop"}])
    prompt_file = factory.scenario.parent / "prompt.txt"  # the sandbox lets the agent write there
    toml = (
        (factory.home / "factory.toml")
        .read_text()
        .replace(
            f'"--scenario", "{factory.scenario}"]',
            f'"--scenario", "{factory.scenario}", "--save-prompt", "{prompt_file}"]',
        )
    )
    (factory.home / "factory.toml").write_text(toml)
    Cycle(factory.ctx(), "s1").run()
    prompt = prompt_file.read_text()
    assert "Task #1 (normal): Speed up report" in prompt and "It is slow with 10k items." in prompt
    assert "Keep changes small." in prompt  # CLAUDE.md of the target repo
    assert "- pytest: 0 errors, 0 failed, 5 passed, 5 tests" in prompt
    assert "the change mixes two things" in prompt
    assert "Always add a test." in prompt and "skill file testing.md cut at 8,000" in prompt
    assert len(prompt) < 40_000


def test_a_branch_pushed_but_not_queued_is_removed_from_origin(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    factory.script([{"actions": [{"write": "tests/test_more.py", "content": GOOD_TEST}], "result": "Add a test"}])
    queue_file = factory.home / "state" / "review-queue.json"
    queue_file.parent.mkdir(parents=True, exist_ok=True)
    queue_file.write_text("{not json")
    report = Cycle(factory.ctx(), "s1").run()
    assert report.verdict == "failed" and "review-queue.json is not valid JSON" in report.reason
    assert factory.origin_branches() == ["main"]
    assert queue_file.read_text() == "{not json"


def test_a_task_cancelled_while_the_agent_works_is_not_pushed(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    cancel = [tool("factoryctl"), "task", "cancel", "1"]
    env = {**os.environ, "FACTORY_HOME": str(factory.home)}
    person = meanwhile(factory.scenario.parent, lambda: subprocess.run(cancel, env=env, check=True))
    factory.script([{"actions": [{"write": "tests/test_more.py", "content": GOOD_TEST}, *person],
                     "result": "Add a test"}])  # fmt: skip
    ctx = factory.ctx()
    ctx.tasks().add("Test unknown items")
    report = Cycle(ctx, "s1").run()
    assert report.verdict == "discarded" and report.reason == "task #1 was cancelled meanwhile"
    assert factory.origin_branches() == ["main"]
    assert ctx.tasks().get(1).status == "cancelled"


def test_a_broken_prompt_template_fails_the_cycle_and_the_loop_goes_on(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    (factory.home / "prompts").mkdir()
    (factory.home / "prompts" / "cycle.md").write_text("Hello {{ no_such_name }}\n")
    waits: list[float] = []
    lines: list[str] = []
    Loop(factory.ctx(), "s1", out=lines.append, sleep=waits.append, max_cycles=2).run()
    cycles = [e.data for e in events(factory.home, "ralph_cycle")]
    assert [c["verdict"] for c in cycles] == ["failed", "failed"]
    assert "prompt template error: 'no_such_name' is undefined" in cycles[0]["reason"]
    assert waits == [120.0]  # counted as a failure: backing off
    assert factory.origin_branches() == ["main"]


def test_a_branch_left_on_origin_by_a_crash_is_removed_by_the_next_cycle(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    stray = tmp_path / "stray"
    git(tmp_path, "clone", "-q", str(factory.origin), str(stray))
    git(
        stray,
        "push",
        "-q",
        "origin",
        "HEAD:refs/heads/brl/s1/20200101T000000Z",
        "HEAD:refs/heads/brl/s2/20200101T000000Z",
    )
    Cycle(factory.ctx(), "s1").run()
    assert factory.origin_branches() == ["brl/s2/20200101T000000Z", "main"]  # only s1's own are its business


def test_a_clock_that_never_moves_is_an_error_not_a_spin(tmp_path: Path) -> None:
    """The wait for a fresh branch name goes through ctx.sleep and is bounded: a fake clock cannot hang it."""
    factory = make_factory(tmp_path, sessions=1)
    frozen = datetime(2026, 11, 24, 8, 0, 0, tzinfo=UTC)
    slept: list[float] = []
    ctx = factory.ctx()
    ctx = Context(paths=ctx.paths, settings=ctx.settings, clock=lambda: frozen, sleep=slept.append)
    ctx.heartbeats().beat("s1", "idle", last_cycle={"branch": "brl/s1/20261124T080000Z"})
    report = Cycle(ctx, "s1").run()
    assert report.verdict == "failed" and "the clock did not move past 20261124T080000Z" in report.reason
    assert slept and sum(slept) == pytest.approx(5.0)  # the fake sleep, never the real one


def test_by_products_are_left_out_of_the_change_and_dependency_folders_are_left_alone(tmp_path: Path) -> None:
    """Whatever the repository ignores: the agent's bytecode and caches are not committed, and said so."""
    factory = make_factory(tmp_path, ignore_rules=False)
    factory.script([{"actions": [
        {"write": "tests/test_more.py", "content": GOOD_TEST},
        {"write": "inventory/__pycache__/stock.cpython-311.pyc", "content": "bytecode"},
        {"write": ".coverage", "content": "data"},
        {"write": ".venv/lib/site/__pycache__/dep.cpython-311.pyc", "content": "setup's own"},
    ], "result": "Add a test"}])  # fmt: skip
    report = Cycle(factory.ctx(), "s1").run()
    assert report.verdict == "pushed", report.reason
    assert report.files == ("tests/test_more.py",)
    assert report.left_out == (".coverage", "inventory/__pycache__/")
    assert "left out 2 by-product(s) of running the code: .coverage, inventory/__pycache__/" in report.notes
    assert only_cycle(factory)["left_out"] == [".coverage", "inventory/__pycache__/"]
    assert (factory.home / "worktrees" / "s1" / ".venv/lib/site/__pycache__/dep.cpython-311.pyc").exists()
