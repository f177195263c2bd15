"""The factory's outcome figures: pure functions over the events of a window.

What the factory tried (cycles), what it threw away (discarded and failed cycles,
branches rejected at the gate) and what it cost (dollars and tokens), per window and
per session. The caller reads the window from the end of the log (so the cost stays
flat in log size) and hands the events in, newest or oldest first: order does not matter.

    figures = outcomes(events, since=..., until=...)   # Outcomes: .as_dict(), .line()
    series = daily(events, days=14, now=now)          # list[Day] for the plots
    hours = hourly(events, hours=24, now=now)          # list[Hour]: cycles by verdict

Definitions (the one place they are written down):
- discard rate: the share of finished cycles whose work did not reach the review queue
  (discarded or failed); interrupted cycles are not counted as tried.
- landed: a `cto_review` event with verdict `approve` and a `landed` commit; rejected:
  verdict `reject`, grouped by the reason's kind (see `REJECT_KINDS`).
- spend and tokens: the sum over `agent_call` events (every model call: cycles, the
  reviewer, standups); per landed change: that sum divided by the landings.
- push to land: from the `ralph_cycle` that pushed a branch (or the review queue's
  `queued` time, passed in as `pushed_at`) to the `cto_review` that landed it.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from factoryctl.core.clock import format_ts
from factoryctl.core.records import LogEvent

CYCLE, REVIEW, CALL, RUN = "ralph_cycle", "cto_review", "agent_call", "review_run"
TYPES = frozenset({CYCLE, REVIEW, CALL, RUN})  # the event types the figures read
VERDICTS = ("pushed", "discarded", "failed", "interrupted")

# A number from the log larger than these is treated as garbage, not as a figure.
MAX_USD = 1_000_000.0
MAX_TOKENS = 10**12
MAX_SECONDS = 10 * 365 * 86400.0

# (kind, text the reason starts with or contains), first match wins; else the last kind.
DISCARD_KINDS = (
    ("no_change", "no change"),
    ("checks_worse", "checks got worse"),
    ("protected_paths", "touches protected paths"),
    ("cancelled", "was cancelled"),
    ("agent_misbehaved", "the agent"),
)
REJECT_KINDS = (
    ("conflict", "conflict with"),
    ("checks_worse", "checks got worse"),
    ("protected_paths", "touches protected paths"),
    ("person", "rejected by a person"),
    ("branch_changed", "the branch"),
)


KEPT = frozenset({
    "verdict", "reason", "agent_outcome", "durations", "baseline_computed", "branch", "purpose",
    "cost_usd", "input_tokens", "output_tokens", "check_runs", "landed", "reasons", "text", "key", "message",
})  # fmt: skip


def shrink(data: Mapping[str, Any]) -> dict[str, Any]:
    """What the figures (and the page) read of an event's data; a long-lived reader keeps only this."""
    out = {k: sys.intern(v) if isinstance(v, str) and len(v) <= 24 else v for k, v in data.items() if k in KEPT}
    for name in ("after", "before"):  # only how many checks ran counts
        value = data.get(name)
        if isinstance(value, Mapping):
            out[name] = tuple(sys.intern(str(k)) for k in value)
    durations = data.get("durations")
    if isinstance(durations, Mapping):
        out["durations"] = {"total_s": durations.get("total_s")}
    reason = out.get("reason")
    if isinstance(reason, str) and len(reason) > 200:
        out["reason"] = reason[:200]
    return out


