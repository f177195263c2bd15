"""A factory on PostgreSQL: `[state] url`, `factoryctl state migrate`, and what happens when the server goes.

`main([...])` runs in-process as a person's command does (the error handling included); the
server is the session's real PostgreSQL (tests/support/postgres.py).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from factoryctl.cli.app import main
from factoryctl.core.configfile import load_settings
from factoryctl.core.errors import ConfigError, StateUnreachable
from factoryctl.core.records import QueueStatus, ReviewEntry
from factoryctl.jobs.bot.notifier import read_new
from factoryctl.jobs.context import Context
from factoryctl.jobs.cycle import Cycle
from factoryctl.jobs.lessons import advice_for
from factoryctl.jobs.loop import Loop
from factoryctl.jobs.review.gate import MergeGate
from factoryctl.state.locks import job_lock
from tests.factories import make_factory
from tests.helpers import meanwhile
from tests.integration.test_review import review_call, session_call
from tests.support.postgres import PgServer


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def on_database(home: Path, url: str) -> None:
    (home / "factory.toml").write_text(f'[factory]\nsessions = 2\n\n[state]\nurl = "{url}"\n')


def filled(home: Path) -> Context:
    """A file-backed factory with a little of everything: events, tasks, a queue entry, a bot cursor."""
    (home / "factory.toml").write_text("[factory]\nsessions = 2\n")
    ctx = Context.load(home)
    for i in range(5):
        ctx.log.append("ralph_cycle", session="s1", data={"i": i})
    ctx.tasks().add("Fix the login test", priority="high")
    ctx.tasks().add("Speed up the build")
    ctx.review_queue().add_pending(ReviewEntry(branch="brl/s1/a", session="s1", queued="2026-12-05T12:00:00.000Z"))
    ctx.heartbeats().beat("s1", "idle")
    ctx.state.document("advice.json", dict).write({"sessions": {"s1": ["s2 changes notes.md too"]}})
    cursor = ctx.log.end_cursor()  # the bot has told everything up to here
    ctx.state.document("bot-notifier.json", dict).write({"offset": cursor, "sent": {}})
    ctx.log.append("alert", data={"key": "ram", "message": "RAM 91%"})  # not told yet
    with open(ctx.paths.log_file, "ab") as fh:
        fh.write(b"not an event\n")
    return ctx


def test_migrate_copies_everything_verifies_and_the_factory_then_runs_on_the_database(
    home: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = filled(home)
    doc = json.loads(ctx.paths.tasks_file.read_text())
    doc["tasks"].append({"id": "seven", "title": "a hand edit"})
    ctx.paths.tasks_file.write_text(json.dumps(doc))
    code, out, err = run(capsys, "state", "migrate", "--to", pg_url)
    assert code == 0, err
    assert "1 records of tasks.json did not validate and stayed behind in the file" in out
    assert "copied 8 events, 4 documents (2 tasks, 1 review queue entries)" in out and "counts verified" in out
    assert "1 lines of the log were not events" in out and f'url = "{pg_url}"' in out
    on_database(home, pg_url)
    code, out, _ = run(capsys, "task", "list", "--json")
    assert [t["title"] for t in json.loads(out)] == ["Fix the login test", "Speed up the build"]
    code, out, _ = run(capsys, "state", "show")
    assert out.startswith("postgresql: postgresql://")
    code, out, err = run(capsys, "status", "--json")
    assert code == 0 and "RAM 91%" in out, err
    code, out, _ = run(capsys, "log", "tail", "-n", "1", "--json")
    assert json.loads(out.splitlines()[-1])["type"] == "alert"
    assert run(capsys, "log", "path")[1].strip().endswith("factory_events")
    moved = Context.load(home)
    assert moved.state.kind == "postgresql" and [e.type for e in moved.log.iter_forward()] == [
        *["ralph_cycle"] * 5,
        "task",
        "task",
        "alert",
    ]
    assert moved.heartbeats().of("s1")["state"] == "idle"
    assert advice_for(moved, "s1") == ["s2 changes notes.md too"]  # the standup's advice reaches every host
    assert [e.branch for e in moved.review_queue().entries()] == ["brl/s1/a"]
    offset = moved.state.document("bot-notifier.json", dict).read()["offset"]
    events, _ = read_new(moved.log, offset)
    assert [e.type for e in events] == ["alert"]  # the bot tells what it had not told, and nothing twice
    moved.tasks().add("Added on the database")
    assert "Added on the database" not in ctx.paths.tasks_file.read_text()  # the files are left as they were


def test_migrate_refuses_while_a_job_runs_and_copies_nothing(
    home: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = filled(home)
    with job_lock(ctx.paths.locks_dir, "review"):
        code, out, err = run(capsys, "state", "migrate", "--to", pg_url)
    assert code == 1 and out == ""
    assert err.startswith("Error: cannot migrate while a job runs: review is already running") and err.count("\n") == 1
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM factory_events").fetchone() == (0,)


def test_migrate_says_in_one_line_what_is_wrong(home: Path, pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    filled(home)
    code, _, err = run(capsys, "state", "migrate", "--to", pg_url.replace("postgres@", "postgres:hunter2@"))
    assert code == 2 and "must not carry a password" in err and "hunter2" not in err and err.count("\n") == 1
    assert run(capsys, "state", "migrate", "--to", pg_url)[0] == 0
    code, _, err = run(capsys, "state", "migrate", "--to", pg_url)
    assert code == 1 and "already holds 8 events" in err and "migrate into an empty database" in err
    code, _, err = run(capsys, "state", "migrate", "--to", "postgresql://nobody@/nowhere?host=/nonexistent")
    assert code == 1 and err.startswith("Error: the state database") and "unreachable" in err


def test_a_damaged_file_stops_the_migration_before_anything_is_written(
    home: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = filled(home)
    ctx.paths.sessions_file.write_text("{broken")
    code, _, err = run(capsys, "state", "migrate", "--to", pg_url)
    assert code == 1 and "sessions.json is not valid JSON" in err
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM factory_documents").fetchone() == (0,)


def test_a_password_in_the_state_url_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "factory.toml"
    config.write_text('[state]\nurl = "postgresql://factory:s3cret@10.0.0.1/factory"\n')
    with pytest.raises(ConfigError, match=r"state\.url.*FACTORY_DB_PASSWORD") as info:
        load_settings(config)
    assert "s3cret" not in str(info.value)
    config.write_text('[state]\nurl = "mysql://x@y/z"\n')
    with pytest.raises(ConfigError, match="postgresql://"):
        load_settings(config)


def test_the_password_comes_from_the_environment_and_never_reaches_the_log(
    home: Path, pg_server: PgServer, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    password = "s3cret-for-the-state-db"
    pg_server.password_role("factory", password)
    url = pg_url.replace("postgres@", "factory@")
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the factory's role owns its tables
        conn.execute("GRANT ALL ON SCHEMA public TO factory")
    on_database(home, url)
    monkeypatch.delenv("FACTORY_DB_PASSWORD", raising=False)
    code, _, err = run(capsys, "task", "add", "Fix the login test")
    assert code == 1 and err.startswith("Error: the state database") and err.count("\n") == 1
    secrets = home / "secrets.env"  # as the deploy writes it: the jobs read it at start
    secrets.write_text(f"FACTORY_DB_PASSWORD={password}\n")
    secrets.chmod(0o600)
    code, out, err = run(capsys, "task", "add", "Fix the login test")
    assert code == 0 and "queued task #1" in out, err
    assert password not in (home / "factory.toml").read_text()
    ctx = Context.load(home)
    ctx.log.append("bot_message", data={"text": f"is it {password}?"})
    assert ctx.log.tail(1)[0].data["text"] == "is it ***?"
    code, out, _ = run(capsys, "state", "show")
    assert password not in out and "factory@" in out


def test_a_claim_skips_a_task_another_claim_holds_instead_of_waiting(home: Path, pg_url: str) -> None:
    on_database(home, pg_url)
    tasks = Context.load(home).tasks()
    best = tasks.add("urgent one", priority="urgent")
    nxt = tasks.add("normal one")
    with psycopg.connect(pg_url) as other, other.transaction():  # a claim on another host, mid-transaction
        other.execute("SELECT id FROM factory_tasks WHERE id = %s FOR UPDATE", (best.id,))
        got: list[Any] = []
        claim = threading.Thread(target=lambda: got.append(tasks.claim("s2")))
        claim.start()
        claim.join(timeout=5)
        assert not claim.is_alive(), "the claim waited for the other one's row"
        assert got[0] is not None and got[0].id == nxt.id
    again = tasks.claim("s1")
    assert again is not None and again.id == best.id  # free again once that transaction ended


# -- faults ------------------------------------------------------------------------------------

APPROVE = json.dumps({"verdict": "approve", "reasons": ["focused and tested"], "risk": "low", "issues": []})
D_TEST = "def test_trivial() -> None:\n    assert 1 + 1 == 2\n"


def test_postgresql_restarted_during_a_review_leaves_main_untouched_and_the_review_is_retried(
    tmp_path: Path, pg_server: PgServer, pg_url: str
) -> None:
    factory = make_factory(tmp_path, sessions=1, extra=f'[state]\nurl = "{pg_url}"\n')
    factory.script([
        session_call("s1", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test"),
        review_call("s1", APPROVE, meanwhile(factory.scenario.parent, pg_server.restart)),
        review_call("s1", APPROVE),
    ])  # fmt: skip
    report = Cycle(factory.ctx(), "s1").run()
    assert report.verdict == "pushed" and report.branch is not None
    before = factory.main_sha()
    with pytest.raises(StateUnreachable, match=r"the state database .* is unreachable"):
        MergeGate(factory.ctx()).run()
    assert factory.main_sha() == before and report.branch in factory.origin_branches()
    ctx = factory.ctx()
    assert ctx.review_queue().find(report.branch).status is QueueStatus.PENDING
    (outcome,) = MergeGate(ctx).run()  # the next run (cron's, a person's) reviews it again and lands it
    assert outcome.verdict == "approve" and factory.main_sha() != before
    assert ctx.review_queue().find(report.branch).landed == factory.main_sha()


def test_a_gate_that_lost_its_review_lock_does_not_land(tmp_path: Path, pg_url: str) -> None:
    factory = make_factory(tmp_path, sessions=1, extra=f'[state]\nurl = "{pg_url}"\n')

    def cut_the_lock() -> None:  # its connection dies (a network cut): another gate could take the lock now
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                ("factoryctl review lock",),
            )

    factory.script([
        session_call("s1", [{"write": "tests/test_d.py", "content": D_TEST}], "Add a test"),
        review_call("s1", APPROVE, meanwhile(factory.scenario.parent, cut_the_lock)),
    ])  # fmt: skip
    report = Cycle(factory.ctx(), "s1").run()
    assert report.branch is not None
    before = factory.main_sha()
    with pytest.raises(StateUnreachable, match="the review lock was lost"):
        MergeGate(factory.ctx()).run()
    assert factory.main_sha() == before
    assert factory.ctx().review_queue().find(report.branch).status is QueueStatus.PENDING


def test_a_loop_that_cannot_reach_the_database_waits_and_says_so_and_runs_no_cycle(
    home: Path, pg_server: PgServer, pg_url: str
) -> None:
    (home / "factory.toml").write_text(f'[factory]\nsessions = 1\n[cycle]\ninterval_s = 1\n[state]\nurl = "{pg_url}"\n')
    ctx = Context.load(home)
    ctx.log.append("before")
    lines: list[str] = []
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:  # the database comes back after a while
            pg_server.start_again()

    pg_server.stop()
    try:
        Loop(ctx, "s1", out=lines.append, sleep=sleep, max_cycles=1).run()
    finally:
        pg_server.start_again() if len(waits) < 3 else None
    where = ctx.state.describe()
    waiting = [i for i, line in enumerate(lines) if f"waiting for the shared state at {where}: " in line]
    started = [i for i, line in enumerate(lines) if "cycle 1 starting" in line]
    assert len(waiting) == 1 and "no cycle runs until it can be recorded" in lines[waiting[0]], lines
    assert any(f"the shared state at {where} is back" in line for line in lines[waiting[0] :])
    assert waits[:3] == [1.0, 2.0, 4.0]  # a bounded backoff, not a busy loop
    assert started and started[0] > waiting[0] and len(waits) >= 3  # the cycle ran only once it could be recorded
    assert Context.load(home).heartbeats().of("s1")["state"] == "stopped"
