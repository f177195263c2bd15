"""The bot's pure parts: escaping and splitting replies, commands, notices, skill validation."""

from __future__ import annotations

import html
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from factoryctl.adapters.telegram import Reply, chunks, escape, sendable
from factoryctl.core.clock import format_ts
from factoryctl.jobs.bot.app import parse_command
from factoryctl.jobs.bot.notifier import read_new
from factoryctl.rules.botskills import (
    Action,
    BotSkill,
    BotSkillRefused,
    coverage,
    match,
    parse_skill_file,
    proposals,
    render_template,
    validate,
)
from factoryctl.rules.notices import NoticeRules, Severity, decide
from factoryctl.state.eventlog import Event, EventLog
from tests.support.telegram_standin import NOTICE_TITLES, BadRequest, visible_text

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SNAPSHOT: dict[str, Any] = {
    "now": "2026-11-30T12:00:00.000Z",
    "sessions": [{"name": "s1", "state": "idle", "task": None}],
    "tasks": {"queued": 2},
    "review_queue": {"pending": 1},
    "spend_today": {"total_usd": 1.5, "calls": 3},
    "budget": {"daily_usd": 20.0, "left_usd": 18.5, "state": "ok"},
    "holds": {"closed": {}, "paused": []},
    "landings": [{"branch": "brl/s1/x", "ts": "2026-11-30T11:00:00.000Z", "commit": "abc"}],
}

# -- replies -----------------------------------------------------------------------------------

HOSTILE = [
    "<b>bold</b> & </code><a href='x'>link</a>",
    "*bold* _italic_ `code` [link](http://x) ~strike~ ||spoiler||",
    "&amp; &lt; &#60; <script>",
    "brl/s1/2026<i>",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_untrusted_text_is_shown_exactly_and_never_becomes_markup(text: str) -> None:
    (message,) = chunks(Reply.text(text, title=text))
    assert visible_text(message, "HTML") == f"{text}\n{text}"  # the stand-in parses like Telegram
    assert "<b>" + escape(text) + "</b>" in message


def test_control_characters_and_bidi_overrides_are_stripped() -> None:
    assert sendable("a\x00b\x1bc\u202ed\r\ne\tf") == "abcd\ne\tf"
    assert visible_text(chunks(Reply.text("x\x07y"))[0], "HTML") == "xy"


@pytest.mark.parametrize("line_chars, lines", [(100, 150), (5000, 1), (4096, 3), (700, 40)])
def test_long_replies_are_split_under_the_limit_and_lose_nothing(line_chars: int, lines: int) -> None:
    text = "\n".join(("<&" * line_chars)[:line_chars] for _ in range(lines))
    parts = chunks(Reply.text(text))
    assert all(len(p) <= 4096 for p in parts)
    assert len(parts) > 1
    shown = [visible_text(p, "HTML") for p in parts]
    assert "".join(shown).replace("\n", "") == text.replace("\n", "")


def test_an_empty_reply_still_says_something() -> None:
    assert visible_text(chunks(Reply(()))[0], "HTML") == "(nothing)"


def test_the_standin_is_as_strict_as_telegram_about_html() -> None:
    for bad in ("<b>open", "<script>x</script>", "<b><i>x</b></i>"):
        with pytest.raises(BadRequest):
            visible_text(bad, "HTML")


# -- commands --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("/status", (Action.STATUS, "")),
        ("/task Fix  the <b>thing</b>", (Action.TASK, "Fix  the <b>thing</b>")),
        ("/Status@factory_bot", (Action.STATUS, "")),
        ("/reject 2 too big", (Action.REJECT, "2 too big")),
        ("/start", (Action.HELP, "")),
        ("/rm -rf", None),
        ("status", None),
        ("/", None),
    ],
)
def test_commands_are_parsed_into_actions(text: str, expected: tuple[Action, str] | None) -> None:
    assert parse_command(text) == expected


# -- notices ---------------------------------------------------------------------------------


def ev(minutes: float, type_: str, **data: Any) -> Event:
    return Event(ts=format_ts(NOW + timedelta(minutes=minutes)), type=type_, data=data)


def test_an_alert_key_is_told_once_an_hour_even_when_appended_twice() -> None:
    events = [ev(-30, "alert", key="budget:closed", message="spent"), ev(-10, "alert", key="budget:closed")]
    decision = decide(events, {}, NOW, NoticeRules())
    assert [n.key for n in decision.notices] == ["alert:budget:closed"]
    assert decision.notices[0].severity is Severity.WARNING and decision.notices[0].text == "spent"
    again = decide([ev(-5, "alert", key="budget:closed")], decision.sent, NOW, NoticeRules())
    assert again.notices == ()
    later = decide([ev(45, "alert", key="budget:closed")], decision.sent, NOW + timedelta(minutes=45), NoticeRules())
    assert len(later.notices) == 1  # more than an hour after the first


