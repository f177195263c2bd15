"""`factoryctl` as a person and a script use it: in-process through its entry point, and once as
the installed console script (the process boundary: exit codes, stdout and stderr)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factoryctl import __version__
from factoryctl.core.config import default_heavy_slots
from tests.helpers import run_cli, run_cli_process


def listed_commands(helptext: str) -> set[str]:
    """The command names of a --help page: the first word of each line under "Commands:"."""
    section = helptext.split("\nCommands:\n", 1)[1]
    return {line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.strip()}


ROOT_COMMANDS = {"status", "paths", "cycle", "loop", "review", "scheduler", "pause", "resume",
                 "task", "log", "config", "queue", "sessions", "init"}  # fmt: skip
SUBCOMMANDS = {
    "task": {"add", "list", "show", "retry", "cancel"},
    "log": {"tail", "path"},
    "config": {"show"},
    "queue": {"list", "show", "approve", "reject", "restore"},
    "sessions": {"list", "start", "stop", "restart", "attach"},
}


def test_version_and_help(home: Path) -> None:
    assert run_cli("--version", home=home).stdout.strip() == f"factoryctl {__version__}"
    helptext = run_cli("--help", home=home).stdout
    assert listed_commands(helptext) >= ROOT_COMMANDS  # names, not substrings of other help lines
    for noun, verbs in SUBCOMMANDS.items():
        assert verbs <= listed_commands(run_cli(noun, "--help", home=home).stdout), noun


def test_the_installed_command_is_a_process_with_exit_codes_and_one_line_errors(home: Path) -> None:
    assert run_cli_process("--version", home=home).stdout.strip() == f"factoryctl {__version__}"
    (home / "state").mkdir()
    (home / "state" / "tasks.json").write_text("{oops")
    broken = run_cli_process("task", "list", home=home)
    assert broken.returncode == 1 and broken.stdout == ""
    assert broken.stderr.startswith("Error: ") and broken.stderr.count("\n") == 1, broken.stderr
    usage = run_cli_process("nosuch", home=home)
    assert usage.returncode == 2 and "No such command 'nosuch'" in usage.stderr and "Traceback" not in usage.stderr


def test_listed_commands_reads_names_not_help_text() -> None:
    page = "Usage: x\n\nCommands:\n  status  Sessions and the task queue's config.\n  log     The log.\n"
    assert listed_commands(page) == {"status", "log"}


def test_task_lifecycle_from_the_command_line(home: Path) -> None:
    added = run_cli("task", "add", "Fix the flaky login test", "--body", "see CI", "-p", "high", home=home)
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "queued task #1: Fix the flaky login test"
    run_cli("task", "add", "Low thing", "-p", "low", home=home)
    run_cli("task", "add", "Urgent thing", "-p", "urgent", home=home)
    listed = json.loads(run_cli("task", "list", "--json", home=home).stdout)
    assert [t["title"] for t in listed] == ["Urgent thing", "Fix the flaky login test", "Low thing"]
    shown = json.loads(run_cli("task", "show", "1", "--json", home=home).stdout)
    assert shown["body"] == "see CI" and shown["status"] == "queued" and shown["priority"] == "high"
    assert "history:" in run_cli("task", "show", "1", home=home).stdout
    assert run_cli("task", "cancel", "1", home=home).returncode == 0
    assert [t["id"] for t in json.loads(run_cli("task", "list", "--json", home=home).stdout)] == [3, 2]
    everything = json.loads(run_cli("task", "list", "--all", "--json", home=home).stdout)
    assert {t["id"]: t["status"] for t in everything}[1] == "cancelled"
    events = [
        json.loads(line) for line in run_cli("log", "tail", "--json", "-t", "task", home=home).stdout.splitlines()
    ]
    assert [e["data"]["action"] for e in events] == ["added", "added", "added", "cancelled"]


def test_status_reports_sessions_queues_spend_and_events(home: Path) -> None:
    (home / "factory.toml").write_text("[factory]\nsessions = 2\n[budget]\ndaily_usd = 10\n")
    run_cli("task", "add", "Do a thing", "--session", "s2", home=home)
    report = json.loads(run_cli("status", "--json", home=home).stdout)
    assert [s["name"] for s in report["sessions"]] == ["s1", "s2"]
    assert report["tasks"] == {"queued": 1}
    assert report["budget"]["daily_usd"] == 10.0
    assert report["spend_today"]["total_usd"] == 0
    assert report["last_events"][-1]["type"] == "task"
    text = run_cli("status", home=home).stdout
    assert "spend today:   $0.00 of $10.00" in text and "s2" in text


def test_log_tail_filters_and_text_format(home: Path) -> None:
    from factoryctl.state.eventlog import EventLog

    log = EventLog(home / "state" / "experiment-log.jsonl", secrets=())
    for i in range(10):
        if i % 2:
            data = {"verdict": "discarded", "reason": f"no change {i}", "task": None, "branch": None}
            log.append("ralph_cycle", session=f"s{1 + i % 2}", data=data)
        else:
            log.append("alert", session=f"s{1 + i % 2}", data={"key": f"k{i}", "message": f"disk is full {i}"})
    out = run_cli("log", "tail", "-n", "3", "--type", "ralph_cycle", home=home).stdout.splitlines()
    assert len(out) == 3 and all("s2 discarded its change: no change" in line for line in out)
    assert out[-1].endswith("s2 discarded its change: no change 9")  # one sentence, no key=None dump
    only = run_cli("log", "tail", "--json", "--session", "s1", home=home).stdout.splitlines()
    assert {json.loads(line)["session"] for line in only} == {"s1"}


def test_config_show_and_paths(home: Path) -> None:
    (home / "factory.toml").write_text("[factory]\nsessions = 3\n")
    shown = json.loads(run_cli("config", "show", "--json", home=home).stdout)
    assert shown["factory"]["sessions"] == 3 and shown["scheduler"]["heavy_slots"] == default_heavy_slots()
    assert "[factory]\nsessions = 3" in run_cli("config", "show", home=home).stdout
    assert "sessions = 8" in run_cli("config", "show", "--defaults", home=home).stdout
    found = json.loads(run_cli("paths", "--json", home=home).stdout)
    assert found["log_file"] == str(home / "state" / "experiment-log.jsonl")
    assert found["repo_dir"] == str(home / "repo")


def snapshot(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("config", "args", "message"),
    [
        ('[factory]\nsessions = "many"\n', ["status"], "factory.sessions: must be a valid integer"),
        ('[[checks]]\nname = "x"\ncommand = ["x"]\nparser = "tslint"\n', ["status"], "unknown parser 'tslint'"),
        ("this is not toml", ["task", "list"], "not valid TOML"),
        ("", ["task", "add", "   "], "a task needs a title"),
        ("", ["task", "add", "x", "--session", "s99"], "unknown session 's99'; this factory has s1..s8"),
        ("", ["task", "add", "x", "--priority", "asap"], "unknown priority 'asap'"),
        ("", ["task", "show", "42"], "no task 42"),
        ("", ["task", "cancel", "42"], "no task 42"),
        ("", ["log", "tail", "--session", "s0"], "unknown session 's0'"),
        ("", ["log", "tail", "--since", "yesterday-ish"], "--since 'yesterday-ish': use 30m"),
        ("", ["task", "list", "--status", "finished"], "unknown status 'finished'"),
        ("", ["log", "tail", "--since", "99999999999d"], "reaches back before the year 1"),
    ],
)
def test_bad_input_is_one_line_a_nonzero_exit_and_changes_nothing(
    home: Path, config: str, args: list[str], message: str
) -> None:
    if config:
        (home / "factory.toml").write_text(config)
    run_cli("task", "add", "existing", home=home) if not config else None
    before = snapshot(home)
    proc = run_cli(*args, home=home)
    assert proc.returncode != 0
    assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert snapshot(home) == before


def test_a_corrupt_task_store_is_reported_not_overwritten(home: Path) -> None:
    (home / "state").mkdir()
    (home / "state" / "tasks.json").write_text("{oops")
    proc = run_cli("task", "add", "x", home=home)
    assert proc.returncode == 1 and "tasks.json is not valid JSON" in proc.stderr
    assert (home / "state" / "tasks.json").read_text() == "{oops"


def test_a_failed_cycle_exits_nonzero_and_says_why(home: Path) -> None:
    proc = run_cli("cycle", "s1", home=home)
    assert proc.returncode == 1
    assert f"failed: no git clone at {home / 'repo'} (repo.path)" in proc.stdout


def test_usage_errors_are_explained_without_a_traceback(home: Path) -> None:
    for args, message in [
        (["nosuch"], "No such command 'nosuch'"),
        (["task", "add"], "Missing argument"),
        (["task", "show", "x"], "Invalid value"),
    ]:
        proc = run_cli(*args, home=home)
        assert proc.returncode == 2, args
        assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_store_of_the_wrong_shape_is_reported_not_overwritten(home: Path) -> None:
    (home / "state").mkdir()
    (home / "state" / "tasks.json").write_text("[]")
    proc = run_cli("task", "list", home=home)
    assert proc.returncode == 1 and "tasks.json holds a JSON list where a dict belongs" in proc.stderr
    assert (home / "state" / "tasks.json").read_text() == "[]"


def test_task_retry_only_revives_parked_or_failed_tasks(home: Path) -> None:
    run_cli("task", "add", "x", home=home)
    proc = run_cli("task", "retry", "1", home=home)
    assert proc.returncode == 2 and "only parked or failed tasks can be retried" in proc.stderr


def test_status_log_tail_and_report_read_as_words_after_real_work(tmp_path: Path) -> None:
    """A real cycle that pushes, one that changes nothing, a review that lands: no reprs, no key= dumps."""
    import re

    from tests.factories import make_factory
    from tests.unit.test_sentences import DUMP

    factory = make_factory(tmp_path, sessions=3)
    approve = json.dumps({"verdict": "approve", "reasons": ["focused and tested"], "risk": "low", "issues": []})
    factory.script([
        {"match": "You are s1,", "result": "add a test",
         "actions": [{"write": "tests/test_one.py", "content": "def test_one() -> None:\n    assert True\n"}]},
        {"match": "You are s2,", "result": "nothing to do"},
        {"match": "by session", "result": approve},
    ])  # fmt: skip
    run_cli("task", "add", "Add one test", "--session", "s1", home=factory.home)
    run_cli("cycle", "s1", home=factory.home)
    run_cli("cycle", "s2", home=factory.home)
    run_cli("review", home=factory.home)
    status = run_cli("status", home=factory.home).stdout
    tail = run_cli("log", "tail", "-n", "50", home=factory.home).stdout
    report = run_cli("report", home=factory.home).stdout
    queue = run_cli("queue", "list", "--all", home=factory.home).stdout
    branch = queue.split()[1]
    entry = run_cli("queue", "show", branch, home=factory.home).stdout
    sessions = run_cli("sessions", "list", home=factory.home).stdout
    for name, text in (("status", status), ("log tail", tail), ("report", report), ("queue list", queue),
                       ("queue show", entry), ("sessions list", sessions)):  # fmt: skip
        lines = [re.sub(r"^\s*- ", "", line) for line in text.replace(str(tmp_path), "TMP").splitlines()]  # bullets
        found = DUMP.search("\n".join(lines))
        assert not found, f"{name} prints {found!r}:\n{text}"
    assert re.search(r"s1 pushed brl/s1/\S+: checks held; queued for review \(pytest \d+ passed; task #1", tail)
    assert "s2 discarded its change: no change" in tail
    assert re.search(r"brl/s1/\S+ landed as [0-9a-f]{10}: focused and tested", tail)
    assert "task #1 is done: landed brl/s1/" in tail
    assert "s3: unknown: no heartbeat yet" in status and "s1: idle between cycles; no task; last cycle" in status
