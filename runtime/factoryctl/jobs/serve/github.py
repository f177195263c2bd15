"""GitHub's `issues` webhook: which deliveries become a task (pure; the signature is checked before)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from factoryctl.core.defaults import TASK_MAX_BODY, TASK_MAX_TITLE


@dataclass(frozen=True)
class WantedTask:
    title: str
    body: str
    url: str


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
    note = f"\n\nFrom GitHub issue {url[:300]}" if url else "\n\nFrom a GitHub issue"
    text = body if isinstance(body, str) else ""
    return WantedTask(title, text[: TASK_MAX_BODY - len(note)] + note, url[:300])
