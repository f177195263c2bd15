"""GitHub's `issues` webhook: which deliveries become a task (pure; the signature is checked before)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from factoryctl.core.defaults import (
    TASK_MAX_BODY,
    TASK_MAX_TITLE,
    WEBHOOK_DELIVERIES_KEPT,
    WEBHOOK_DELIVERY_ID_CHARS,
    WEBHOOK_DELIVERY_TTL,
)


@dataclass(frozen=True)
class WantedTask:
    title: str
    body: str
    url: str

    @property
    def marker(self) -> str:
        """How the task's body ends: a live task ending so is this issue's (asked again: not queued twice)."""
        return _note(self.url)


def _note(url: str) -> str:
    return f"\n\nFrom GitHub issue {url[:300]}" if url else "\n\nFrom a GitHub issue"


class Deliveries:
    """`X-GitHub-Delivery` ids seen lately: a delivery replayed (by GitHub's retry, a person's
    "redeliver", or someone who captured it) is answered but not acted on again. Bounded in
    number (the oldest forgotten first) and in time; beyond both, tasks are still de-duplicated
    by the issue's URL."""

    def __init__(self, clock: Callable[[], datetime], *, keep: timedelta = WEBHOOK_DELIVERY_TTL,
                 most: int = WEBHOOK_DELIVERIES_KEPT) -> None:  # fmt: skip
        self.clock, self.keep, self.most = clock, keep, most
        self.seen: OrderedDict[str, datetime] = OrderedDict()

    def first_time(self, delivery: str) -> bool:
        """Whether `delivery` is new (and now remembered); an id past the length limit never is."""
        if len(delivery) > WEBHOOK_DELIVERY_ID_CHARS:
            return False
        now = self.clock()
        while self.seen and (len(self.seen) >= self.most or now - next(iter(self.seen.values())) > self.keep):
            self.seen.popitem(last=False)
        if delivery in self.seen:
            return False
        self.seen[delivery] = now
        return True


def task_from_issue_event(event: str, payload: Any, label: str) -> WantedTask | None:
    """An issue just given `label` -> the task to queue; any other delivery -> None (ignored)."""
    if event != "issues" or not isinstance(payload, dict) or payload.get("action") != "labeled":
        return None
    given, issue = payload.get("label"), payload.get("issue")
    if not isinstance(given, dict) or given.get("name") != label or not isinstance(issue, dict):
        return None
    title, body, url = issue.get("title"), issue.get("body"), issue.get("html_url")
    if not isinstance(title, str) or not title.strip():
        return None
    url = url if isinstance(url, str) and url.startswith("https://") else ""
    one_line = " ".join(title.split())
    title = one_line if len(one_line) <= TASK_MAX_TITLE else one_line[: TASK_MAX_TITLE - 1] + "…"
    note = _note(url)
    text = body if isinstance(body, str) else ""
    return WantedTask(title, text[: TASK_MAX_BODY - len(note)] + note, url[:300])
