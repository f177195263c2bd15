"""The outcome figures, pinned on a hand-made log: discard rate, $ and tokens per landed change,
push-to-land time, the verdict mix, and what a hostile number in the log does (nothing)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from factoryctl.core.clock import format_ts
from factoryctl.rules import metrics
from factoryctl.state.eventlog import Event

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(minutes_ago: float) -> str:
    return format_ts(NOW - timedelta(minutes=minutes_ago))


def cycle(ago: float, session: str, verdict: str, reason: str = "", **data: Any) -> Event:
    body = {"verdict": verdict, "reason": reason, "durations": {"total_s": 600.0}, **data}
    return Event(at(ago), "ralph_cycle", session, body)


def call(ago: float, session: str | None, usd: float, tin: Any = 0, tout: Any = 0, purpose: str = "cycle") -> Event:
    data = {"purpose": purpose, "cost_usd": usd, "input_tokens": tin, "output_tokens": tout}
    return Event(at(ago), "agent_call", session, data)


def review(ago: float, session: str, verdict: str, branch: str, reasons: list[str] | None = None) -> Event:
    data = {"branch": branch, "verdict": verdict, "reasons": reasons or [],
            "landed": "ab" * 20 if verdict == "approve" else None}  # fmt: skip
    return Event(at(ago), "cto_review", session, data)


# A morning of a two-session factory (minutes before NOW), newest last as in the file.
LOG = [
    call(600, "s1", 0.50, 1000, 200),
    cycle(
        599,
        "s1",
        "pushed",
        "checks held; queued for review",
        branch="brl/s1/a",
        after={"pytest": {}},
        before={"pytest": {}},
        baseline_computed=True,
    ),
    call(590, "s2", 0.30, 800, 100),
    cycle(589, "s2", "discarded", "no change", after={"pytest": {}}),
    call(500, "s2", 0.20, 500, 50),
    cycle(499, "s2", "discarded", "checks got worse: pytest: 1 more failure", after={"pytest": {}}),
    call(480, "s1", 0.40, 900, 300),
    cycle(479, "s1", "pushed", "checks held; queued for review", branch="brl/s1/b", after={"pytest": {}}),
    call(470, "s2", 0.0, 0, 0),
    cycle(469, "s2", "failed", "agent call failed: timeout: no answer", agent_outcome="timeout"),
    cycle(460, "s2", "interrupted", "stopped (SIGTERM) before the branch was pushed"),
    call(420, None, 0.10, 300, 40, purpose="review"),
    review(419, "s1", "approve", "brl/s1/a"),  # pushed 180 min before
    call(410, None, 0.10, 300, 40, purpose="review"),
    review(409, "s1", "reject", "brl/s1/b", ["conflict with main in: x.py"]),
    Event(at(408), "review_run", None, {"branches": 2, "check_runs": 3}),
    review(300, "s2", "approve", "brl/s2/old"),  # pushed before the window: time from the queue
    Event(at(299), "review_run", None, {"branches": 1, "check_runs": 1}),
    review(200, "s2", "reject", "brl/s2/c", ["rejected by a person: not now"]),
    review(190, "s2", "reject", "brl/s2/d", ["the test tests nothing"]),
]


def figures(events: list[Event] = LOG, **kw: Any) -> dict[str, Any]:
    pushed_at = {"brl/s2/old": at(360)}
    return metrics.outcomes(events, since=NOW - timedelta(hours=24), until=NOW, pushed_at=pushed_at, **kw).as_dict()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("cycles",), 6),
        (("verdicts",), {"pushed": 2, "discarded": 2, "failed": 1, "interrupted": 1}),
        # 2 discarded + 1 failed out of 5 finished cycles (the interrupted one is not a try)
        (("discard_rate",), 0.6),
        (("discarded_by_reason",), {"no_change": 1, "checks_worse": 1}),
        (("failed_by_outcome",), {"timeout": 1}),
        (("landed",), 2),
        (("rejected",), 3),
        (("rejected_by_reason",), {"conflict": 1, "person": 1, "reviewer": 1}),
        (("merges_per_day",), 2.0),
        (("review_runs",), 2),
        # cycles: 2 (s1/a: after + computed baseline) + 1 + 1 + 1; the gate: 3 + 1
        (("check_runs",), 9),
        (("spend_usd",), 1.6),
        (("agent_calls",), 7),
        (("tokens",), {"input": 3800, "output": 730, "total": 4530}),
        (("usd_per_landed",), 0.8),
        (("tokens_per_landed",), 2265.0),
        # a: pushed 599 min ago, landed 419 min ago = 3 h; old: queued 360, landed 300 = 1 h
        (("push_to_land_s",), {"median": 7200.0, "max": 10800.0}),
        (("cycle_s",), {"mean": 600.0, "median": 600.0}),
        (("by_session", "s1", "discard_rate"), 0.0),
        (("by_session", "s2", "discard_rate"), 1.0),
        (("by_session", "s1", "usd_per_landed"), 0.9),
        (("by_session", "s2", "landed"), 1),
        (("by_session", "s2", "push_to_land_s", "median"), 3600.0),
    ],
)
def test_figures_of_a_hand_made_log(path: tuple[str, ...], expected: Any) -> None:
    got: Any = figures()
    for key in path:
        got = got[key]
    assert got == expected


def test_order_of_the_events_does_not_matter() -> None:
    assert figures(list(reversed(LOG))) == figures(LOG)


def test_events_outside_the_window_are_not_counted() -> None:
    old = [cycle(60 * 25, "s1", "pushed"), call(60 * 25, "s1", 5.0, 10**6, 10**6)]
    assert figures([*old, *LOG]) == figures(LOG)


def test_an_empty_window_has_no_rates_rather_than_dividing_by_zero() -> None:
    got = figures([])
    assert got["cycles"] == 0 and got["discard_rate"] is None and got["usd_per_landed"] is None
    assert got["push_to_land_s"] == {"median": None, "max": None}
    line = metrics.outcomes([], since=NOW - timedelta(hours=1), until=NOW).line()
    assert line == "today: no cycles yet"
    one = metrics.outcomes([cycle(5, "s1", "discarded", "no change")], since=NOW - timedelta(hours=1), until=NOW)
    assert one.line() == "today: 1 cycle, 0 landed, discard rate 100 %, nothing landed yet"


@pytest.mark.parametrize("garbage", [math.nan, math.inf, -5, 10**15, "12", True, None, [1]])
def test_hostile_numbers_in_the_log_count_as_nothing(garbage: Any) -> None:
    bad = [call(5, "s1", garbage, garbage, garbage), cycle(4, "s1", "discarded", "no change",
           durations={"total_s": garbage})]  # fmt: skip
    got = figures([*LOG, *bad])
    assert got["spend_usd"] == 1.6 and got["tokens"]["total"] == 4530
    assert all(math.isfinite(v) for v in got["cycle_s"].values() if v is not None)


def test_summary_line_for_status() -> None:
    got = metrics.outcomes(LOG, since=NOW - timedelta(hours=24), until=NOW, pushed_at={}).line()
    assert got == "today: 6 cycles, 2 landed, discard rate 60 %, $0.80 per landed change"


def test_daily_series_has_every_day_and_counts_each_in_its_own() -> None:
    yesterday = Event(format_ts(NOW - timedelta(days=1)), "ralph_cycle", "s1", {"verdict": "pushed"})
    days = metrics.daily([*LOG, yesterday], days=14, now=NOW)
    assert [d.day for d in days][-2:] == ["2026-11-29", "2026-11-30"] and len(days) == 14
    assert days[-2].verdicts["pushed"] == 1 and days[-1].landed == 2 and days[-1].discard_rate == 0.6
    assert days[-1].usd == 1.6 and days[-1].tokens == 4530 and days[0].verdicts["pushed"] == 0
    assert metrics.check_runs_per_cycle(days)[-1] == 1.5 and metrics.check_runs_per_cycle(days)[0] is None


def test_hourly_buckets_cycles_by_verdict() -> None:
    hours = metrics.hourly(LOG, hours=24, now=NOW)
    assert len(hours) == 24 and hours[-1].start == "2026-11-30T12:00Z"
    assert sum(h.verdicts["discarded"] for h in hours) == 2
    assert sum(sum(h.verdicts.values()) for h in hours) == 6


def test_a_check_run_is_one_run_of_every_configured_check_in_cycles_as_at_the_gate() -> None:
    two_checks = {"pytest": {}, "mypy": {}}
    events = [cycle(100, "s1", "pushed", "checks held", branch="brl/s1/x", after=two_checks, before=two_checks,
                    baseline_computed=True),
              Event(at(90), "review_run", None, {"branches": 1, "check_runs": 1})]  # fmt: skip
    assert figures(events)["check_runs"] == 3  # the baseline, the cycle's after, the gate's merge result
