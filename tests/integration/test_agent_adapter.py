"""The agent adapter against real processes: the scripted agent and the real `claude` CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from factoryctl.adapters.agent import Agent, CallOutcome
from factoryctl.core.config import AgentSection
from factoryctl.state.eventlog import EventLog
from tests.helpers import survivors, tool


def scenario(tmp_path: Path, calls: list[dict[str, object]], repeat: bool = False) -> Path:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"calls": calls, "repeat": repeat}))
    return path


def scripted(tmp_path: Path, path: Path, timeout_s: int = 30) -> tuple[Agent, EventLog]:
    log = EventLog(tmp_path / "log.jsonl", secrets=())
    spec = AgentSection(command=[tool("factory-scripted-agent"), "--scenario", str(path), "-p"], timeout_s=timeout_s)
    return Agent(spec, log, environ=dict(os.environ)), log


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "wt"
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def test_a_scripted_call_edits_files_reports_cost_and_is_logged(tmp_path: Path, work: Path) -> None:
    path = scenario(tmp_path, [{
        "actions": [
            {"write": "src/a.py", "content": "x = {n}\n"},
            {"append": "src/a.py", "content": "y = 2\n"},
            {"write": "gone.txt", "content": "bye"},
            {"delete": "gone.txt"},
        ],
        "result": "added a.py", "cost_usd": 0.42, "num_turns": 7,
        "usage": {"input_tokens": 900, "cache_read_input_tokens": 100, "output_tokens": 250},
    }])  # fmt: skip
    agent, log = scripted(tmp_path, path)
    got = agent.call("please add a.py", cwd=work, session="s2", purpose="cycle")
    assert got.ok, got.reason
    assert (got.text, got.cost_usd, got.num_turns) == ("added a.py", 0.42, 7)
    assert (work / "src" / "a.py").read_text() == "x = 1\ny = 2\n"
    assert not (work / "gone.txt").exists()
    (event,) = log.tail(5)
    assert event.type == "agent_call" and event.session == "s2"
    assert event.data["purpose"] == "cycle" and event.data["outcome"] == "success"
    assert event.data["cost_usd"] == 0.42 and event.data["num_turns"] == 7
    assert (event.data["input_tokens"], event.data["output_tokens"]) == (1000, 250)


def test_calls_are_taken_in_order_by_match_and_a_commit_action_commits(tmp_path: Path, work: Path) -> None:
    path = scenario(tmp_path, [
        {"match": "REVIEW", "result": "{\"verdict\": \"approve\"}"},
        {"actions": [{"write": "f.txt", "content": "1"}, {"commit": "agent commit"}], "result": "first"},
        {"result": "second"},
    ])  # fmt: skip
    agent, _ = scripted(tmp_path, path)
    assert agent.call("work", cwd=work, session="s1", purpose="cycle").text == "first"
    assert agent.call("REVIEW this", cwd=work, session=None, purpose="review").text == '{"verdict": "approve"}'
    assert agent.call("work", cwd=work, session="s1", purpose="cycle").text == "second"
    third = agent.call("work", cwd=work, session="s1", purpose="cycle")
    assert third.outcome is CallOutcome.EXIT_NONZERO and "no unused call matches" in third.reason
    log = subprocess.run(["git", "log", "--format=%s"], cwd=work, capture_output=True, text=True, check=True)
    assert log.stdout.strip() == "agent commit"


@pytest.mark.parametrize(
    ("call", "outcome"),
    [
        ({"stdout": "}}} this is not json {{{"}, CallOutcome.MALFORMED),
        ({"exit": 3, "stdout": "", "stderr": "boom"}, CallOutcome.EXIT_NONZERO),
        ({"stdout": "Not logged in · Please run /login", "exit": 1}, CallOutcome.NOT_LOGGED_IN),
        ({"subtype": "error_max_turns", "exit": 1}, CallOutcome.MAX_TURNS),
        ({"subtype": "error_max_budget_usd", "exit": 1}, CallOutcome.BUDGET),
    ],
)
def test_scripted_failures_come_back_typed(
    tmp_path: Path, work: Path, call: dict[str, object], outcome: CallOutcome
) -> None:
    agent, log = scripted(tmp_path, scenario(tmp_path, [call]))
    got = agent.call("x", cwd=work, session="s1", purpose="cycle")
    assert got.outcome is outcome, got.reason
    assert log.tail(1)[0].data["outcome"] == outcome.value


def test_a_hanging_agent_is_killed_with_its_children_at_the_timeout(tmp_path: Path, work: Path) -> None:
    marker = f"hang-{os.getpid()}-{time.time_ns()}"
    hang = ["python3", "-c", "import time; time.sleep(300)", marker]
    path = scenario(tmp_path, [{"actions": [{"run": ["setsid", *hang]}, {"run": hang}]}])
    agent, _ = scripted(tmp_path, path, timeout_s=2)
    started = time.monotonic()
    got = agent.call("x", cwd=work, session="s1", purpose="cycle")
    elapsed = time.monotonic() - started
    assert got.outcome is CallOutcome.TIMEOUT
    assert elapsed < 10
    left = survivors(marker)
    assert left == []


def test_background_children_do_not_outlive_a_finished_call(tmp_path: Path, work: Path) -> None:
    marker = f"bg-{os.getpid()}-{time.time_ns()}"
    daemonish = ["sh", "-c", f"python3 -c 'import time; time.sleep(300)' {marker} &"]
    agent, _ = scripted(tmp_path, scenario(tmp_path, [{"actions": [{"run": daemonish}]}]))
    started = time.monotonic()
    assert agent.call("x", cwd=work, session="s1", purpose="cycle").ok
    assert time.monotonic() - started < 10
    assert survivors(marker) == []


def test_a_missing_agent_command_is_a_typed_failure(tmp_path: Path, work: Path) -> None:
    log = EventLog(tmp_path / "log.jsonl", secrets=())
    agent = Agent(AgentSection(command=["no-such-agent-cli"], timeout_s=5), log)
    got = agent.call("x", cwd=work, session="s1", purpose="cycle")
    assert got.outcome is CallOutcome.MISSING and "no-such-agent-cli: command not found" in got.reason


def test_the_agent_never_gets_the_bot_or_http_tokens(tmp_path: Path, work: Path) -> None:
    path = scenario(tmp_path, [{"actions": [{"run": ["sh", "-c", "env > env.txt"]}]}])
    log = EventLog(tmp_path / "log.jsonl", secrets=())
    spec = AgentSection(command=[tool("factory-scripted-agent"), "--scenario", str(path)], timeout_s=30)
    environ = {**os.environ, "TELEGRAM_BOT_TOKEN": "bot-secret-123", "FACTORY_HTTP_TOKEN": "http-secret-123"}
    assert Agent(spec, log, environ=environ).call("x", cwd=work, session="s1", purpose="cycle").ok
    seen = (work / "env.txt").read_text()
    assert "bot-secret-123" not in seen and "http-secret-123" not in seen


@pytest.mark.parametrize(
    "body",
    ["this is { not json", json.dumps({"calls": []}), json.dumps({"calls": [{"actions": [{"write": "../../etc/x"}]}]})],
)
def test_a_bad_scenario_is_one_line_and_changes_nothing(tmp_path: Path, work: Path, body: str) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(body)
    before = sorted(p.name for p in work.iterdir())
    proc = subprocess.run(
        [tool("factory-scripted-agent"), "--scenario", str(path)], input="x", cwd=work, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("factory-scripted-agent: scenario ")
    assert sorted(p.name for p in work.iterdir()) == before


def test_the_real_claude_cli_without_credentials_fails_fast_as_not_logged_in(tmp_path: Path, work: Path) -> None:
    claude = shutil.which("claude")
    if claude is None:
        pytest.skip("the real `claude` CLI is not installed: npm install -g @anthropic-ai/claude-code (.ci/run does)")
    environ = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN")}
    environ.update(HOME=str(tmp_path), DISABLE_AUTOUPDATER="1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")
    log = EventLog(tmp_path / "log.jsonl", secrets=())
    spec = AgentSection(command=[claude, "-p", "--model", "sonnet", "--output-format", "json", "--max-turns", "1"],
                        timeout_s=60)  # fmt: skip
    started = time.monotonic()
    got = Agent(spec, log, environ=environ).call("hello", cwd=work, session="s1", purpose="cycle")
    assert got.outcome is CallOutcome.NOT_LOGGED_IN, got.reason
    assert time.monotonic() - started < 20
    assert log.tail(1)[0].data["outcome"] == "not_logged_in"
