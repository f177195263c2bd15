"""What the bot tells the allow-listed chats about new events: a pure decision.

New events in, notices out: every `alert` (each key at most once per ALERT_QUIET, even
when a job appended it without going through `Alerts`), a branch waiting for a person
(with Approve/Reject buttons), and one "landed on main" note per batch of landings.
The notifier carries them out and keeps its cursor; this module only decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from factoryctl.core.clock import format_ts, parse_ts
from factoryctl.core.defaults import ALERT_QUIET
from factoryctl.core.records import LogEvent


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


# An alert's severity from its key's first part, unless the event says.
_SEVERITY = {"crashloop": Severity.CRITICAL, "main": Severity.CRITICAL, "broken_main": Severity.CRITICAL,
             "budget": Severity.WARNING, "stuck": Severity.WARNING, "stalled": Severity.WARNING,
             "resources": Severity.WARNING}  # fmt: skip


@dataclass(frozen=True)
class Notice:
    key: str
    title: str
    text: str
    severity: Severity = Severity.INFO
    branch: str | None = None  # set: the message gets Approve/Reject buttons for this branch


@dataclass(frozen=True)
class NoticeDecision:
    notices: tuple[Notice, ...]
    sent: Mapping[str, str]  # alert key -> when it was last delivered, pruned to the quiet period


@dataclass(frozen=True)
class NoticeRules:
    landings: bool = True
    quiet: timedelta = ALERT_QUIET


def severity_of(event: LogEvent) -> Severity:
    given = event.data.get("severity")
    if isinstance(given, str) and given in Severity.__members__.values():
        return Severity(given)
    key = str(event.data.get("key", ""))
    return _SEVERITY.get(key.split(":")[0], Severity.WARNING)


# The team's meetings, told in a line or two (their transcripts and reports stay on the host).
SUMMARIES = {"team_standup": "Standup", "doctor_analysis": "Session doctor"}
SUMMARY_CHARS = 1500


def decide(events: Sequence[LogEvent], sent: Mapping[str, str], now: datetime, rules: NoticeRules) -> NoticeDecision:
    """The notices for `events` (oldest first), given when each alert key was last delivered."""
    horizon = format_ts(now - rules.quiet)
    last = {k: v for k, v in sent.items() if v >= horizon}
    notices: list[Notice] = []
    landed: list[str] = []
    for event in events:
        if event.type == "alert":
            key = str(event.data.get("key") or "alert")
            if key in last and last[key] >= format_ts(_parse(event.ts) - rules.quiet):
                continue
            last[key] = event.ts
            text = str(event.data.get("message") or event.data.get("text") or key)
            severity = severity_of(event)
            notices.append(Notice(f"alert:{key}", f"{severity.value.upper()}: {key}", text, severity))
        elif event.type == "cto_review" and event.data.get("verdict") == "awaiting_human":
            branch = str(event.data.get("branch", ""))
            reasons = event.data.get("reasons") or []
            why = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) else ""
            text = f"{branch} (session {event.data.get('session') or '?'}) waits for a person." + (
                f"\nReviewer: {why}" if why else ""
            )
            notices.append(Notice(f"awaiting:{branch}", "Review waits for you", text, Severity.INFO, branch))
        elif event.type in SUMMARIES and not event.data.get("skipped") and event.data.get("summary"):
            title = SUMMARIES[event.type]
            notices.append(Notice(f"{event.type}:{event.ts}", title, str(event.data["summary"])[:SUMMARY_CHARS]))
        elif event.type == "cto_review" and event.data.get("verdict") == "approve" and event.data.get("landed"):
            landed.append(f"{event.data.get('branch')} -> {str(event.data.get('landed'))[:10]}")
    if landed and rules.landings:
        notices.append(Notice("landed", "Landed on main", "\n".join(landed)))
    return NoticeDecision(tuple(notices), last)


def _parse(ts: str) -> datetime:
    try:
        return parse_ts(ts)
    except ValueError:  # a hand-edited line: treat it as ancient
        return parse_ts("1970-01-01T00:00:00.000Z")
