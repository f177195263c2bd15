"""Reading back to `since` stops there even when no line matches the types (the doctor's alerts
check must not read a 1,000,000-event log to the start to find no alert)."""

from __future__ import annotations

import json
from pathlib import Path

from factoryctl.state.eventlog import EventFilter, EventLog


def line(ts: str, kind: str) -> str:
    return json.dumps({"ts": ts, "type": kind, "session": None, "data": {}}, separators=(",", ":")) + "\n"


def test_a_reader_stops_at_since_without_a_matching_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    # An out-of-order alert far back: found only by a reader that went past `since`.
    path.write_text(
        line("2026-11-30T05:00:00.000Z", "alert")
        + line("2026-11-30T01:00:00.000Z", "ralph_cycle")
        + line("2026-11-30T06:00:00.000Z", "ralph_cycle")
    )
    log = EventLog(path, secrets=())
    flt = EventFilter(types=frozenset({"alert"}), since="2026-11-30T03:00:00.000Z")
    assert list(log.iter_reverse(flt)) == []
    # Without `since` the same reader finds it: the stop is what made the difference.
    assert [e.type for e in log.iter_reverse(EventFilter(types=frozenset({"alert"})))] == ["alert"]


def test_a_hand_written_line_without_the_prefix_does_not_stop_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(line("2026-11-30T05:00:00.000Z", "alert") + '{"type": "note", "ts": "2000-01-01T00:00:00.000Z"}\n')
    flt = EventFilter(types=frozenset({"alert"}), since="2026-11-30T03:00:00.000Z")
    assert [e.type for e in EventLog(path, secrets=()).iter_reverse(flt)] == ["alert"]
