"""A factory home with history: weeks of cycles, reviews and agent calls in the log (written as
the log's own lines, fast enough for a million events), tasks, a review queue and heartbeats."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from factoryctl.core.clock import format_ts
from factoryctl.jobs.context import Context

DISCARDS = ["no change", "checks got worse: pytest: failed tests 0 -> 2", "touches protected paths: package-lock.json"]
REJECTS = ["conflict with main in: src/app.ts", "checks got worse on the merge result: tsc: errors 0 -> 3",
           "the change mixes a refactor with a feature"]  # fmt: skip


def events(start: datetime, end: datetime, sessions: int = 4, seed: int = 7,
           every: timedelta = timedelta(minutes=15)) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Time-ordered events: per session a cycle every `every` (agent_call + ralph_cycle), a review every 2 h."""
    rng = random.Random(seed)
    step = every / sessions
    t, n, pushed = start, 0, []
    while t < end:
        n += 1
        s = f"s{n % sessions + 1}"
        day_bias = (t.toordinal() % 7) / 14  # some days throw more away than others
        roll = rng.random()
        verdict = "pushed" if roll < 0.35 - day_bias / 2 else "discarded" if roll < 0.93 else "failed"
        branch = f"brl/{s}/{t.strftime('%Y%m%dT%H%M%SZ')}"
        usage = {"input_tokens": rng.randint(20_000, 90_000), "output_tokens": rng.randint(1000, 8000)}
        call = {"purpose": "cycle", "outcome": "success", "cost_usd": round(rng.uniform(0.02, 0.4), 4), **usage}
        yield {"ts": format_ts(t), "type": "agent_call", "session": s, "data": call}
        yield {"ts": format_ts(t + timedelta(seconds=1)), "type": "ralph_cycle", "session": s,
               "data": {"verdict": verdict, "branch": branch if verdict == "pushed" else None,
                        "reason": "checks held; queued for review" if verdict == "pushed"
                        else rng.choice(DISCARDS) if verdict == "discarded" else "agent call failed: timeout",
                        "agent_outcome": "timeout" if verdict == "failed" else "success",
                        "after": {"tsc": {}, "vitest": {}}, "baseline_computed": False,
                        "durations": {"total_s": rng.uniform(240, 900)}, "cost_usd": 0.1}}  # fmt: skip
        if verdict == "pushed":
            pushed.append((branch, s))
        if t.minute < 15 and t.hour % 2 == 0 and pushed and (t - step).hour != t.hour:
            for i, (b, who) in enumerate(pushed):
                approve = rng.random() < 0.6
                yield {"ts": format_ts(t + timedelta(seconds=2 + i)), "type": "cto_review", "session": who,
                       "data": {"branch": b, "verdict": "approve" if approve else "reject",
                                "reasons": ["focused and tested"] if approve else [rng.choice(REJECTS)],
                                "landed": f"{rng.getrandbits(160):040x}" if approve else None}}  # fmt: skip
            yield {"ts": format_ts(t + timedelta(seconds=3 + len(pushed))), "type": "review_run", "session": None,
                   "data": {"branches": len(pushed), "check_runs": 1 + len(pushed) // 3}}  # fmt: skip
            pushed = []
        t += step


def write_log(path: Path, rows: Iterator[dict[str, Any]], limit: int | None = None) -> int:
    """Append the events as the log's own lines; returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")
            n += 1
            if limit is not None and n >= limit:
                break
    return n


def populate(home: Path, now: datetime, days: int = 14) -> Context:
    """Two weeks of a four-session factory, plus open tasks (one with a hostile title) and a queue."""
    (home / "factory.toml").write_text("[factory]\nsessions = 4\n[budget]\ndaily_usd = 40.0\n")
    ctx = Context.load(home)
    write_log(ctx.paths.log_file, events(now - timedelta(days=days), now - timedelta(minutes=5)))
    tasks = ctx.tasks()
    tasks.add("Add CSV export to the report page", priority="high")
    tasks.add('<script>alert("pwned")</script> & <b>bold</b>', body="hostile title, shown as text")
    tasks.add("Speed up the slow vitest suite", priority="low", session="s2")
    with ctx.review_queue().store.update() as doc:
        doc["branches"] = [
            {"branch": "brl/s1/20261130T101500Z", "status": "pending", "session": "s1",
             "queued": format_ts(now - timedelta(minutes=40)), "reasons": []},
            {"branch": "brl/s3/20261130T094500Z", "status": "pending", "session": "s3", "awaiting": "human",
             "queued": format_ts(now - timedelta(hours=2)), "reasons": ["touches CI configuration"]},
        ]  # fmt: skip
    with ctx.heartbeats().store.update() as doc:
        for i in range(1, 5):
            beat = format_ts(now - timedelta(seconds=12 * i))
            last = {"verdict": "discarded", "ended": format_ts(now - timedelta(minutes=3 * i))}
            doc[f"s{i}"] = {"state": "cycle" if i % 2 else "idle", "heartbeat": beat, "last_cycle": last}
    ctx.log.append("alert", data={"key": "budget:degraded", "text": "budget degraded: fewer sessions"})
    return ctx
