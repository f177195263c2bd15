"""The doctor end to end: real cycles and a real merge gate, the scripted model as the doctor."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from factoryctl.adapters.tmux import Tmux
from factoryctl.core.clock import utcnow
from factoryctl.jobs.context import Context
from factoryctl.jobs.cycle import Cycle
from factoryctl.jobs.doctor import Doctor
from factoryctl.jobs.review.gate import MergeGate
from factoryctl.jobs.sessions import Sessions
from factoryctl.state.skills import SkillStore
from tests.factories import make_factory
from tests.helpers import REPO_ROOT, events, run_cli

QUIET = "[doctor]\npause_error_looping = true\nrestart_dead = false\n"
FAILING = {"match": "You are s1,", "subtype": "error_during_execution", "result": "API Error: 529 overloaded"}
APPROVE = json.dumps({"verdict": "approve", "reasons": ["focused and tested"], "risk": "low", "issues": []})
NAN_TEST = "import math\n\n\ndef test_nan_is_not_finite() -> None:\n    assert not math.isfinite(float('nan'))\n"


def doctor_says(answer: dict[str, Any]) -> dict[str, Any]:
    return {"match": "Doctor's analysis", "result": json.dumps(answer), "cost_usd": 0.02}


def test_a_session_failing_the_same_way_three_times_is_error_looping_alerted_and_paused_once(
    tmp_path: Path, tmux: Tmux
) -> None:
    factory = make_factory(tmp_path, sessions=2, extra=QUIET + "[alerts]\nquiet_s = 10\n")
    factory.script([FAILING, FAILING, FAILING, doctor_says({"cycle_prompt": "", "skills": [], "notes": "529s"})])
    for _ in range(3):
        assert Cycle(factory.ctx(), "s1").run().verdict == "failed"
    ctx = factory.ctx()
    data = Doctor(ctx, sessions=Sessions(ctx, tmux)).run()
    s1 = data["sessions"]["s1"]
    assert s1["state"] == "error_looping" and len(s1["evidence"]) == 3
    assert all("API Error: 529 overloaded" in line for line in s1["evidence"])
    assert data["sessions"]["s2"] == {
        "state": "idle", "reason": "dead tmux pane", "evidence": ["tmux pane missing"], "paused": False
    }  # fmt: skip
    assert [(a["kind"], a["session"]) for a in data["actions"]] == [("alert", "s1"), ("pause", "s1"), ("alert", "s2")]
    alerts = [e for e in events(factory.home, "alert") if e.session == "s1"]
    assert len(alerts) == 1 and "error_looping" in alerts[0].data["message"]
    assert (factory.home / "state" / "paused.s1").read_text().startswith("paused by the doctor")
    assert data["call"] == "answered" and data["calls"] == 1
    report = Path(data["report"]).read_text()
    assert "error_looping" in report and "529" in report
    assert events(factory.home, "doctor_analysis")[-1].data["summary"] == data["summary"]
    # Run again past the quiet period, s2's pane back: s1 is still reported error-looping, now
    # paused, and is neither alerted nor paused again, nor worth another model call.
    tmux.new_session("factory-s2", ["sleep", "600"], cwd=tmp_path, env={})
    later = Context.load(factory.home, clock=lambda: utcnow() + timedelta(minutes=1))
    again = Doctor(later, sessions=Sessions(later, tmux)).run()
    s1 = again["sessions"]["s1"]
    assert (s1["state"], s1["paused"]) == ("error_looping", True)
    assert s1["reason"] == "the last 3 cycles failed the same way, paused"
    assert s1["evidence"][-1].startswith("pause flag: paused by the doctor")
    assert again["actions"] == [] and again["call"] == "not needed"
    assert len([e for e in events(factory.home, "alert") if e.session == "s1"]) == 1
    assert "s1: the last 3 cycles failed the same way, paused" in again["summary"]


def test_nothing_to_learn_means_no_model_call(tmp_path: Path, tmux: Tmux) -> None:
    factory = make_factory(tmp_path, sessions=1, extra=QUIET)
    factory.script([{"match": "You are s1,", "actions": [{"write": "tests/test_x.py", "content": NAN_TEST}]}])
    assert Cycle(factory.ctx(), "s1").run().verdict == "pushed"
    tmux.new_session("factory-s1", ["sleep", "600"], cwd=tmp_path, env={})
    ctx = factory.ctx()
    data = Doctor(ctx, sessions=Sessions(ctx, tmux)).run()
    assert data["sessions"]["s1"]["state"] == "productive"
    assert data["call"] == "not needed" and data["calls"] == 0
    assert [e for e in events(factory.home, "agent_call") if e.data["purpose"] == "doctor"] == []


def test_a_skill_from_a_landed_branch_is_written_with_provenance_and_reaches_the_next_prompt(
    tmp_path: Path, tmux: Tmux
) -> None:
    factory = make_factory(tmp_path, sessions=1, extra=QUIET)
    shutil.copytree(REPO_ROOT / "skills", factory.home / "skills")  # what the deploy seeds
    factory.script([
        {"match": "You are s1,", "actions": [{"write": "tests/test_nan.py", "content": NAN_TEST}], "result": "NaN"},
        {"match": "by session s1", "result": APPROVE},
    ])  # fmt: skip
    branch = Cycle(factory.ctx(), "s1").run().branch
    assert branch is not None
    [landed] = [o for o in MergeGate(factory.ctx()).run() if o.verdict == "approve"]
    assert landed.landed == factory.main_sha()
    commit = landed.landed[:12]
    good = {"name": "guard-nan-before-arithmetic", "when": "parsing numbers that may be NaN from event tags",
            "body": "Check math.isfinite(x) before doing arithmetic with a parsed value.",
            "source_branch": branch, "source_commit": commit}  # fmt: skip
    near_dup = {**good, "name": "never-weaken-tests-again", "when": "a test fails or a check got worse after a change",
                "body": "Never delete, skip or loosen a test to make the checks pass."}  # fmt: skip
    secret = {**good, "name": "use-the-bot", "body": "Send with token 123456789:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
    made_up = {**good, "name": "from-nowhere", "body": "Something else entirely.", "source_branch": "brl/s1/nope"}
    new_prompt = "You are {{ session }}. Run the tests before you stop.\n"
    factory.script([doctor_says({"cycle_prompt": new_prompt, "skills": [good, near_dup, secret, made_up]})])
    tmux.new_session("factory-s1", ["sleep", "600"], cwd=tmp_path, env={})
    ctx = factory.ctx()
    data = Doctor(ctx, sessions=Sessions(ctx, tmux)).run()

    assert [w["name"] for w in data["skills_written"]] == ["guard-nan-before-arithmetic"]
    refused = {r["name"]: r["reason"] for r in data["skills_refused"]}
    assert "nearly duplicates skill 'never-weaken-tests'" in refused["never-weaken-tests-again"]
    assert "credential" in refused["use-the-bot"]
    assert "did not land" in refused["from-nowhere"]
    skill = SkillStore(factory.home / "skills").get("guard-nan-before-arithmetic")
    assert (skill.source_branch, skill.source_commit, skill.shown) == (branch, commit, 0)
    text = (factory.home / "skills" / "guard-nan-before-arithmetic.md").read_text()
    assert f"source_branch: {branch}\nsource_commit: {commit}\n" in text and "AAAAAAAA" not in text
    # The prompt change is a diff in the report, never applied.
    assert data["prompt_change_suggested"]
    report = Path(data["report"]).read_text()
    assert "+You are {{ session }}. Run the tests before you stop." in report
    assert not (factory.home / "prompts" / "cycle.md").exists()

    # The next cycle's prompt shows the skill first for a task about NaN in tags, and counts it.
    factory.ctx().tasks().add("Guard NaN values in event tags", session="s1")
    prompt_file = factory.scenario.parent / "prompt.txt"  # the sandbox lets the agent write there
    toml = factory.home / "factory.toml"
    toml.write_text(toml.read_text().replace(f'"{factory.scenario}"]', f'"{factory.scenario}", "--save-prompt", '
                                             f'"{prompt_file}"]', 1))  # fmt: skip
    factory.script([{"match": "You are s1,", "result": "nothing"}])
    Cycle(factory.ctx(), "s1").run()
    prompt = prompt_file.read_text()
    skills_part = prompt[prompt.index("## Skills") :]
    assert skills_part.index("### guard-nan-before-arithmetic") < skills_part.index("### never-weaken-tests")
    assert "math.isfinite(x)" in skills_part
    assert SkillStore(factory.home / "skills").get("guard-nan-before-arithmetic").shown == 1

    # factoryctl skills list | show | remove
    listed = run_cli("skills", "list", home=factory.home)
    assert "guard-nan-before-arithmetic" in listed.stdout and branch in listed.stdout
    shown = run_cli("skills", "show", "guard-nan-before-arithmetic", home=factory.home)
    assert "math.isfinite" in shown.stdout
    bad = run_cli("skills", "remove", "../factory.toml", home=factory.home)
    assert bad.returncode != 0 and bad.stderr.startswith("Error: invalid skill name") and toml.exists()
    assert run_cli("skills", "remove", "guard-nan-before-arithmetic", home=factory.home).returncode == 0
    assert not (factory.home / "skills" / "guard-nan-before-arithmetic.md").exists()
    missing = run_cli("skills", "show", "guard-nan-before-arithmetic", home=factory.home)
    assert missing.returncode == 1 and "Error: no skill" in missing.stderr


def test_doctor_cli_prints_each_session_state(tmp_path: Path, tmux: Tmux) -> None:
    factory = make_factory(tmp_path, sessions=2, extra=QUIET)
    (factory.home / "state").mkdir(exist_ok=True)
    (factory.home / "state" / "paused.s2").write_text("maintenance\n")
    done = run_cli("doctor", home=factory.home)
    assert done.returncode == 0, done.stderr
    assert "s2   idle           paused" in done.stdout
    assert "s1   idle           dead tmux pane" in done.stdout
    commands = run_cli("--help", home=factory.home).stdout.split("\nCommands:\n", 1)[1]
    assert {"standup", "doctor", "skills"} <= {line.split()[0] for line in commands.splitlines() if line.strip()}


def test_a_session_without_its_tmux_pane_is_restarted_when_configured(tmp_path: Path, tmux: Tmux) -> None:
    factory = make_factory(tmp_path, sessions=1, extra="[doctor]\nrestart_dead = true\n")
    factory.script([doctor_says({"cycle_prompt": "", "skills": []})], repeat=True)
    ctx = factory.ctx()
    assert "factory-s1" not in tmux.panes()
    data = Doctor(ctx, sessions=Sessions(ctx, tmux)).run()
    assert data["sessions"]["s1"]["reason"] == "dead tmux pane"
    assert [(a["kind"], a["result"]) for a in data["actions"]] == [("alert", "sent"), ("restart", "restarted")]
    assert tmux.panes()["factory-s1"].alive  # `factoryctl loop s1` runs again (the fixture stops it)
