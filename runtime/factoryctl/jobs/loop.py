"""`factoryctl loop SESSION`: a cycle every cycle.interval_s, forever, in a tmux pane.

Waits while paused (a global or per-session flag, or a hold the scheduler put on new cycles), backs
off exponentially after consecutive failed cycles, and ends cleanly on SIGTERM/SIGINT:
the cycle under way drops its unpushed branch before the loop exits.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from factoryctl.adapters.agent import Agent
from factoryctl.core.clock import format_ts
from factoryctl.core.defaults import HEARTBEAT_S, PAUSE_POLL_S
from factoryctl.core.errors import AlreadyRunning, FactoryError, StateUnreachable
from factoryctl.core.records import Alert, CycleVerdict
from factoryctl.core.signals import StopRequested, stop_on_signals
from factoryctl.jobs.context import Context
from factoryctl.jobs.cycle import Cycle, CycleReport
from factoryctl.jobs.outage import Outage
from factoryctl.rules.budget import agent_spec
from factoryctl.rules.words import plural


def next_delay(interval_s: float, elapsed_s: float, failures: int, cap_s: float) -> float:
    """Seconds to wait before the next cycle: the interval counted from the last start,
    doubled for each consecutive failure, never more than the cap."""
    if failures <= 0:
        return max(0.0, interval_s - elapsed_s)
    return float(min(cap_s, interval_s * 2**failures))


def pause_reason(ctx: Context, session: str) -> str | None:
    """Why no cycle may start now, or None: a pause, a hold of its host on every session, or one on this session.

    StateUnreachable when the shared state cannot be reached: a cycle it cannot record must not run
    (it would spend blind), so the loop waits for it (`Outage`).
    """
    ctx.state.check()
    return ctx.pauses().why(session) or ctx.holds().hold(session)


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
        self.session = ctx.local_session(session)
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
            with stop_on_signals(), self._beating():
                while self.max_cycles is None or self.cycles < self.max_cycles:
                    self._wait_while_paused()
                    started = time.monotonic()
                    self.failures = self.failures + 1 if self._cycle_failed() else 0
                    if self.max_cycles is not None and self.cycles >= self.max_cycles:
                        break
                    delay = next_delay(settings.interval_s, time.monotonic() - started, self.failures,
                                       settings.backoff_max_s)  # fmt: skip
                    self.waits.append(delay)
                    if self.failures:
                        self.say(f"{plural(self.failures, 'failed cycle')} in a row: backing off {delay:.0f} s")
                    self.say(f"next cycle in {delay:.0f}s")
                    # the next cycle's time: a long backoff is announced, not taken for a frozen loop
                    self._mark("sleeping", next_cycle=format_ts(self.ctx.clock() + timedelta(seconds=delay)))
                    self.sleep(delay)
        except StopRequested as stop:
            self.say(f"stopping ({stop}); no half-made branch left behind")
            self._mark("stopped")
            return 0
        self._mark("stopped")
        return 0

    def _cycle_failed(self) -> bool:
        """Run a cycle; whether it failed. Whatever goes wrong in it, the loop goes on (and backs off)."""
        try:
            return self._one_cycle().verdict is CycleVerdict.FAILED
        except AlreadyRunning as exc:  # a person runs `factoryctl cycle` on this session right now
            self.say(f"skipped: {exc}")
            return False
        except StateUnreachable as exc:  # lost mid-cycle: the next wait says so until it is back
            self.say(f"cycle {self.cycles} stopped: {exc}")
            return True
        except Exception as exc:  # a broken prompt template, a full disk: say it, back off, go on
            self.say(f"cycle {self.cycles} crashed: {type(exc).__name__}: {exc}")
            text = f"{self.session}: its cycle crashed: {type(exc).__name__}: {exc}"[:500]
            self.ctx.alerts().send(Alert(f"loop-crash:{self.session}", text, session=self.session))
            return True

    def _one_cycle(self) -> CycleReport:
        self.cycles += 1
        mode = self.ctx.holds().agent
        agent = None if mode is None else Agent(agent_spec(self.ctx.settings, mode), self.ctx.log)
        self.say(f"cycle {self.cycles} starting" + ("" if agent is None else " (budget degraded: the cheaper agent)"))
        report = Cycle(self.ctx, self.session, agent=agent, progress=lambda text: self.say(f"  {text}")).run()
        took = report.durations.get("total_s", 0.0)
        cost = report.agent.cost_usd if report.agent else 0.0
        self.say(f"cycle {self.cycles}: {report.verdict} - {report.reason} ({took:.1f}s, ${cost:.2f})")
        return report

    @contextlib.contextmanager
    def _beating(self) -> Iterator[None]:
        """Refresh the heartbeat every HEARTBEAT_S while the loop runs (a long agent call, a long
        wait): the gate takes a session silent for `[fleet] lost_after_s` for lost."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(HEARTBEAT_S):
                with contextlib.suppress(FactoryError):  # out of reach: the pane says so, not this thread
                    self.ctx.heartbeats().touch(self.session)

        thread = threading.Thread(target=beat, name=f"heartbeat-{self.session}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=5)

    def _wait_while_paused(self) -> None:
        shown = None
        outage = Outage(self.ctx.state.describe(), self.say, "no cycle runs until it can be recorded")
        # A tiny cycle interval (tests, demos) also means noticing a lifted hold quickly.
        poll = min(PAUSE_POLL_S, float(self.ctx.settings.cycle.interval_s))
        while True:
            try:
                reason = pause_reason(self.ctx, self.session)
            except StateUnreachable as exc:
                self.sleep(outage.down(exc))
                continue
            outage.up()
            if reason is None:
                return
            if reason != shown:
                self.say(f"waiting: {reason}")
                self._mark("paused", waiting=reason)
                shown = reason
            self.sleep(poll)

    def _mark(self, state: str, waiting: str | None = None, next_cycle: str | None = None) -> None:
        """Say what the loop does in its heartbeat; with the state out of reach the pane says it instead."""
        with contextlib.suppress(StateUnreachable):
            self.ctx.heartbeats().beat(
                self.session, state, failures=self.failures, waiting=waiting, next_cycle=next_cycle
            )
