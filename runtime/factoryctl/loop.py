"""`factoryctl loop SESSION`: a cycle every cycle.interval_s, forever, in a tmux pane.

Waits while paused (a global or per-session flag, or a gate the scheduler closed), backs
off exponentially after consecutive failed cycles, and ends cleanly on SIGTERM/SIGINT:
the cycle under way drops its unpushed branch before the loop exits.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType
from typing import Any

from .context import Context
from .cycle import Cycle, CycleReport, StopRequested
from .eventlog import format_ts

PAUSE_POLL_S = 10.0


def next_delay(interval_s: float, elapsed_s: float, failures: int, cap_s: float) -> float:
    """Seconds to wait before the next cycle: the interval counted from the last start,
    doubled for each consecutive failure, never more than the cap."""
    if failures <= 0:
        return max(0.0, interval_s - elapsed_s)
    return float(min(cap_s, interval_s * 2**failures))


def pause_reason(ctx: Context, session: str) -> str | None:
    """Why no cycle may start now, or None."""
    for flag in (ctx.paths.pause_flag(), ctx.paths.pause_flag(session)):
        if flag.exists():
            note = flag.read_text(errors="replace").strip()
            return f"paused ({flag.name})" + (f": {note}" if note else "")
    try:
        gates = json.loads(ctx.paths.gates_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    closed = {k: v for k, v in (gates.get("closed") or {}).items() if v} if isinstance(gates, dict) else {}
    if closed:
        return "gate closed: " + "; ".join(f"{k}: {v}" for k, v in closed.items())
    return None


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM/SIGINT raise StopRequested once; later signals are ignored while we clean up."""
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise StopRequested(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


class Loop:
    def __init__(
        self,
        ctx: Context,
        session: str,
        *,
        out: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
        max_cycles: int | None = None,
    ) -> None:
        self.ctx = ctx
        self.session = ctx.session(session)
        self.out = out
        self.sleep = sleep
        self.max_cycles = max_cycles
        self.failures = 0
        self.cycles = 0
        self.waits: list[float] = []

    def say(self, text: str) -> None:
        now: datetime = self.ctx.clock()
        self.out(f"{now:%H:%M:%S} {self.session} {text}")

    def run(self) -> int:
        settings = self.ctx.settings.cycle
        self.say(f"loop started: a cycle every {settings.interval_s}s")
        try:
            with stop_on_signals():
                while self.max_cycles is None or self.cycles < self.max_cycles:
                    self._wait_while_paused()
                    started = time.monotonic()
                    report = self._one_cycle()
                    self.failures = self.failures + 1 if report.verdict == "failed" else 0
                    if self.max_cycles is not None and self.cycles >= self.max_cycles:
                        break
                    delay = next_delay(settings.interval_s, time.monotonic() - started, self.failures,
                                       settings.backoff_max_s)  # fmt: skip
                    self.waits.append(delay)
                    if self.failures:
                        self.say(f"{self.failures} failed cycle(s) in a row: backing off {delay:.0f}s")
                    self.say(f"next cycle in {delay:.0f}s")
                    self._mark("sleeping")
                    self.sleep(delay)
        except StopRequested as stop:
            self.say(f"stopping ({stop}); no half-made branch left behind")
            self._mark("stopped")
            return 0
        self._mark("stopped")
        return 0

    def _one_cycle(self) -> CycleReport:
        self.cycles += 1
        self.say(f"cycle {self.cycles} starting")
        report = Cycle(self.ctx, self.session, progress=lambda text: self.say(f"  {text}")).run()
        took = report.durations.get("total_s", 0.0)
        cost = report.agent.cost_usd if report.agent else 0.0
        self.say(f"cycle {self.cycles}: {report.verdict} - {report.reason} ({took:.1f}s, ${cost:.2f})")
        return report

    def _wait_while_paused(self) -> None:
        shown = None
        while (reason := pause_reason(self.ctx, self.session)) is not None:
            if reason != shown:
                self.say(f"waiting: {reason}")
                self._mark("paused")
                shown = reason
            self.sleep(PAUSE_POLL_S)

    def _mark(self, state: str, **extra: Any) -> None:
        with self.ctx.sessions_store().update() as doc:
            entry = doc.setdefault(self.session, {})
            entry.update(state=state, heartbeat=format_ts(self.ctx.clock()), failures=self.failures)
            entry.update({k: v for k, v in extra.items() if v is not None})
