"""Skill files: front matter round trip, refusals (duplicate, secret, size, cap), ranking, retiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from factoryctl.core.skill import Skill, parse_skill
from factoryctl.rules.skills import SkillRefused, check_new_skill, rank, retire_candidates, similarity

NAN = Skill("guard-nan-tags", "when parsing relay event tags that may contain NaN",
            "Guard with Number.isFinite() before arithmetic on a tag's value.")  # fmt: skip
FOCUS = Skill("one-focused-change", "always", "Make one focused change per branch; leave unrelated fixes for later.")


def check(skill: Skill, existing: list[Skill] | None = None, **kw: object) -> None:
    args: dict[str, object] = {"max_count": 10, "max_chars": 2000, "threshold": 0.6, "secrets": ()}
    args.update(kw)
    check_new_skill(skill, existing if existing is not None else [NAN, FOCUS], **args)  # type: ignore[arg-type]


def test_front_matter_round_trip() -> None:
    skill = Skill("x-y-z", "when a\nthing", "body\n", "brl/s1/t", "abc1234", "2026-11-30T10:00:00.000Z", 3,
                  "2026-11-30T11:00:00.000Z", 0.25)  # fmt: skip
    again = parse_skill(skill.render(), "ignored")
    assert again == Skill("x-y-z", "when a thing", "body\n", "brl/s1/t", "abc1234", "2026-11-30T10:00:00.000Z", 3,
                          "2026-11-30T11:00:00.000Z", 0.25)  # fmt: skip
    assert parse_skill("no front matter", "plain").body == "no front matter"


def test_a_new_distinct_skill_passes_where_a_copy_of_it_would_not() -> None:
    sql = Skill("sql-params", "when building SQL from user input", "Always use bound parameters, never f-strings.")
    check(sql)  # distinct from both existing skills, under the cap: no refusal
    assert max(similarity(sql.body, other.body) for other in (NAN, FOCUS)) < 0.6
    with pytest.raises(SkillRefused, match="nearly duplicates"):  # the same words under another name are refused
        check(sql, [NAN, FOCUS, Skill("bound-params", sql.when, sql.body)])


@pytest.mark.parametrize(
    ("skill", "kw", "problem"),
    [
        (Skill("guard-nan-values", "when parsing relay event tags that may hold NaN",
               "Guard with Number.isFinite() before doing arithmetic on a tag value."), {}, "nearly duplicates"),
        (Skill("api-key", "when calling the API", "use key sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAA"), {}, "credential"),
        (Skill("bot", "when testing", "token 123456789:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), {}, "credential"),
        (Skill("env-secret", "when deploying", "export X=hunter2hunter2"), {"secrets": ["hunter2hunter2"]}, "secret"),
        (Skill("big", "when big", "x " * 2000), {}, "limit"),
        (Skill("capped", "when capped", "something new entirely"), {"max_count": 2}, "max_count"),
        (Skill("Bad Name", "w", "b"), {}, "name"),
        (Skill("../../etc", "w", "b"), {}, "name"),
        (Skill("no-when", "", "b"), {}, "when"),
        (Skill("guard-nan-tags", "other", "other"), {}, "exists already"),
    ],
)  # fmt: skip
def test_refused(skill: Skill, kw: dict[str, object], problem: str) -> None:
    with pytest.raises(SkillRefused, match=problem):
        check(skill, **kw)


def test_similarity_is_symmetric_and_bounded() -> None:
    assert similarity("a b c", "") == 0.0
    assert similarity(NAN.body, NAN.body) == 1.0
    assert similarity(NAN.body, FOCUS.body) < 0.3


def test_skills_matching_the_task_come_first() -> None:
    ranked = rank([FOCUS, NAN], "Parse the relay event tags in relay/tags.ts")
    assert [s.name for s in ranked] == ["guard-nan-tags", "one-focused-change"]


def test_retire_candidates() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    old = (now - timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    fresh = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    skills = [
        Skill("never-shown", "w", "b", created=old),
        Skill("shown-lately", "w", "b", created=old, shown=5, last_shown=fresh),
        Skill("worse-since", "w", "b", created=fresh, discard_rate=0.2),
    ]
    found = {c.name: c.reason for c in retire_candidates(skills, now, timedelta(days=14), 0.6)}
    assert set(found) == {"never-shown", "worse-since"}
    assert "rose from 20% to 60%" in found["worse-since"]
