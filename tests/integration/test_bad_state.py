"""Every malformed state file, config and log line fed to the jobs a person and PM2 run.

Each case damages one file of a real factory (git, the scripted agent, the real CLI),
then runs `status`, `task list`, `log tail`, `cycle`, `review` and `scheduler --once`.
Each prints one line (or skips the bad record and says so), exits with a documented code
(0 done, 1 an expected failure, 2 bad usage or configuration), never shows a traceback,
and loses no state: the damaged file is still there, byte for byte, for a person to repair.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from factoryctl.adapters.tmux import Tmux
from tests.factories import make_factory
from tests.helpers import run_cli

COMMANDS = (
    ("status",),
    ("task", "list"),
    ("log", "tail", "-n", "1000"),
    ("cycle", "s1"),
    ("review",),
    ("scheduler", "--once"),
)


@dataclass(frozen=True)
class Case:
    name: str
    file: str  # relative to FACTORY_HOME
    text: str
    kept: bool = True  # the damaged file must be left as it is (else only its bad part must survive)
    bad: str = ""  # a substring of the bad part that must survive when the file is rewritten


GOOD_TASK = {"id": 1, "title": "ok task", "status": "queued", "priority": "normal", "history": []}
DEEP = "[" * 100_000 + "]" * 100_000

CASES = [
    Case("tasks-not-a-list", "state/tasks.json", json.dumps({"next_id": 1, "tasks": "x"})),
    Case("tasks-next-id-string", "state/tasks.json", json.dumps({"next_id": "x", "tasks": []})),
    Case("task-id-string", "state/tasks.json",
         json.dumps({"next_id": 3, "tasks": [GOOD_TASK, {"id": "abc", "title": "bad"}]}), kept=False, bad='"id":"abc"'),
    Case("task-title-list", "state/tasks.json",
         json.dumps({"next_id": 3, "tasks": [GOOD_TASK, {"id": 2, "title": ["x"]}]}), kept=False, bad='"title":["x"]'),
    Case("task-title-ansi", "state/tasks.json",
         json.dumps({"next_id": 2, "tasks": [{**GOOD_TASK, "title": "\x1b[2J\x1b[31mred\x07"}]}), kept=False),
    Case("tasks-top-level-list", "state/tasks.json", "[]"),
    Case("tasks-bomb", "state/tasks.json", DEEP),
    Case("tasks-nan", "state/tasks.json", '{"next_id": NaN, "tasks": []}'),
    Case("queue-branches-object", "state/review-queue.json", json.dumps({"branches": {}})),
    Case("queue-entry-without-branch", "state/review-queue.json",
         json.dumps({"branches": [{"status": "pending", "session": "s1"}]}), kept=False, bad='"session":"s1"'),
    Case("queue-entry-task-string", "state/review-queue.json",
         json.dumps({"branches": [{"branch": "brl/s1/x", "status": "pending", "task": "abc"}]}),
         kept=False, bad='"task":"abc"'),
    Case("queue-bomb", "state/review-queue.json", DEEP),
    Case("sessions-inner-types", "state/sessions.json", json.dumps({"s1": "x", "s2": [1], "s9": {"pid": "x"}}),
         kept=False),
    Case("sessions-top-level-list", "state/sessions.json", "[1, 2]"),
    Case("holds-inner-types", "state/holds.json", json.dumps({"closed": "x", "sessions": [1], "agent": 5}),
         kept=False),
    Case("holds-bomb", "state/holds.json", DEEP, kept=False),
    Case("log-bomb-line", "state/experiment-log.jsonl",
         '{"ts": "2026-01-01T00:00:00.000Z", "type": "x", "data": {}}\n' + DEEP + "\n", kept=False, bad=DEEP[:1000]),
    Case("log-deep-line", "state/experiment-log.jsonl",
         '{"ts": "2026-01-01T00:00:00.000Z", "type": "ralph_cycle", "data": ' + "[" * 500 + "]" * 500 + "}\n",
         kept=False, bad="[" * 500),
    Case("log-nan-cost", "state/experiment-log.jsonl",
         '{"ts": "2099-01-01T00:00:00.000Z", "type": "agent_call", "data": {"cost_usd": NaN}}\n', kept=False,
         bad="NaN"),
    Case("log-ansi-text", "state/experiment-log.jsonl",
         json.dumps({"ts": "2099-01-01T00:00:00.000Z", "type": "ralph_cycle", "session": "s1",
                     "data": {"reason": "\x1b[2J\x1b]0;owned\x07 cleared"}}) + "\n", kept=False, bad="cleared"),
    Case("scheduler-state-list", "state/scheduler.json", "[]"),
    Case("baseline-garbage", "state/main-health.json", '{"problems": "x"}', kept=False),
    Case("toml-5000-deep", "factory.toml", "[cycle]\ninterval_s = " + "[" * 5000 + "]" * 5000 + "\n"),
    Case("toml-huge-interval", "factory.toml", "[cycle]\ninterval_s = 100000000000000000\n"),
    Case("toml-check-cwd-outside", "factory.toml",
         '[[checks]]\nname = "x"\ncommand = ["true"]\nparser = "exitcode"\ncwd = "../../.."\n'),
    Case("toml-context-file-outside", "factory.toml", '[repo]\ncontext_files = ["/etc/passwd"]\n'),
    Case("toml-not-utf8", "factory.toml", ""),
]  # fmt: skip


def damage(home: Path, case: Case) -> bytes:
    """Write the case's bad content (factory.toml: the sections it damages replace the factory's own)."""
    path = home / case.file
    path.parent.mkdir(parents=True, exist_ok=True)
    if case.name == "toml-not-utf8":
        data = b"[factory]\nsessions = \xff\n"
    elif case.file == "factory.toml":
        base = path.read_text().replace("[cycle]\ninterval_s = 60\n", "").replace("[repo]\n", "")
        data = (base + "\n" + case.text).encode()
    else:
        data = case.text.encode()
    if case.file.endswith(".jsonl") and path.exists():
        data = path.read_bytes() + data
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_or_a_skipped_record_and_no_state_is_lost(tmp_path: Path, case: Case, tmux: Tmux) -> None:
    factory = make_factory(tmp_path, sessions=1)
    home = factory.home
    (home / "state").mkdir(exist_ok=True)
    written = damage(home, case)
    for argv in COMMANDS:
        done = run_cli(*argv, home=home, timeout=180)
        said = done.stdout + done.stderr
        where = f"{case.name}: factoryctl {' '.join(argv)} (exit {done.returncode})\n{said[-2000:]}"
        assert "Traceback" not in said, where
        assert done.returncode in (0, 1, 2), where
        assert "\x1b" not in done.stdout and "\x07" not in done.stdout, where
        if done.returncode != 0 and done.stderr.strip():
            lines = done.stderr.strip().splitlines()
            assert lines[-1].startswith("Error: ") and len(lines) <= 2, where
        now = (home / case.file).read_bytes() if (home / case.file).exists() else b""
        if case.kept:
            assert now == written, f"{where}\nthe damaged file was changed"
        elif case.bad:
            assert case.bad in compact(now, case.file), f"{where}\nthe bad record was dropped"


def compact(data: bytes, name: str) -> str:
    """A JSON state file as compact text (it may be rewritten pretty-printed); a log as it is."""
    text = data.decode("utf-8", "replace")
    return text if name.endswith(".jsonl") else json.dumps(json.loads(text), separators=(",", ":"))