def test_every_kind_of_notice_is_one_the_host_tests_conversations_pass_over() -> None:
    """`converse` (the host tests', the demo's) tells the notifier's notices from replies by title."""
    events = [ev(0, "alert", key=f"k{severity.value}", severity=severity.value) for severity in Severity]
    events += [ev(1, "team_standup", summary="s"), ev(2, "doctor_analysis", summary="d"),
               ev(3, "cto_review", verdict="awaiting_human", branch="brl/s1/x"),
               ev(4, "cto_review", verdict="approve", branch="brl/s1/y", landed="0123456789ab")]  # fmt: skip
    notices = decide(events, {}, NOW, NoticeRules()).notices
    assert len(notices) == len(Severity) + 4
    for notice in notices:
        assert f"{notice.title}\n{notice.text}".startswith(NOTICE_TITLES), notice.title
    assert not "Factory status\ntoday".startswith(NOTICE_TITLES)


def test_standup_and_doctor_summaries_reach_the_chat_and_a_skipped_standup_does_not() -> None:
    events = [
        ev(0, "team_standup", skipped=True, reason="nothing new"),
        ev(1, "team_standup", skipped=False, summary="s1 adds a test; s2 and s3 both touch stock.py"),
        ev(2, "doctor_analysis", summary="s2 error-looping: paused", sessions={}),
    ]
    notices = decide(events, {}, NOW, NoticeRules()).notices
    assert [(n.title, n.text) for n in notices] == [
        ("Standup", "s1 adds a test; s2 and s3 both touch stock.py"),
        ("Session doctor", "s2 error-looping: paused"),
    ]


def test_severity_comes_from_the_event_or_the_key() -> None:
    events = [ev(0, "alert", key="crashloop:factory-bot"), ev(0, "alert", key="x", severity="info")]
    assert [n.severity for n in decide(events, {}, NOW, NoticeRules()).notices] == [Severity.CRITICAL, Severity.INFO]


def test_a_branch_waiting_for_a_person_gets_buttons_and_landings_one_note() -> None:
    events = [
        ev(0, "cto_review", verdict="awaiting_human", branch="brl/s1/a", reasons=["ok"]),
        ev(1, "cto_review", verdict="approve", branch="brl/s2/b", landed="0123456789abc"),
        ev(2, "cto_review", verdict="approve", branch="brl/s3/c", landed="fedcba9876543"),
        ev(3, "cto_review", verdict="reject", branch="brl/s4/d"),
    ]
    notices = decide(events, {}, NOW, NoticeRules()).notices
    assert [(n.key, n.branch) for n in notices] == [("awaiting:brl/s1/a", "brl/s1/a"), ("landed", None)]
    assert notices[1].text == "brl/s2/b -> 0123456789\nbrl/s3/c -> fedcba9876"
    assert [n.key for n in decide(events, {}, NOW, NoticeRules(landings=False)).notices] == ["awaiting:brl/s1/a"]


# -- skills ----------------------------------------------------------------------------------

GOOD_ACTION = {"name": "spend-today", "pattern": r"how much .*spen[dt]", "action": "spend", "description": "spend"}
GOOD_TEMPLATE = {
    "name": "what-landed",
    "pattern": r"what (?:has )?landed",
    "template": "{% for l in landings %}{{ l.branch }} at {{ l.ts }}\n{% else %}nothing{% endfor %}",
}


@pytest.mark.parametrize(
    "raw, reason",
    [
        ({**GOOD_ACTION, "action": "shell"}, "unknown action 'shell'"),
        ({**GOOD_ACTION, "pattern": "(a+)+$"}, "catastrophic regex"),
        ({**GOOD_ACTION, "pattern": r"(\w+\s?)*x"}, "catastrophic regex"),
        ({**GOOD_ACTION, "pattern": "(a|aa)*b"}, "catastrophic regex"),
        ({**GOOD_ACTION, "pattern": r"(x)\1"}, "backreferences"),
        ({**GOOD_ACTION, "pattern": "(?P<cmd>.+)"}, "only named group allowed is 'arg'"),
        ({**GOOD_ACTION, "pattern": "(unclosed"}, "not a valid regex"),
        ({**GOOD_ACTION, "pattern": "a" * 301}, "limit is 300"),
        ({**GOOD_ACTION, "template": "x"}, "exactly one of action or template"),
        ({**GOOD_ACTION, "name": "../../etc"}, "name"),
        ({**GOOD_ACTION, "run": "ls"}, "unknown field(s) run"),
        ({**GOOD_TEMPLATE, "template": "{{ ''.__class__.__mro__ }}"}, "template outside its sandbox"),
        ({**GOOD_TEMPLATE, "template": "{{ cycler.__init__.__globals__ }}"}, "template outside its sandbox"),
        ({**GOOD_TEMPLATE, "template": "{{ range(10**9) | list }}"}, "template outside its sandbox"),
        ({**GOOD_TEMPLATE, "template": "{% include '/etc/passwd' %}"}, "template outside its sandbox"),
        ({**GOOD_TEMPLATE, "template": "{{ 'x' * 999999999 }}"}, "template outside its sandbox"),
        ({**GOOD_TEMPLATE, "template": "{{ budget.items() }}"}, "template outside its sandbox"),
        ({**GOOD_TEMPLATE, "template": "{{ config }}"}, "'config' is not in the status snapshot"),
        ({**GOOD_TEMPLATE, "template": "{{ now | attr('x') }}"}, "filter or test 'attr'"),
        ({**GOOD_TEMPLATE, "template": "{{ budget.nope.deeper }}"}, "fails on the status snapshot"),
        ({**GOOD_TEMPLATE, "template": "{% for x in %}"}, "does not parse"),
        ({**GOOD_TEMPLATE, "template": "x" * 2001}, "limit 2000"),
    ],
)
def test_a_skill_that_could_add_a_capability_is_refused_with_its_reason(raw: dict[str, Any], reason: str) -> None:
    with pytest.raises(BotSkillRefused, match=None) as refused:
        validate(raw, SNAPSHOT)
    assert reason in str(refused.value)


