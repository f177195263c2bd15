"""The shared state out of reach: say so once, wait with a bounded backoff, say when it is back.

A worker's loop and scheduler cannot record what they do while PostgreSQL is down (a restart,
a network cut): they start nothing, print one line per outage, try again after 1, 2, 4 ...
seconds (at most OUTAGE_BACKOFF_MAX_S), and go on when it answers again. No traceback.
"""

from __future__ import annotations

from collections.abc import Callable

from factoryctl.core.defaults import OUTAGE_BACKOFF_MAX_S
from factoryctl.core.errors import StateUnreachable


def reason(exc: StateUnreachable) -> str:
    """What went wrong, without the words that say where (the waiting line says that)."""
    text = str(exc)
    if exc.summary and text.startswith(exc.summary) and text != exc.summary:
        return text[len(exc.summary) :].lstrip(": ") or text
    return text


class Outage:
    def __init__(
        self, where: str, say: Callable[[str], None], holding: str, cap_s: float = OUTAGE_BACKOFF_MAX_S
    ) -> None:
        self.where = where  # the backend's describe(): no password
        self.holding = holding  # what waits meanwhile: "no cycle runs until it can be recorded"
        self.say = say
        self.cap_s = cap_s
        self.tries = 0

    @property
    def waiting(self) -> bool:
        return self.tries > 0

    def down(self, exc: StateUnreachable) -> float:
        """Note one failed try (the first says so); the seconds to wait before the next."""
        if self.tries == 0:
            self.say(f"waiting for the shared state at {self.where}: {reason(exc)}; {self.holding}")
        self.tries += 1
        return float(min(self.cap_s, 2 ** (self.tries - 1)))

    def up(self) -> None:
        """The state answers again: said once, if it was out of reach."""
        if self.tries:
            self.say(f"the shared state at {self.where} is back (after {self.tries} tries); going on")
        self.tries = 0
