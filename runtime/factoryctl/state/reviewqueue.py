"""The review queue (state/review-queue.json): pushed branches waiting for the merge gate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from factoryctl.core.clock import format_ts
from factoryctl.state.stores import JsonStore

STATUSES = ("pending", "approved", "rejected")


def add_pending(store: JsonStore, entry: Mapping[str, Any], now: Any) -> None:
    """Queue a pushed branch for review (once: a branch already queued is updated)."""
    record = {**entry, "status": "pending", "queued": format_ts(now), "reasons": []}
    with store.update() as doc:
        branches = doc.setdefault("branches", [])
        for existing in branches:
            if existing.get("branch") == record["branch"]:
                existing.update(record)
                break
        else:
            branches.append(record)
