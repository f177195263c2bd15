"""The status page: what it shows, read from the log's end and the small stores, drawn as HTML.

The plots' past days are cached in memory (a finished UTC day of an append-only log
never changes), so after the first render a page costs one day's events, not fourteen.
Everything from outside (task titles, reasons, branch names) is escaped by Jinja's
autoescape; the template is the package's own file, never text from the factory.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import jinja2

from factoryctl.adapters.git import Git
from factoryctl.core.clock import day_start
from factoryctl.core.defaults import PAGE_DAYS, PAGE_HOURS, PAGE_REFRESH_S
from factoryctl.jobs.context import Context
from factoryctl.jobs.serve import plots
from factoryctl.jobs.serve.recent import Recent
from factoryctl.jobs.sessions import heartbeat_age
from factoryctl.rules import metrics, sentences
from factoryctl.state.eventlog import Event

log = logging.getLogger(__name__)
_GITHUB = re.compile(
    r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)([\w.-]+/[\w.-]+?)(?:\.git)?/?$"
)
_SHA = re.compile(r"^[0-9a-f]{7,64}$")


def commit_url_base(origin_url: str) -> str | None:
    """`https://github.com/OWNER/REPO/commit/` for a GitHub origin, else None (no links)."""
    found = _GITHUB.match(origin_url.strip())
    return f"https://github.com/{found.group(1)}/commit/" if found else None


def short_ts(ts: object) -> str:
    """`2026-11-30T14:03:01.467Z` -> `11-30 14:03` (UTC), for tables read at a glance."""
    text = str(ts or "")
    return f"{text[5:10]} {text[11:16]}" if len(text) >= 16 and text[10:11] == "T" else text


def event_sentence(event: Mapping[str, Any]) -> str:
    """An event record (as `status` reports it) in one sentence, the same as `log tail` says it."""
    return sentences.sentence(Event(**event), 300)


@dataclass
class DayCache:
    """Finished days of the plots, computed once."""

    days: dict[str, metrics.Day] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def series(self, recent: Recent, today: metrics.Day, now: datetime) -> list[metrics.Day]:
        """The last PAGE_DAYS days: finished ones from the cache (filled once), then `today`."""
        wanted = [(now - timedelta(days=i)).strftime("%Y-%m-%d") for i in range(PAGE_DAYS - 1, 0, -1)]
        with self.lock:
            if any(d not in self.days for d in wanted):
                events = recent.since(day_start(now - timedelta(days=PAGE_DAYS - 1)), now) or []
                for day in metrics.daily(events, days=PAGE_DAYS, now=now)[:-1]:
                    self.days.setdefault(day.day, day)
            for stale in [d for d in self.days if d not in wanted]:
                del self.days[stale]
            return [*(self.days[d] for d in wanted), today]


def _short(day: str) -> str:
    return day[5:].replace("-", "/")


def draw_plots(ctx: Context, recent: Recent, days: list[metrics.Day], now: datetime) -> dict[str, str]:
    labels = [_short(d.day) for d in days]
    hours = metrics.hourly(recent.since(now - timedelta(hours=PAGE_HOURS), now) or [], hours=PAGE_HOURS, now=now)
    hour_labels = [h.start[11:16] for h in hours]
    verdicts = [plots.Series(v, [h.verdicts[v] for h in hours], plots.COLORS[v]) for v in metrics.VERDICTS]
    rates = [None if d.discard_rate is None else d.discard_rate * 100 for d in days]
    spend_usd = any(d.usd for d in days)
    budget = ctx.settings.budget.daily_usd
    return {
        "cycles": plots.bars(f"Cycles per hour (UTC), last {PAGE_HOURS} h", hour_labels, verdicts),
        "outcomes": plots.bars(
            f"Landings per day, {PAGE_DAYS} days",
            labels,
            [plots.Series("landed", [d.landed for d in days], plots.COLORS["landed"])],
        ),
        "discard": plots.line(
            "Discard rate per day", labels, plots.Series("discard rate", rates, plots.COLORS["rate"]), unit="%",
            top=100.0,
        ),
        "spend": plots.bars(
            "Spend per day" if spend_usd else "Tokens per day",
            labels,
            [plots.Series("spend" if spend_usd else "tokens", [d.usd if spend_usd else d.tokens for d in days],
                          plots.COLORS["spend"])],
            unit="$" if spend_usd else "",
            limit=(f"budget ${budget:g}", budget) if spend_usd and budget > 0 else None,
        ),
        "checks": plots.line(
            "Check runs per cycle", labels,
            plots.Series("check runs", metrics.check_runs_per_cycle(days), plots.COLORS["checks"]),
        ),
    }  # fmt: skip


def landings(recent: Recent, now: datetime, limit: int = 10) -> list[dict[str, Any]]:
    out = []
    for event in reversed(recent.since(now - timedelta(days=PAGE_DAYS), now) or []):
        if event.type != metrics.REVIEW:
            continue
        sha = event.data.get("landed")
        if event.data.get("verdict") == "approve" and isinstance(sha, str) and _SHA.match(sha):
            out.append({"ts": event.ts, "branch": str(event.data.get("branch")), "sha": sha,
                        "session": event.session, "reasons": event.data.get("reasons") or []})  # fmt: skip
            if len(out) >= limit:
                break
    return out


def alerts(recent: Recent, now: datetime, limit: int = 8) -> list[dict[str, Any]]:
    found = [e.as_dict() for e in recent.since(now - timedelta(days=2), now) or [] if e.type == "alert"]
    return found[-limit:][::-1]


def origin_url(ctx: Context) -> str:
    try:
        done = Git(ctx.repo_dir).run("config", "--get", "remote.origin.url", check=False, timeout=5)
    except Exception:  # a missing repo or git: no links, the page still renders
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


class Page:
    """Renders `GET /`; one per server (it holds the day cache and the origin's link base)."""

    def __init__(self, ctx: Context, recent: Recent | None = None) -> None:
        self.ctx = ctx
        self.recent = recent or Recent(ctx)
        self.cache = DayCache()
        self.env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
        self.env.filters["when"] = short_ts
        self.env.filters["sentence"] = event_sentence
        self.template = self.env.from_string(
            resources.files("factoryctl.jobs.serve").joinpath("templates/page.html").read_text(encoding="utf-8")
        )
        self.login_template = self.env.from_string(
            resources.files("factoryctl.jobs.serve").joinpath("templates/login.html").read_text(encoding="utf-8")
        )
        self.link_base = commit_url_base(origin_url(ctx))

    def render(self) -> str:
        now = self.ctx.clock()
        status = self.recent.status(last=10)
        days = self.cache.series(self.recent, metrics.day_from(now.strftime("%Y-%m-%d"), status.today), now)
        queue = [e.as_dict() for e in self.ctx.review_queue().read().pending()]
        tasks = sorted((t for t in self.ctx.tasks().all() if t.status in ("queued", "assigned", "in_progress")),
                       key=lambda t: t.sort_key())  # fmt: skip
        beats = self.ctx.heartbeats().read()
        ages = {name: heartbeat_age(entry, now) for name, entry in beats.items()}
        return self.template.render(
            now=status.now, refresh=PAGE_REFRESH_S, status=status, today=status.today, queue=queue[:30],
            tasks=tasks[:30], landings=landings(self.recent, now), alerts=alerts(self.recent, now),
            plots=draw_plots(self.ctx, self.recent, days, now), link_base=self.link_base,
            ages=ages,
        )  # fmt: skip

    def warm(self) -> None:
        """Read the window and fill the plots' cache now, so the first visitor does not wait for it."""
        try:
            self.render()
        except Exception as exc:  # the page itself will say what is wrong when someone opens it
            log.warning("warming the status page failed: %s", exc)

    def login(self, failed: bool = False) -> str:
        return self.login_template.render(failed=failed)
