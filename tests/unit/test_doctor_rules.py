"""The doctor's rules, table-driven from hand-made facts: each state, each idle reason, the false alarms."""

from __future__ import annotations

import pytest

from factoryctl.rules.doctor import (
    CycleSeen,
    Health,
    IdleWhy,
    Limits,
    ProposedSkill,
    SessionSeen,
    diagnose,
    discard_rate,
    parse_doctor_answer,
    plan_actions,
    provenance_problem,
    signature,
)

LIMITS = Limits(interval_s=900, stall_after_s=7200, error_loop_after=3)


def c(verdict: str, reason: str = "", outcome: str | None = "success", n: int = 0) -> CycleSeen:
    return CycleSeen(f"2026-11-30T10:{n:02d}:00.000Z", verdict, reason, outcome, f"brl/s1/2026113{n}")


FAIL = "agent call failed: error: agent reported an error (error_during_execution): API Error 529 at 10:0{n}"
LOOP = tuple(c("failed", FAIL.format(n=i), "error", i) for i in range(3))


def s(**kw: object) -> SessionSeen:
    """Session s1 with a live pane unless told otherwise."""
    return SessionSeen("s1", **{"pane": "alive", **kw})  # type: ignore[arg-type]


P, W, ST, ID, E = Health.PRODUCTIVE, Health.WORKING, Health.STUCK, Health.IDLE, Health.ERROR_LOOPING
LATE = 99_999
TWO = (c("discarded", "no change"), c("discarded", "worse"))
MIXED = (c("failed", "timeout", "timeout", 1), c("failed", "no change", None, 2), c("discarded", "worse", None, 3))

CASES = [
    # (name, facts, health, reason-or-None)
    ("pushed", s(cycles=(c("pushed", "checks held"),)), P, None),
    ("landed only", s(landed=("brl/s1/x",)), P, None),
    ("cycles, nothing pushed", s(cycles=(c("discarded", "no change"), *MIXED[:2])), ST, None),
    ("heartbeat frozen, not held", s(state="sleeping", heartbeat_age_s=3 * 900), ST, None),
    ("cycle past the stall limit", s(state="cycle", cycle_age_s=3 * 3600), ST, None),
    ("paused", s(paused="flaky CI", state="paused", heartbeat_age_s=LATE), ID, IdleWhy.PAUSED),
    ("budget hold", s(holds=("budget",), heartbeat_age_s=LATE), ID, IdleWhy.BUDGET),
    ("resource hold", s(holds=("resources",), heartbeat_age_s=LATE), ID, IdleWhy.RESOURCES),
    ("held by the budget", s(held="budget: degraded", heartbeat_age_s=LATE), ID, IdleWhy.HELD),
    ("dead pane", s(pane="dead"), ID, IdleWhy.DEAD),
    ("missing pane", s(pane="missing"), ID, IdleWhy.DEAD),
    ("no tasks yet", s(state="sleeping", heartbeat_age_s=300), ID, IdleWhy.NO_TASKS),
    ("a long backoff, announced", s(state="sleeping", heartbeat_age_s=3 * 900, next_cycle_in_s=600), ID, None),
    (
        "an announced cycle long overdue",
        s(state="sleeping", heartbeat_age_s=3 * 3600, next_cycle_in_s=-3 * 900),
        ST,
        None,
    ),
    ("announced, but not sleeping", s(state="cycle", heartbeat_age_s=3 * 900, next_cycle_in_s=600), ST, None),
    ("error loop", s(cycles=LOOP), E, None),
    ("error loop, paused (still reported)", s(cycles=LOOP, paused="paused by the doctor"), E, None),
    # false alarms: held or paused with failed cycles before, a long healthy cycle
    ("paused after failures", s(cycles=(c("discarded", "no change"),), paused=""), ID, IdleWhy.PAUSED),
    ("held after failures", s(cycles=(c("failed", "x"),), holds=("resources",)), ID, IdleWhy.RESOURCES),
    ("one long healthy cycle", s(state="cycle", cycle_age_s=50 * 60, heartbeat_age_s=50 * 60), W, None),
    ("two recent failures are too few to judge", s(cycles=LOOP[:2], first_cycle_age_s=600), W, None),
    ("two recent discards are too few to judge", s(cycles=TWO, first_cycle_age_s=600), W, None),
    ("two failures spread over the window are stuck", s(cycles=LOOP[:2], first_cycle_age_s=2.5 * 3600), ST, None),
    ("two failures of unknown age are stuck", s(cycles=LOOP[:2]), ST, None),
    (
        "too few, but past the stall limit",
        s(cycles=LOOP[:1], first_cycle_age_s=60, state="cycle", cycle_age_s=3 * 3600),
        ST,
        None,
    ),
    (
        "too few, but no heartbeat",
        s(cycles=LOOP[:1], first_cycle_age_s=60, state="sleeping", heartbeat_age_s=3 * 900),
        ST,
        None,
    ),
    ("three different failures are not a loop", s(cycles=MIXED), ST, None),
    ("a push breaks the loop", s(cycles=(*LOOP[:2], c("pushed", "checks held"))), P, None),
]


