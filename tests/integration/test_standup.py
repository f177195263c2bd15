"""The standup end to end: real cycles in a real factory home, the scripted model answering each round."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from factoryctl.adapters.tmux import Tmux
from factoryctl.jobs.cycle import Cycle
from factoryctl.jobs.standup import Standup
from factoryctl.state.eventlog import EventFilter
from tests.factories import Factory, make_factory
from tests.helpers import run_cli, wait_for

STOCK = (Path(__file__).parents[1] / "samples" / "py-app" / "inventory" / "stock.py").read_text()
TEST = "def test_trivial_{n}() -> None:\n    assert 1 + 1 == 2\n"


def work(session: str, actions: list[dict[str, Any]], summary: str) -> dict[str, Any]:
    return {"match": f"You are {session},", "actions": actions, "result": summary}


def say(round_no: int, session: str, answer: dict[str, Any]) -> dict[str, Any]:
    return {"match": f"Standup round {round_no} for {session}.", "result": json.dumps(answer), "cost_usd": 0.01}


def three_cycles(factory: Factory) -> dict[str, str]:
    """s1 and s2 both change inventory/stock.py; s3 adds a test. All three push."""
    factory.script([
        work("s1", [{"write": "inventory/stock.py", "content": STOCK + "\n# s1 was here\n"}], "Note in stock"),
        work("s2", [{"write": "inventory/stock.py", "content": "# s2 header\n" + STOCK}], "Header for stock"),
        work("s3", [{"write": "tests/test_s3.py", "content": TEST.format(n=3)}], "Add a trivial test"),
    ])  # fmt: skip
    branches = {}
    for session in ("s1", "s2", "s3"):
        report = Cycle(factory.ctx(), session).run()
        assert report.verdict == "pushed", report.reason
        assert report.branch
        branches[session] = report.branch
    return branches


def meeting_script(branches: dict[str, str]) -> list[dict[str, Any]]:
    return [
        say(1, "s1", {"done": [f"pushed {branches['s1']}"], "stuck": [], "needs": ["a review"]}),
        # s2 claims a branch that does not exist: its report is rejected, the meeting goes on
        say(1, "s2", {"done": ["pushed brl/s2/20000101T000000Z"], "stuck": [], "needs": []}),
        say(1, "s3", {"done": ["added a test <script>alert(1)</script>"], "stuck": [], "needs": []}),
        say(2, "s1", {"responses": [{"to": "s2", "text": "we both change inventory/stock.py; I stop"}]}),
        say(2, "s2", {"responses": [{"to": "team", "text": "fine"}]}),
        say(2, "s3", {"responses": []}),
        say(3, "s1", {"next_task": {"title": "Add Stock.total", "body": "sum of quantities"}, "proposal": "review"}),
        say(3, "s2", {"next_task": {"title": "Document Stock"}, "proposal": "fewer overlaps"}),
        say(3, "s3", {"next_task": {"title": "Test Stock.remove edge cases"}, "proposal": "more tests"}),
        {"match": "Standup summary.", "result": json.dumps(
            {"summary": "Three pushes; s1 and s2 overlap.", "priorities": ["Stock.total"], "blockers": []})},
    ]  # fmt: skip


def standup_calls(factory: Factory) -> list[Any]:
    return [e for e in factory.ctx().log.tail(10_000, EventFilter(types=frozenset({"agent_call"})))
            if e.data["purpose"] == "standup"]  # fmt: skip


def test_a_standup_of_three_sessions(tmp_path: Path, tmux: Tmux) -> None:
    factory = make_factory(tmp_path, sessions=3)
    branches = three_cycles(factory)
    factory.script(meeting_script(branches))
    tmux.new_session("factory-s3", ["sh", "-c", "echo hello-from-the-pane; sleep 600"], cwd=tmp_path, env={})
    wait_for(lambda: "hello-from-the-pane" in tmux.capture("factory-s3", 5), 10, "the pane's output")
    data = Standup(factory.ctx(), tmux=tmux).run()

    assert len(standup_calls(factory)) == 3 * 3 + 1 == data["calls"]
    assert data["cost_usd"] == 0.09
    assert data["overlaps"] == [{"file": "inventory/stock.py", "sessions": ["s1", "s2"]}]
    assert data["failed"] == [{"round": 1, "session": "s2", "problem": "answer rejected: names what the facts do not "
                               "hold: branch brl/s2/20000101T000000Z"}]  # fmt: skip
    assert data["summary"].startswith("Three pushes; s1 and s2 overlap.")
    transcript = Path(data["transcript"]).read_text()
    assert transcript.index("## Round 1") < transcript.index("## Round 2") < transcript.index("## Round 3")
    assert transcript.index("## Round 3") < transcript.index("## Summary") < transcript.index("## Facts")
    assert branches["s1"] in transcript and "<script>" not in transcript  # agent text is escaped data
    assert "hello-from-the-pane" in transcript.split("## Facts")[1]  # the pane's last lines are facts
    event = factory.ctx().log.tail(1, EventFilter(types=frozenset({"team_standup"})))[0]
    assert event.data["tasks_created"] == data["tasks_created"]

    # Round 3 became tasks reserved per session, linked to the transcript.
    tasks = {t.session: t for t in factory.ctx().tasks().all()}
    assert {s: t.title for s, t in tasks.items()} == {
        "s1": "Add Stock.total", "s2": "Document Stock", "s3": "Test Stock.remove edge cases",
    }  # fmt: skip
    assert all(t.status == "queued" and Path(data["transcript"]).name in t.body for t in tasks.values())
    assert tasks["s1"].history[0]["note"] == "added by standup"

    # A second standup right after: nothing new, no meeting, no call.
    again = Standup(factory.ctx(), tmux=tmux).run()
    assert again["skipped"] and "nothing new" in again["reason"] and again["calls"] == 0
    assert len(standup_calls(factory)) == 10

    # The next cycle of s1 carries its task and the overlap advice.
    prompt_file = factory.scenario.parent / "prompt.txt"  # the sandbox lets the agent write there
    toml = factory.home / "factory.toml"
    toml.write_text(toml.read_text().replace(f'"{factory.scenario}"]', f'"{factory.scenario}", "--save-prompt", '
                                             f'"{prompt_file}"]', 1))  # fmt: skip
    factory.script([work("s1", [], "nothing to do")])
    report = Cycle(factory.ctx(), "s1").run()
    assert report.task is not None and report.task.id == tasks["s1"].id
    prompt = prompt_file.read_text()
    assert f"Task #{tasks['s1'].id} (normal): Add Stock.total" in prompt
    assert "inventory/stock.py is also being changed by s2" in prompt


def test_a_duplicate_commitment_makes_no_second_task(tmp_path: Path, tmux: Tmux) -> None:
    factory = make_factory(tmp_path, sessions=3)
    branches = three_cycles(factory)
    factory.ctx().tasks().add("Add Stock.total")
    factory.script(meeting_script(branches))
    data = Standup(factory.ctx(), tmux=tmux).run()
    dup = [c for c in data["tasks_created"] if c["session"] == "s1"]
    assert dup == [{"session": "s1", "title": "Add Stock.total", "duplicate_of": 1}]
    assert [t.title for t in factory.ctx().tasks().all()].count("Add Stock.total") == 1


def test_a_failed_call_costs_a_turn_not_the_meeting(tmp_path: Path, tmux: Tmux) -> None:
    factory = make_factory(tmp_path, sessions=3)
    branches = three_cycles(factory)
    script = meeting_script(branches)
    script[0] = {"match": "Standup round 1 for s1.", "exit": 1, "stdout": "boom"}
    factory.script(script)
    data = Standup(factory.ctx(), tmux=tmux).run()
    assert data["calls"] == 10
    assert [f["session"] for f in data["failed"]] == ["s1", "s2"]
    assert "call failed: exit_nonzero" in data["failed"][0]["problem"]
    assert len(data["tasks_created"]) == 3


def test_no_model_call_when_the_budget_holds_new_cycles_back(tmp_path: Path, tmux: Tmux) -> None:
    factory = make_factory(tmp_path, sessions=3)
    three_cycles(factory)
    day = factory.ctx().clock().strftime("%Y-%m-%d")
    holds = {"day": day, "closed": {"budget": "spent $21 of $20 today"}}
    (factory.home / "state" / "holds.json").write_text(json.dumps(holds))
    done = run_cli("standup", "--json", home=factory.home)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["skipped"] and "the budget holds new cycles back: spent $21" in data["reason"]
    assert standup_calls(factory) == []


def test_standup_cli_holds_the_meeting_and_a_second_start_is_refused_while_locked(tmp_path: Path, tmux: Tmux) -> None:
    from factoryctl.state.locks import job_lock

    factory = make_factory(tmp_path, sessions=3)
    branches = three_cycles(factory)
    script = meeting_script(branches)
    script[-1]["result"] = json.dumps({"summary": "Three pushes; s1 and s2 overlap; a test for mean([]) is *next*.",
                                       "priorities": ["Stock.total"], "blockers": []})  # fmt: skip
    factory.script(script)
    with job_lock(factory.home / "state" / "locks", "standup"):
        busy = run_cli("standup", home=factory.home)
    assert busy.returncode == 0 and "already running" in busy.stderr
    done = run_cli("standup", home=factory.home)
    assert done.returncode == 0, done.stderr
    assert "standup held: 10 model calls, $0.09, 3 tasks created; transcript " in done.stdout
    # The terminal shows the summary as written; only the Markdown transcript escapes it.
    assert "summary:\n  Three pushes; s1 and s2 overlap; a test for mean([]) is *next*.\n  Priorities: Stock.total" \
        in done.stdout and "\\" not in done.stdout  # fmt: skip
    transcript = next((factory.home / "standups").glob("*.md")).read_text()
    assert "a test for mean(\\[\\]) is \\*next\\*" in transcript