def number(value: object, limit: float) -> float:
    """A figure from the log: finite, 0 <= x <= limit; anything else counts as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    x = float(value)
    return x if math.isfinite(x) and 0.0 <= x <= limit else 0.0


def kind_of(reason: str, kinds: tuple[tuple[str, str], ...], other: str) -> str:
    for kind, needle in kinds:
        if needle in reason:
            return kind
    return other


@dataclass
class _Tally:
    """Running sums for one window (or one session in it)."""

    verdicts: Counter[str] = field(default_factory=Counter)
    discarded: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    landed: int = 0
    durations: list[float] = field(default_factory=list)
    check_runs: int = 0
    review_runs: int = 0
    usd: float = 0.0
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    push_to_land: list[float] = field(default_factory=list)

    def cycle(self, data: Mapping[str, Any]) -> None:
        verdict = str(data.get("verdict"))
        verdict = verdict if verdict in VERDICTS else "failed"
        self.verdicts[verdict] += 1
        reason = str(data.get("reason") or "")
        if verdict == "discarded":
            self.discarded[kind_of(reason, DISCARD_KINDS, "other")] += 1
        elif verdict == "failed":
            outcome = data.get("agent_outcome")
            self.failed[outcome if isinstance(outcome, str) and outcome != "success" else "error"] += 1
        durations = data.get("durations")
        if isinstance(durations, Mapping) and "total_s" in durations:
            self.durations.append(number(durations["total_s"], MAX_SECONDS))
        after, before = data.get("after"), data.get("before")
        # One unit everywhere: a check run is one run of the configured checks (as the gate counts).
        self.check_runs += 1 if isinstance(after, Mapping | tuple) and after else 0
        if data.get("baseline_computed") is True and isinstance(before, Mapping | tuple) and before:
            self.check_runs += 1

    def call(self, data: Mapping[str, Any]) -> None:
        self.calls += 1
        self.usd += number(data.get("cost_usd"), MAX_USD)
        self.input_tokens += int(number(data.get("input_tokens"), MAX_TOKENS))
        self.output_tokens += int(number(data.get("output_tokens"), MAX_TOKENS))

    def as_dict(self, days: float) -> dict[str, Any]:
        finished = self.verdicts["pushed"] + self.verdicts["discarded"] + self.verdicts["failed"]
        thrown = self.verdicts["discarded"] + self.verdicts["failed"]
        tokens = self.input_tokens + self.output_tokens
        per = (lambda x: round(x / self.landed, 4)) if self.landed else (lambda x: None)
        return {
            "cycles": sum(self.verdicts.values()),
            "verdicts": {v: self.verdicts[v] for v in VERDICTS},
            "discarded_by_reason": dict(self.discarded.most_common()),
            "failed_by_outcome": dict(self.failed.most_common()),
            "discard_rate": round(thrown / finished, 4) if finished else None,
            "landed": self.landed,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected.most_common()),
            "merges_per_day": round(self.landed / days, 3) if days > 0 else None,
            "review_runs": self.review_runs,
            "check_runs": self.check_runs,
            "cycle_s": {
                "mean": round(statistics.fmean(self.durations), 1) if self.durations else None,
                "median": round(statistics.median(self.durations), 1) if self.durations else None,
            },
            "spend_usd": round(self.usd, 4),
            "agent_calls": self.calls,
            "tokens": {"input": self.input_tokens, "output": self.output_tokens, "total": tokens},
            "usd_per_landed": per(self.usd),
            "tokens_per_landed": per(tokens),
            "push_to_land_s": {
                "median": round(statistics.median(self.push_to_land), 1) if self.push_to_land else None,
                "max": round(max(self.push_to_land), 1) if self.push_to_land else None,
            },
        }


@dataclass(frozen=True)
class Outcomes:
    """The figures of one window: the whole factory and each session."""

    since: str
    until: str
    total: Mapping[str, Any]
    sessions: Mapping[str, Mapping[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"since": self.since, "until": self.until, **self.total, "by_session": dict(self.sessions)}

    def line(self, label: str = "today") -> str:
        """The one-line summary `factoryctl status` and the bot show."""
        t = self.total
        if not t["cycles"] and not t["landed"]:
            return f"{label}: no cycles yet"
        rate = "-" if t["discard_rate"] is None else f"{t['discard_rate'] * 100:.0f} %"
        per = "nothing landed yet" if t["usd_per_landed"] is None else f"${t['usd_per_landed']:.2f} per landed change"
        cycles = f"{t['cycles']} cycle" + ("" if t["cycles"] == 1 else "s")
        return f"{label}: {cycles}, {t['landed']} landed, discard rate {rate}, {per}"


def outcomes(
    events: Iterable[LogEvent],
    *,
    since: datetime,
    until: datetime,
    pushed_at: Mapping[str, str] | None = None,
) -> Outcomes:
    """The outcome figures of the events in [since, until]; others are ignored."""
    lo, hi = format_ts(since), format_ts(until)
    total, per = _Tally(), defaultdict[str, _Tally](_Tally)
    pushed: dict[str, str] = dict(pushed_at or {})
    landings: list[tuple[str, str, str | None]] = []
    for event in events:
        if not lo <= event.ts <= hi or event.type not in TYPES:
            continue
        data, who = event.data, event.session
        tallies = (total, per[who]) if who else (total,)
        if event.type == CYCLE:
            for t in tallies:
                t.cycle(data)
            if data.get("verdict") == "pushed" and isinstance(data.get("branch"), str):
                pushed[data["branch"]] = event.ts
        elif event.type == CALL:
            for t in tallies:
                t.call(data)
        elif event.type == RUN:
            total.review_runs += 1
            total.check_runs += int(number(data.get("check_runs"), 10**6))
        elif data.get("verdict") == "approve" and data.get("landed"):
            for t in tallies:
                t.landed += 1
            landings.append((str(data.get("branch")), event.ts, who))
        elif data.get("verdict") == "reject":
            reasons = data.get("reasons")
            first = str(reasons[0]) if isinstance(reasons, list) and reasons else ""
            for t in tallies:
                t.rejected[kind_of(first, REJECT_KINDS, "reviewer")] += 1
    for branch, landed_ts, who in landings:
        start = pushed.get(branch)
        if start is None:
            continue
        try:
            took = (_when(landed_ts) - _when(start)).total_seconds()
        except ValueError:
            continue
        if 0 <= took <= MAX_SECONDS:
            total.push_to_land.append(took)
            if who:
                per[who].push_to_land.append(took)
    days = (until - since).total_seconds() / 86400
    return Outcomes(lo, hi, total.as_dict(days), {s: per[s].as_dict(days) for s in sorted(per)})


def _when(ts: str) -> datetime:
    """A log timestamp as a time (fromisoformat: strptime costs ten times as much)."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Day:
    """One UTC day of the plots."""

    day: str
    verdicts: Mapping[str, int]
    landed: int
    discard_rate: float | None
    usd: float
    tokens: int
    check_runs: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Hour:
    """One hour of the cycles plot: cycles by verdict."""

    start: str
    verdicts: Mapping[str, int]


