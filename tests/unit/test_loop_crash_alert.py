"""A loop whose cycle keeps crashing alerts once per quiet period, like every other job."""

from __future__ import annotations

import pytest

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
