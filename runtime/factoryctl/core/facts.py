"""Facts read from the machine by the adapters (tmux panes, PM2 apps, a resource reading).

Plain values, so that the pure rules can take them without importing an adapter.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Pane:
    """The first pane of a session: its process, and whether that process has ended."""

    session: str
    pid: int
    dead: bool
    created: int  # epoch seconds

    @property
    def alive(self) -> bool:
        return not self.dead and self.pid > 0


@dataclass(frozen=True)
class App:
    """One PM2 app as the watchdog sees it."""

    name: str
    pm_id: int
    status: str  # online | stopping | stopped | launching | errored | one-launch-status | waiting restart
    restarts: int
    pid: int = 0


@dataclass(frozen=True)
class Reading:
    """What the machine looks like now; tests build one by hand instead of sampling."""

    ram_percent: float
    swap_percent: float = 0.0
    load1: float = 0.0
    cpus: int = 1
    disk_free_gb: float = 1000.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}