def daily(events: Iterable[LogEvent], *, days: int, now: datetime) -> list[Day]:
    """Per UTC day, the last `days` days up to today (oldest first), for the plots."""
    first = (now - timedelta(days=days - 1)).strftime("%Y-%m-%d")
    tallies: dict[str, _Tally] = {}
    for event in events:
        key = event.ts[:10]
        if key < first or event.type not in TYPES:
            continue
        t = tallies.setdefault(key, _Tally())
        if event.type == CYCLE:
            t.cycle(event.data)
        elif event.type == CALL:
            t.call(event.data)
        elif event.type == RUN:
            t.check_runs += int(number(event.data.get("check_runs"), 10**6))
        elif event.data.get("verdict") == "approve" and event.data.get("landed"):
            t.landed += 1
    out = []
    for i in range(days - 1, -1, -1):
        key = (now - timedelta(days=i)).strftime("%Y-%m-%d")
        out.append(day_from(key, tallies.get(key, _Tally()).as_dict(1.0)))
    return out


def day_from(day: str, figures: Mapping[str, Any]) -> Day:
    """One day of the plots from that day's figures (`Outcomes.total` since its midnight)."""
    return Day(
        day=day,
        verdicts=figures["verdicts"],
        landed=figures["landed"],
        discard_rate=figures["discard_rate"],
        usd=figures["spend_usd"],
        tokens=figures["tokens"]["total"],
        check_runs=figures["check_runs"],
    )


def hourly(events: Iterable[LogEvent], *, hours: int, now: datetime) -> list[Hour]:
    """Cycles per hour by verdict, the last `hours` hours (oldest first)."""
    top = now.replace(minute=0, second=0, microsecond=0)
    keys = [format_ts(top - timedelta(hours=i))[:13] for i in range(hours - 1, -1, -1)]
    counts: dict[str, Counter[str]] = {k: Counter() for k in keys}
    for event in events:
        bucket = counts.get(event.ts[:13])
        if bucket is not None and event.type == CYCLE:
            verdict = str(event.data.get("verdict"))
            bucket[verdict if verdict in VERDICTS else "failed"] += 1
    return [Hour(k + ":00Z", {v: counts[k][v] for v in VERDICTS}) for k in keys]


def check_runs_per_cycle(days: Iterable[Day]) -> list[float | None]:
    """Check runs (cycles' and the gate's) per cycle, per day; None on a day with no cycle."""
    out: list[float | None] = []
    for d in days:
        cycles = sum(d.verdicts.values())
        out.append(round(d.check_runs / cycles, 2) if cycles else None)
    return out