def test_a_catastrophic_looking_input_matches_quickly_against_accepted_patterns() -> None:
    skill = validate({**GOOD_ACTION, "pattern": r"^(?:add|queue) (?:a )?task:? (?P<arg>.+)$"}, SNAPSHOT)
    start = time.perf_counter()
    assert match([skill], "queue task " + "a" * 10_000 + "!") is not None
    assert time.perf_counter() - start < 0.5


def test_good_skills_validate_match_and_render() -> None:
    spend, landed = validate(GOOD_ACTION, SNAPSHOT), validate(GOOD_TEMPLATE, SNAPSHOT)
    assert spend.action is Action.SPEND and landed.template is not None
    assert match([spend, landed], "How much did we SPEND today?") == match([spend], "how much spent")
    assert render_template(landed.template, SNAPSHOT) == "brl/s1/x at 2026-11-30T11:00:00.000Z\n"
    assert coverage([spend, landed], ["what landed?", "how much did we spend", "hello"]) == {"handled": 2, "total": 3}


def test_an_action_skill_passes_the_arg_group_to_its_action() -> None:
    skill = validate({"name": "add", "pattern": r"^please (?:add|queue) (?P<arg>.+)$", "action": "task"}, SNAPSHOT)
    found = match([skill], "please add   fix the  login page")
    assert found is not None and found.arg == "fix the login page"


def test_a_skill_file_round_trips_and_a_tampered_one_is_refused() -> None:
    skill = validate(GOOD_TEMPLATE, SNAPSHOT)
    assert parse_skill_file(skill.as_front_matter(), SNAPSHOT) == BotSkill(
        skill.name, skill.pattern, "", template=skill.template
    )
    tampered = skill.as_front_matter().replace("l.branch", "l.__class__")
    with pytest.raises(BotSkillRefused, match="outside its sandbox"):
        parse_skill_file(tampered, SNAPSHOT)
    with pytest.raises(BotSkillRefused, match="starts with a ---"):
        parse_skill_file("name: x", SNAPSHOT)


@pytest.mark.parametrize(
    "answer, count",
    [('{"skills": [{"name": "a"}]}', 1), ('Here:\n```json\n{"skills": []}\n```', 0)],
)
def test_the_models_answer_is_read_from_bare_or_fenced_json(answer: str, count: int) -> None:
    assert len(proposals(answer)) == count


@pytest.mark.parametrize("answer", ["no json here", '{"skill": []}', "[1, 2]"])
def test_a_malformed_model_answer_is_refused(answer: str) -> None:
    with pytest.raises(BotSkillRefused):
        proposals(answer)


def test_escape_leaves_no_tag_open() -> None:
    assert html.unescape(escape("<b>")) == "<b>" and "<" not in escape("<b>")


# -- the notifier's reading ----------------------------------------------------------------------


def test_the_notifier_reads_only_complete_lines_and_starts_over_on_a_replaced_log(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = EventLog(path, secrets=())
    one = '{"ts":"2026-11-30T12:00:00.000Z","type":"alert","data":{"key":"a"}}\n'
    path.write_text(one + '{"ts":"2026-11-30T12:00:01.000Z","type":"al')  # a writer is mid-line
    events, offset = read_new(log, 0)
    assert [e.data["key"] for e in events] == ["a"] and offset == len(one)
    assert read_new(log, offset) == ([], offset)  # the torn line waits for its end
    path.write_text("not json\n" + one)
    events, offset = read_new(log, 10_000)  # shorter than the cursor: replaced, read from the start
    assert [e.type for e in events] == ["alert"] and offset == path.stat().st_size
    assert read_new(EventLog(tmp_path / "missing.jsonl", secrets=()), 5) == ([], 0)
