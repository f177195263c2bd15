"""The Telegram bot end to end: the real `factoryctl bot` process, long polling a local HTTP
server that speaks the Bot API, on a real factory (git with a bare origin, the scripted agent)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from factoryctl.core.records import Alert
from factoryctl.jobs.bot import replies
from factoryctl.jobs.cycle import Cycle
from factoryctl.state.alerts import Alerts
from tests.factories import Factory, make_factory
from tests.helpers import events, run_cli, wait_for
from tests.integration.bot_support import CHAT, STRANGER, TOKEN, bot_config, running_bot
from tests.support.telegram_standin import StandIn

APPROVE = json.dumps({"verdict": "approve", "reasons": ["focused and tested"], "risk": "low", "issues": []})


@pytest.fixture
def standin() -> Iterator[StandIn]:
    server = StandIn(TOKEN).start()
    yield server
    server.stop()


def factory_with_bot(tmp_path: Path, standin: StandIn, sessions: int = 1, extra: str = "") -> Factory:
    return make_factory(tmp_path, sessions=sessions, extra=extra + bot_config(standin))


def push_branch(factory: Factory, session: str, name: str) -> str:
    """One cycle of `session` that adds a passing test file; returns its pushed branch."""
    report = Cycle(factory.ctx(), session).run()
    assert report.verdict == "pushed", report.reason
    assert report.branch is not None
    return report.branch


def agent_writes(session: str, name: str) -> dict[str, Any]:
    content = f"def test_{name}() -> None:\n    assert True\n"
    return {"match": f"You are {session},", "actions": [{"write": f"tests/test_{name}.py", "content": content}],
            "result": f"add test {name}"}  # fmt: skip


def reviewer_says(answer: str, sleep: float = 0.0) -> dict[str, Any]:
    return {"match": "by session", "result": answer, "actions": [{"sleep": sleep}] if sleep else []}


# -- commands --------------------------------------------------------------------------------


def test_status_and_task_from_an_allowed_chat(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin)
    with running_bot(factory.home):
        standin.say(CHAT, "/status")
        (status,) = standin.wait_messages(CHAT, 1)
        assert status.text.startswith("Factory status ")
        lines = ("today: no cycles yet", "sessions: 1", "s1: unknown: no heartbeat yet", "review queue: empty",
                 "spend: $0.00 of $20.00 (ok)", "holds: none")  # fmt: skip
        for line in lines:
            assert line in status.text
        standin.say(CHAT, "/task Fix X")
        (queued,) = standin.wait_messages(CHAT, 1, after=1)
        assert queued.text == "queued task #1: Fix X"
        standin.say(CHAT, "/tasks")
        assert "#1 queued normal: Fix X" in standin.wait_messages(CHAT, 1, after=2)[0].text
    listed = run_cli("task", "list", home=factory.home)
    assert "Fix X" in listed.stdout
    logged = events(factory.home, "bot_message")
    # Each is recorded once its reply is sent, and updates are answered concurrently: a command sent
    # on the reply to the one before may be recorded first (CI saw that), so the order is not checked.
    assert sorted(e.data["command"] for e in logged) == ["status", "task", "tasks"]
    assert all(e.data["outcome"] == "ok" and e.data["chat"] == CHAT and e.data["latency_ms"] > 0 for e in logged)


def test_status_names_every_session_with_its_state_task_and_last_cycle(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin, sessions=3)
    factory.script([agent_writes("s1", "one")])
    push_branch(factory, "s1", "one")  # s1: a real cycle, so a last cycle and a heartbeat
    report = json.loads(run_cli("status", "--json", home=factory.home).stdout)
    shown = {s["name"]: s["text"] for s in report["sessions"]}
    with running_bot(factory.home):
        standin.say(CHAT, "/status")
        (status,) = standin.wait_messages(CHAT, 1)
    terminal = run_cli("status", home=factory.home).stdout
    for name in ("s1", "s2", "s3"):
        assert shown[name] in status.text and shown[name] in terminal  # the same words on the phone and the terminal
    assert "s1: idle between cycles; no task; last cycle " in shown["s1"] and "pushed brl/s1/" in shown["s1"]
    assert shown["s3"] == "s3: unknown: no heartbeat yet (its loop has not started or not reported); no task; " \
        "no cycle yet"  # fmt: skip


def test_a_chat_not_on_the_list_gets_nothing_and_changes_nothing(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin)
    with running_bot(factory.home):
        for text in ("/task Steal the repo", "/pause", "/status", "/review", "hello"):
            standin.say(STRANGER, text)
        standin.say(CHAT, "/status")  # the bot is answering: the stranger's updates were all read before it
        standin.wait_messages(CHAT, 1)
    assert standin.messages(STRANGER) == []
    assert not (factory.home / "state" / "paused").exists()
    assert run_cli("task", "list", "--all", home=factory.home).stdout.strip() == "no tasks"
    refused = events(factory.home, "bot_refused")
    assert len(refused) == 5 and all(e.data == {"chat": STRANGER} for e in refused)
    log_text = (factory.home / "state" / "experiment-log.jsonl").read_text()
    assert "Steal" not in log_text and "hello" not in log_text


def test_an_empty_allow_list_answers_no_one(tmp_path: Path, standin: StandIn) -> None:
    factory = make_factory(tmp_path, sessions=1, extra=bot_config(standin, chats=()))
    with running_bot(factory.home):
        standin.say(CHAT, "/task Should not be queued")
        wait_for(lambda: events(factory.home, "bot_refused"), what="bot_refused")
    assert standin.messages(CHAT) == []
    assert events(factory.home, "task") == []


def test_markup_in_a_task_title_arrives_intact(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin)
    title = "Fix <b>bold</b> & </code> *star* _under_ `tick` [a](http://x) &amp;"
    with running_bot(factory.home):
        standin.say(CHAT, f"/task {title}\x1b[31m")
        (queued,) = standin.wait_messages(CHAT, 1)
        standin.say(CHAT, "/tasks")
        (listed,) = standin.wait_messages(CHAT, 1, after=1)
    assert queued.text == f"queued task #1: {title}[31m"  # the escape character is stripped, the rest is data
    assert title in listed.text
    assert "&lt;b&gt;" in queued.html  # sent escaped, in HTML mode, and accepted by the stand-in


def test_a_ten_thousand_character_log_reply_is_split_and_intact(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin)
    ctx = factory.ctx()
    for i in range(100):  # rejections with long reasons (markup characters in them): no notice, a long /log
        ctx.log.append("cto_review", data={"branch": f"brl/s1/{i:03d}", "verdict": "reject",
                                           "reasons": [f"event {i:03d} " + "<&>" * 40, "<&>" * 40]})  # fmt: skip
    with running_bot(factory.home):
        standin.say(CHAT, "/log 100")
        wait_for(lambda: events(factory.home, "bot_message"), what="the /log reply")
    parts = standin.messages(CHAT)
    logged = ctx.log.tail(100_000)
    cut = next(i for i, e in enumerate(logged) if e.type == "bot_message")
    expected = replies.log(logged[:cut][-100:]).plain()
    assert len(expected) > 10_000 and len(parts) >= 3
    assert all(len(p.html) <= 4096 for p in parts)
    assert "\n".join(p.text for p in parts) == expected


def test_pause_then_resume_one_session(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin, sessions=2)
    flag = factory.home / "state" / "paused.s1"
    with running_bot(factory.home):
        standin.say(CHAT, "/pause s1")
        (paused,) = standin.wait_messages(CHAT, 1)
        assert paused.text.startswith("paused s1") and flag.exists()
        assert not (factory.home / "state" / "paused.s2").exists()
        standin.say(CHAT, "/resume s1")
        assert standin.wait_messages(CHAT, 1, after=1)[0].text == "resumed s1"
        assert not flag.exists()
        standin.say(CHAT, "/pause s9; rm -rf /")
        assert standin.wait_messages(CHAT, 1, after=2)[0].text.startswith("Error: unknown session")


def test_review_runs_once_and_a_second_review_says_already_running(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin)
    factory.script([agent_writes("s1", "one"), reviewer_says(APPROVE, sleep=4)])
    branch = push_branch(factory, "s1", "one")
    before = factory.main_sha()
    with running_bot(factory.home):
        standin.say(CHAT, "/review")
        assert standin.wait_messages(CHAT, 1)[0].text.startswith("review started")
        standin.say(CHAT, "/review")
        assert "already running" in standin.wait_messages(CHAT, 1, after=1)[0].text
        end = standin.wait_messages(CHAT, 2, after=2, timeout=120)  # the /review reply and the notifier's note
    (done,) = [m for m in end if m.text.startswith("Review finished")]
    assert done.text.startswith("Review finished\nlanded 1 of 1") and f"{branch}: approve" in done.text
    (note,) = [m for m in end if m.text.startswith("Landed on main")]
    assert note.text.startswith(f"Landed on main\n{branch} -> ")
    assert factory.main_sha() != before
    assert len([e for e in events(factory.home, "cto_review") if e.data["verdict"] == "approve"]) == 1
    outcomes = [e.data["outcome"] for e in events(factory.home, "bot_message")]
    assert sorted(outcomes) == ["busy", "started"]  # recorded after each reply: in either order


def test_human_mode_buttons_land_one_branch_and_archive_the_other(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin, sessions=2, extra='[review]\nmode = "human"\n')
    factory.script([agent_writes("s1", "one"), agent_writes("s2", "two"), reviewer_says(APPROVE),
                    reviewer_says(APPROVE), reviewer_says(APPROVE)])  # fmt: skip
    first, second = push_branch(factory, "s1", "one"), push_branch(factory, "s2", "two")
    before = factory.main_sha()
    with running_bot(factory.home):
        wait_for(lambda: (factory.home / "state" / "bot-notifier.json").exists(), what="the notifier's cursor")
        assert run_cli("review", home=factory.home).returncode == 0  # both now wait for a person
        notes = standin.wait_messages(CHAT, 2)
        by_branch = {next(b for b in (first, second) if b in n.text): n for n in notes}
        assert all(n.text.startswith("Review waits for you") for n in notes)
        assert [b["text"] for b in by_branch[first].buttons] == ["Approve", "Reject"]
        standin.press(by_branch[first], f"approve:{first}")
        end = standin.wait_messages(CHAT, 2, after=2, timeout=120)  # the approve's outcome and the landed note
        (landed,) = [m for m in end if m.text.startswith(f"approved {first}")]
        assert f"{first}: approve" in landed.text
        assert any(m.text.startswith(f"Landed on main\n{first} -> ") for m in end)
        assert by_branch[first].text.startswith(f"Review\n{first}: approving") and not by_branch[first].buttons
        standin.press(by_branch[second], f"reject:{second}")
        wait_for(lambda: by_branch[second].edits > 0, what="the announcement to be edited")
        assert by_branch[second].text.startswith(f"Review\n{second}: rejected") and not by_branch[second].buttons
        standin.wait_for(lambda: len(standin.answered) == 2, what="both button presses answered")
    assert factory.main_sha() != before
    assert factory.origin_branches() == ["main"]
    status = {b["branch"]: b["status"] for b in json.loads(run_cli("queue", "list", "--all", "--json",
                                                                      home=factory.home).stdout)}  # fmt: skip
    assert status == {first: "approved", second: "rejected"}


def test_a_forged_button_cannot_act_on_anything(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin)
    with running_bot(factory.home):
        standin.say(CHAT, "/help")
        (msg,) = standin.wait_messages(CHAT, 1)
        standin.press(msg, "approve:../../etc; rm -rf /")
        standin.press(msg, "shell:ls")
        standin.press(msg, "reject:brl/s1/nope")
        texts = sorted(m.text for m in standin.wait_messages(CHAT, 3, after=1))  # answered concurrently
    assert texts[0].startswith("Error: invalid branch name")
    assert "no branch 'brl/s1/nope'" in texts[1]
    assert texts[2] == "that button is not mine"
    assert msg.edits == 0 and events(factory.home, "cto_review") == []


def test_bad_input_gets_one_line_and_changes_nothing(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin)
    asks = {
        "/log -5": "usage: /log [n], n from 1 to 200",
        "/log 99999": "usage: /log [n], n from 1 to 200",
        "/task": "usage: /task <what to build or fix>",
        "/task " + "x" * 300: "Error: the title is 300 characters; keep it under 200",
        "/approve 7": "Error: no branch number 7; /queue lists 0",
        "/approve ../../x;ls": "Error: invalid branch name",
        "/restore": "Error: name a branch or its number in /queue",
        "/frobnicate now": "I do not know /frobnicate",
    }
    with running_bot(factory.home):
        for text in asks:
            standin.say(CHAT, text)
        got = standin.wait_messages(CHAT, len(asks), timeout=60)
    texts = [m.text for m in got]
    for expected in asks.values():
        assert any(t.startswith(expected) for t in texts), (expected, texts)
    assert all("\n" not in t and "Traceback" not in t for t in texts)
    assert events(factory.home, "task") == [] and not (factory.home / "state" / "review-queue.json").exists()


# -- the notifier --------------------------------------------------------------------------------


def restart_answers_help_and_nothing_else(factory: Factory, standin: StandIn) -> list[str]:
    """A new bot, asked /help: the first lines of everything the chat got, once /help is answered."""
    with running_bot(factory.home):
        standin.say(CHAT, "/help")
        standin.wait_for(lambda: any(m.text.startswith("What I can do") for m in standin.sent), what="the /help reply")
    return [m.text.split("\n")[0] for m in standin.messages(CHAT)]


def test_an_alert_raised_while_the_bot_is_stopped_is_delivered_once(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin)
    ctx = factory.ctx()
    cursor = factory.home / "state" / "bot-notifier.json"
    with running_bot(factory.home):
        wait_for(cursor.exists, what="the notifier's cursor")
    alerts = Alerts(ctx.log, ctx.paths.locks_dir)
    assert alerts.send(Alert("budget:closed", "daily budget reached: $20.00 <of> $20.00"))
    assert not alerts.send(Alert("budget:closed", "again"))  # the existing de-duplication
    ctx.log.append("alert", data={"key": "budget:closed", "text": "appended directly, same key"})
    with running_bot(factory.home):
        (note,) = standin.wait_messages(CHAT, 1)
        assert note.text == "WARNING: budget:closed\ndaily budget reached: $20.00 <of> $20.00"
    # a restart does not deliver it again
    assert restart_answers_help_and_nothing_else(factory, standin) == ["WARNING: budget:closed", "What I can do"]


def test_a_bot_stopped_while_its_notice_is_on_the_wire_does_not_send_it_again(tmp_path: Path, standin: StandIn) -> None:
    """SIGTERM after Telegram has the notice but before its answer came back: the pass is finished
    and its cursor saved, so the next bot does not repeat it (CI once hit this race by chance)."""
    factory = factory_with_bot(tmp_path, standin)
    ctx = factory.ctx()
    standin.send_delay_s = 1.5
    with running_bot(factory.home):
        standin.wait_for(lambda: "getUpdates" in standin.calls, what="the bot polling")
        assert Alerts(ctx.log, ctx.paths.locks_dir).send(Alert("budget:closed", "daily budget reached"))
        standin.wait_messages(CHAT, 1)  # on the wire: Telegram has it, the bot has no answer yet
    standin.send_delay_s = 0.0
    assert restart_answers_help_and_nothing_else(factory, standin) == ["WARNING: budget:closed", "What I can do"]


def test_a_failed_delivery_is_retried_then_recorded(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin)
    ctx = factory.ctx()
    with running_bot(factory.home):
        wait_for((factory.home / "state" / "bot-notifier.json").exists, what="the notifier's cursor")
        standin.fail_sends = 2
        ctx.log.append("alert", data={"key": "crashloop:factory-x", "message": "restarting forever"})
        (note,) = standin.wait_messages(CHAT, 1)
        assert note.text.startswith("CRITICAL: crashloop:factory-x")
        standin.fail_sends = 1000
        ctx.log.append("alert", data={"key": "stuck:s1", "message": "no heartbeat"})
        wait_for(lambda: events(factory.home, "alert_undelivered"), timeout=30, what="alert_undelivered")
        standin.fail_sends = 0
    (lost,) = events(factory.home, "alert_undelivered")
    assert lost.data["key"] == "alert:stuck:s1" and lost.data["chat"] == CHAT and lost.data["tries"] == 3
    assert len(standin.messages(CHAT)) == 1


def test_telegram_unreachable_at_start_is_waited_for(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    late = StandIn(TOKEN)
    config = f'[telegram]\nallowed_chat_ids = [{CHAT}]\napi_url = "http://127.0.0.1:{port}"\nnotify_poll_s = 0.2\n'
    factory = make_factory(tmp_path, sessions=1, extra=config)
    with running_bot(factory.home) as proc:
        time.sleep(3)  # getMe fails: connection refused, retried
        assert proc.poll() is None
        late.start(port)
        try:
            late.say(CHAT, "/status")
            assert late.wait_messages(CHAT, 1, timeout=60)[0].text.startswith("Factory status")
        finally:
            late.stop()


def test_the_token_never_reaches_the_bots_output_or_the_log(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin)
    with running_bot(factory.home):
        standin.say(CHAT, f"/task remember {TOKEN}")
        standin.wait_messages(CHAT, 1)
    assert TOKEN not in (factory.home / "bot.log").read_text()
    assert TOKEN not in (factory.home / "state" / "experiment-log.jsonl").read_text()


# -- learning --------------------------------------------------------------------------------

PROPOSED = {"skills": [
    {"name": "spend-today", "pattern": r"how much .*spen[dt]", "action": "spend", "description": "today's spend"},
    {"name": "what-landed", "pattern": r"what (?:has )?landed",
     "template": "{% for l in landings %}{{ l.branch }}\n{% else %}nothing landed this week{% endfor %}"},
    {"name": "deploy-now", "pattern": "deploy", "action": "deploy"},
    {"name": "slow", "pattern": "(a+)+$", "action": "status"},
    {"name": "escape", "pattern": "classes", "template": "{{ ''.__class__.__mro__[1].__subclasses__() }}"},
]}  # fmt: skip


def test_bot_improve_learns_skills_the_restarted_bot_answers(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin)
    asks = ["how much did we spend today?", "what landed?"]
    with running_bot(factory.home):
        for i, text in enumerate(asks):
            standin.say(CHAT, text)
            assert standin.wait_messages(CHAT, 1, after=i)[0].text.startswith("I cannot do that yet")
    assert [e.data["text"] for e in events(factory.home, "bot_unhandled")] == asks

    factory.script([{"match": "You extend a Telegram bot", "result": json.dumps(PROPOSED), "cost_usd": 0.02}])
    proc = run_cli("bot", "improve", "--json", home=factory.home)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["accepted"] == ["spend-today", "what-landed"]
    refused = {r["name"]: r["reason"] for r in report["refused"]}
    assert "unknown action 'deploy'" in refused["deploy-now"]
    assert "catastrophic regex" in refused["slow"]
    assert "template outside its sandbox" in refused["escape"]
    assert report["coverage"] == {"handled": 2, "total": 2}
    (event,) = events(factory.home, "bot_improve")
    assert event.data["refused"] == report["refused"] and event.data["coverage"] == report["coverage"]
    listed = run_cli("bot", "skills", "list", home=factory.home).stdout
    assert "spend-today" in listed and "-> /spend" in listed and "what-landed" in listed
    assert 'template: "{% for l in landings %}' in run_cli("bot", "skills", "show", "what-landed",
                                                             home=factory.home).stdout  # fmt: skip

    with running_bot(factory.home):
        for i, text in enumerate(asks):
            standin.say(CHAT, text)
            standin.wait_messages(CHAT, 1, after=2 + i)
        standin.say(CHAT, "/help")
        help_text = standin.wait_messages(CHAT, 1, after=4)[0].text
    answers = [m.text for m in standin.messages(CHAT)[2:4]]
    assert (
        answers[0]
        == "Spend today\n$0.02 of $20.00 today (1 agent calls)\nleft: $19.98; state: ok\nby job: bot_improve $0.02"
    )
    assert answers[1] == "nothing landed this week"
    assert "Learned requests:" in help_text and "spend-today: today's spend" in help_text
    commands = [e.data["command"] for e in events(factory.home, "bot_message")][-3:]
    assert sorted(commands) == ["help", "skill:spend-today", "skill:what-landed"]  # recorded in any order

    again = json.loads(run_cli("bot", "improve", "--json", home=factory.home).stdout)
    assert again["messages"] == 0 and again["note"] == "no unhandled messages since the last run"
    assert len([e for e in events(factory.home, "agent_call") if e.data["purpose"] == "bot_improve"]) == 1


def test_bot_skills_remove_and_bad_names(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin)
    folder = factory.home / "bot-skills"
    folder.mkdir()
    (folder / "spend.md").write_text('---\nname: "spend"\npattern: "spend"\naction: "spend"\n---\nspend\n')
    (folder / "evil.md").write_text('---\nname: "evil"\npattern: "x"\ntemplate: "{{ self.__init__ }}"\n---\n')
    listed = run_cli("bot", "skills", "list", home=factory.home).stdout
    assert "spend" in listed and "evil.md" in listed and "INVALID" in listed
    for args in (["show", "../factory.toml"], ["remove", "nope"]):
        proc = run_cli("bot", "skills", *args, home=factory.home)
        assert proc.returncode != 0 and proc.stderr.startswith("Error: ") and "Traceback" not in proc.stderr
    assert run_cli("bot", "skills", "remove", "spend", home=factory.home).returncode == 0
    assert not (folder / "spend.md").exists() and (factory.home / "factory.toml").exists()


def test_bot_without_a_token_says_so_in_one_line(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1)
    proc = run_cli("bot", home=factory.home, timeout=30)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: TELEGRAM_BOT_TOKEN is not set")


def test_standup_from_the_chat_runs_the_job_and_says_how_it_ended(tmp_path: Path, standin: StandIn) -> None:
    factory = factory_with_bot(tmp_path, standin)
    with running_bot(factory.home):
        standin.say(CHAT, "/standup")
        assert standin.wait_messages(CHAT, 1)[0].text == "standup started"
        (done,) = standin.wait_messages(CHAT, 1, after=1, timeout=120)
    direct = run_cli("standup", home=factory.home)  # what the same job says when a person runs it
    assert done.text.strip() and not done.text.startswith("Sorry")
    assert done.text.splitlines()[0].split()[0] == direct.stdout.strip().splitlines()[0].split()[0], (done.text, direct)