@pytest.mark.parametrize(("name", "seen", "health", "reason"), CASES, ids=[x[0] for x in CASES])
def test_diagnose(name: str, seen: SessionSeen, health: Health, reason: str | None) -> None:
    got = diagnose(seen, LIMITS)
    assert got.health is health, (name, got)
    if reason is not None:
        assert got.reason == reason
    assert got.evidence, "every diagnosis carries its evidence"


def test_held_or_paused_is_never_stuck_whatever_else_is_seen() -> None:
    for extra in ({"paused": "x"}, {"holds": ("budget",)}, {"holds": ("resources",)}, {"held": "h"}):
        seen = SessionSeen("s1", cycles=(c("discarded", "no change"),), state="sleeping", heartbeat_age_s=10**6,
                           pane="alive", **extra)  # type: ignore[arg-type]  # fmt: skip
        assert diagnose(seen, LIMITS).health is Health.IDLE


def test_the_signature_ignores_numbers_hashes_and_branch_names() -> None:
    a = c("failed", "exited 1: boom at 0xdeadbeef1 in brl/s1/20261130T100000Z after 12.5s")
    b = c("failed", "exited 1: boom at 0xcafebabe2 in brl/s1/20261130T110000Z after 3s")
    assert signature(a) == signature(b)
    assert signature(a) != signature(c("failed", "exited 2: other"))


def test_actions_alert_unhealthy_sessions_pause_loops_restart_dead_panes() -> None:
    loop = diagnose(SessionSeen("s1", cycles=LOOP, pane="alive"), LIMITS)
    dead = diagnose(SessionSeen("s2", pane="dead"), LIMITS)
    fine = diagnose(SessionSeen("s3", cycles=(c("pushed"),), pane="alive"), LIMITS)
    kinds = [(a.kind, a.session) for a in plan_actions([loop, dead, fine], pause_error_looping=True, restart_dead=True)]
    assert kinds == [("alert", "s1"), ("pause", "s1"), ("alert", "s2"), ("restart", "s2")]
    quiet = plan_actions([loop, dead, fine], pause_error_looping=False, restart_dead=False)
    assert [(a.kind, a.session) for a in quiet] == [("alert", "s1"), ("alert", "s2")]


def test_a_paused_error_loop_says_it_is_paused_and_shows_the_flag() -> None:
    got = diagnose(s(cycles=LOOP, paused="paused by the doctor: looping"), LIMITS)
    assert got.paused and got.unhealthy and not got.actionable
    assert got.reason == "the last 3 cycles failed the same way, paused"
    assert got.evidence[-1] == "pause flag: paused by the doctor: looping"
    assert got.as_dict()["paused"] is True
    assert not diagnose(s(cycles=LOOP), LIMITS).paused


ACTION_CASES = [
    # (name, facts, pause_error_looping, actions)
    ("error loop: alert and pause", s(cycles=LOOP), True, [("alert", "s1"), ("pause", "s1")]),
    ("error loop, pausing off: alert only", s(cycles=LOOP), False, [("alert", "s1")]),
    ("error loop, paused: nothing again", s(cycles=LOOP, paused="paused by the doctor"), True, []),
    ("error loop, paused by a person: nothing", s(cycles=LOOP, paused=""), False, []),
    ("paused, no loop: nothing", s(paused="maintenance"), True, []),
]


@pytest.mark.parametrize(("name", "seen", "pause", "actions"), ACTION_CASES, ids=[x[0] for x in ACTION_CASES])
def test_actions_for_one_session(name: str, seen: SessionSeen, pause: bool, actions: list[tuple[str, str]]) -> None:
    planned = plan_actions([diagnose(seen, LIMITS)], pause_error_looping=pause, restart_dead=True)
    assert [(a.kind, a.session) for a in planned] == actions, name


def test_discard_rate() -> None:
    assert discard_rate([]) is None
    assert discard_rate([c("pushed"), c("discarded"), c("failed"), c("interrupted")]) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "text",
    ["no json", '{"skills": "x"}', '{"cycle_prompt": 3}', '{"skills": [{"name": "a"}]}', "[1, 2]"],
)
def test_a_malformed_doctor_answer_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_doctor_answer(text)


def test_skill_provenance_must_be_a_landed_branch_and_its_commit() -> None:
    landed = {"brl/s1/20261130T100000Z": "abcdef1234567890"}
    ok = ProposedSkill("guard-nan", "when parsing numbers", "use isFinite", "brl/s1/20261130T100000Z", "abcdef12")
    assert provenance_problem(ok, landed) is None
    assert "did not land" in str(provenance_problem(ProposedSkill("x", "w", "b", "brl/s9/x", "abcdef12"), landed))
    wrong = ProposedSkill("x", "w", "b", "brl/s1/20261130T100000Z", "1234567")
    assert "not the commit" in str(provenance_problem(wrong, landed))
