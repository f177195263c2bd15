"""The server's sliding window of the log: the same events as reading the log from its end,
however the log grows between reads (appends, a torn line, a replaced file)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from factoryctl.core.clock import format_ts
from factoryctl.rules import metrics
from factoryctl.state.eventlog import EventFilter, EventLog
from factoryctl.state.window import Window

START = datetime(2026, 11, 1, tzinfo=UTC)
TYPES = frozenset({"ralph_cycle", "agent_call"})


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def filled(tmp_path: Path, hours: int) -> tuple[EventLog, Clock]:
    clock = Clock()
    log = EventLog(tmp_path / "log.jsonl", clock=clock, secrets=())
    for i in range(hours * 4):
        clock.now = START + timedelta(minutes=15 * i)
        log.append("ralph_cycle" if i % 3 else "scheduler", session="s1", data={"i": i, "summary": "x" * 300})
        log.append("agent_call", session="s1", data={"i": i, "cost_usd": 0.1})
    return log, clock


def expected(log: EventLog, since: datetime) -> list[int]:
    found = list(log.iter_reverse(EventFilter(types=TYPES, since=format_ts(since))))
    return [e.data["i"] for e in reversed(found)]


def test_the_window_holds_what_a_read_from_the_end_finds_and_keeps_up_with_appends(tmp_path: Path) -> None:
    log, clock = filled(tmp_path, hours=200)
    since = clock.now - timedelta(days=2)
    window = Window(log, TYPES, timedelta(days=2))
    assert [e.data["i"] for e in window.events(clock.now)] == expected(log, since)
    for i in range(10_000, 10_020):  # more appends, the clock moving on: the old end drops off
        clock.now += timedelta(hours=1)
        log.append("agent_call", session="s2", data={"i": i})
        got = [e.data["i"] for e in window.events(clock.now)]
        assert got == expected(log, clock.now - timedelta(days=2))
    narrower = clock.now - timedelta(hours=6)
    assert [e.data["i"] for e in window.events(clock.now, since=narrower)] == expected(log, narrower)


def test_a_half_written_last_line_waits_and_a_replaced_log_is_read_again(tmp_path: Path) -> None:
    log, clock = filled(tmp_path, hours=10)
    window = Window(log, TYPES, timedelta(days=1))
    before = [e.data["i"] for e in window.events(clock.now)]
    with open(log.path, "ab") as fh:
        fh.write(b'{"ts":"' + format_ts(clock.now).encode() + b'","type":"agent_call","session":"s1","data":{"i":')
    assert [e.data["i"] for e in window.events(clock.now)] == before  # torn: not yet
    with open(log.path, "ab") as fh:
        fh.write(b"777}}\n")
    assert [e.data["i"] for e in window.events(clock.now)] == [*before, 777]
    replacement = tmp_path / "new.jsonl"
    EventLog(replacement, clock=clock, secrets=()).append("agent_call", data={"i": 1})
    replacement.replace(log.path)
    assert [e.data["i"] for e in window.events(clock.now)] == [1]
    log.path.unlink()
    assert window.events(clock.now) == []


def test_shrunk_events_keep_what_the_figures_read() -> None:
    data = {"verdict": "pushed", "reason": "r" * 500, "summary": "s" * 500, "files": ["a"] * 50,
            "after": {"tsc": {"errors": 1, "output": "x" * 900}}, "durations": {"total_s": 12.5, "agent_s": 3},
            "cost_usd": 0.4, "input_tokens": 10}  # fmt: skip
    got = metrics.shrink(data)
    assert got == {"verdict": "pushed", "reason": "r" * 200, "after": ("tsc",), "durations": {"total_s": 12.5},
                   "cost_usd": 0.4, "input_tokens": 10}  # fmt: skip
