"""What a loop tells the others: a crashing cycle alerts once per quiet period; a backoff announces its end."""

from __future__ import annotations

import pytest

from factoryctl.core.clock import parse_ts
from factoryctl.jobs.context import Context
from factoryctl.jobs.cycle import CycleReport
from factoryctl.jobs.loop import Loop


def test_a_cycle_that_crashes_every_time_is_alerted_once(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(self: Loop) -> CycleReport:
        self.cycles += 1
        raise RuntimeError("prompts/cycle.md: unexpected end of template")

    monkeypatch.setattr(Loop, "_one_cycle", crash)
    said: list[str] = []
    loop = Loop(ctx, "s1", out=said.append, sleep=lambda _: None, max_cycles=4)
    assert loop.run() == 0
    alerts = ctx.log.tail(50)
    keys = [e.data["key"] for e in alerts if e.type == "alert"]
    assert keys == ["loop-crash:s1"]
    assert sum("crashed: RuntimeError" in line for line in said) == 4


def test_a_backing_off_loop_announces_its_next_cycle(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """The doctor must not take a long backoff for a frozen loop: the heartbeat says when it wakes."""

    def crash(self: Loop) -> CycleReport:
        self.cycles += 1
        raise RuntimeError("boom")

    monkeypatch.setattr(Loop, "_one_cycle", crash)
    seen: list[tuple[float, dict[str, object]]] = []
    loop = Loop(ctx, "s1", out=lambda _: None, max_cycles=3,
                sleep=lambda delay: seen.append((delay, ctx.heartbeats().of("s1"))))  # fmt: skip
    loop.run()
    interval = ctx.settings.cycle.interval_s
    assert [delay for delay, _ in seen] == [2 * interval, 4 * interval]
    for delay, beat in seen:
        wake = parse_ts(str(beat["next_cycle"])) - parse_ts(str(beat["heartbeat"]))
        assert beat["state"] == "sleeping" and abs(wake.total_seconds() - delay) < 1
    assert "next_cycle" not in ctx.heartbeats().of("s1")  # a stopped loop announces nothing
