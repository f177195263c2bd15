"""sessions.json (a state file, or a PostgreSQL document): what each session is doing, and since when.

The loop and the cycle write (`beat`); the scheduler, `status` and `sessions list` read.
A session whose entry is not a JSON object reads as empty (a person's hand edit, a crash).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from factoryctl.core.clock import format_ts
from factoryctl.core.records import as_dict
from factoryctl.state.stores import JsonStore

if TYPE_CHECKING:
    from factoryctl.state.backend import Document


class Heartbeats:
    def __init__(self, store: Path | Document, clock: Callable[[], datetime]) -> None:
        self.store = JsonStore(store, dict) if isinstance(store, Path) else store
        self.clock = clock

    def read(self) -> dict[str, dict[str, Any]]:
        return {str(name): as_dict(entry) for name, entry in as_dict(self.store.read()).items()}

    def of(self, session: str) -> dict[str, Any]:
        return self.read().get(session, {})

    def touch(self, session: str) -> None:
        """Refresh `session`'s heartbeat, its state unchanged: its loop is alive (a long cycle, a wait)."""
        with self.store.update() as doc:
            entry = as_dict(doc.get(session))
            doc[session] = entry
            entry.update(pid=os.getpid(), host=socket.gethostname(), heartbeat=format_ts(self.clock()))
            entry.setdefault("state", "idle")

    def beat(self, session: str, state: str, **fields: Any) -> None:
        """`session` is in `state` now (its heartbeat); `fields` are stored with it, a None removes one."""
        now = format_ts(self.clock())
        with self.store.update() as doc:
            entry = as_dict(doc.get(session))
            doc[session] = entry
            # The host says whose pid it is once several hosts share the state (a pid means nothing elsewhere).
            entry.update(state=state, pid=os.getpid(), host=socket.gethostname(), heartbeat=now)
            if state == "cycle":
                entry["cycle_started"] = now
            for key, value in fields.items():
                if value is None:
                    entry.pop(key, None)
                else:
                    entry[key] = value
