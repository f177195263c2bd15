"""The experiment log on its own: append, read from the end, filters, torn lines, secrets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from factoryctl.state.eventlog import EventFilter, EventLog


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def make_log(tmp_path: Path) -> EventLog:
    return EventLog(tmp_path / "log.jsonl", clock=FakeClock(datetime(2026, 11, 24, tzinfo=UTC)), secrets=())


def test_events_are_one_json_line_each_with_the_contract_shape(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.append("ralph_cycle", session="s3", data={"verdict": "pushed", "text": "two\nlines"})
    lines = log.path.read_bytes().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert list(obj) == ["ts", "type", "session", "data"]
    assert obj["ts"] == "2026-11-24T00:00:01.000Z"
    assert obj["data"]["text"] == "two\nlines"


def test_tail_returns_the_last_n_oldest_first_across_many_blocks(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    for i in range(3000):
        log.append("x", data={"i": i, "pad": "p" * (i % 97)})
    got = [e.data["i"] for e in log.tail(5)]
    assert got == [2995, 2996, 2997, 2998, 2999]
    assert [e.data["i"] for e in log.tail(3000)] == list(range(3000))
    assert log.tail(0) == []


def test_filters_by_type_session_and_time(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    for i in range(30):
        log.append("a" if i % 2 else "b", session=f"s{i % 3}", data={"i": i})
    assert [e.data["i"] for e in log.tail(100, EventFilter(types=frozenset({"a"}), session="s0"))] == [3, 9, 15, 21, 27]
    since = "2026-11-24T00:00:26.000Z"  # the 26th event onwards
    assert [e.data["i"] for e in log.tail(100, EventFilter(since=since))] == [25, 26, 27, 28, 29]
    until = "2026-11-24T00:00:02.000Z"
    assert [e.data["i"] for e in log.tail(100, EventFilter(until=until))] == [0, 1]


def test_a_torn_last_line_is_skipped_by_readers_and_repaired_by_the_next_writer(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.append("x", data={"i": 1})
    with open(log.path, "ab") as fh:
        fh.write(b'{"ts":"2026-11-24T00:00:09.000Z","type":"x","data":{"i": 2')  # a crash mid-line
    assert [e.data["i"] for e in log.tail(10)] == [1]
    log.append("x", data={"i": 3})
    assert [e.data["i"] for e in log.tail(10)] == [1, 3]
    assert all(json.loads(line) for line in log.path.read_bytes().splitlines())
    assert b'"i": 2' in log.torn_file.read_bytes()


def test_a_torn_first_and_only_line_leaves_an_empty_log(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.path.write_bytes(b'{"ts":"2026')
    assert log.tail(10) == []
    log.append("x")
    assert len(log.tail(10)) == 1


def test_garbage_lines_in_the_middle_are_skipped(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.append("x", data={"i": 1})
    with open(log.path, "ab") as fh:
        fh.write(b"not json\n[1,2]\n{}\n")
    log.append("x", data={"i": 2})
    assert [e.data["i"] for e in log.tail(10)] == [1, 2]


def test_secrets_never_reach_the_log(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "log.jsonl", secrets=["sk-ant-very-secret-key"])
    log.append("alert", data={"text": "leaked sk-ant-very-secret-key here"})
    assert b"very-secret" not in log.path.read_bytes()
    assert log.tail(1)[0].data["text"] == "leaked *** here"


def test_follow_yields_events_appended_later(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.append("old")
    seen: list[str] = []
    appended = iter(["new1", "new2"])

    def stop() -> bool:
        nxt = next(appended, None)
        if nxt is not None:
            log.append(nxt)
        return len(seen) >= 2

    for event in log.follow(poll_s=0.01, stop=stop):
        seen.append(event.type)
    assert seen == ["new1", "new2"]


def test_the_log_and_the_state_are_not_world_readable_whatever_the_umask(tmp_path: Path) -> None:
    import os

    from factoryctl.state.stores import atomic_write_text

    old = os.umask(0)
    try:
        log = make_log(tmp_path)
        log.append("task", data={"action": "added", "id": 1, "title": "private"})
        atomic_write_text(tmp_path / "tasks.json", "{}")
        older = tmp_path / "older.jsonl"  # a log an older version made 0644 is narrowed at the next append
        older.write_text("")
        older.chmod(0o644)
        EventLog(older, secrets=()).append("task", data={})
    finally:
        os.umask(old)
    for path in (log.path, tmp_path / "tasks.json", older):
        assert path.stat().st_mode & 0o777 == 0o640, path
