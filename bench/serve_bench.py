"""Benchmark `factoryctl serve` and `factoryctl report` on a 1,000,000-event log (and a small one).

    .venv/bin/python bench/serve_bench.py [--events 1000000] [--requests 60] [--runs 5]

An eight-session factory's log (a cycle per session every 15 minutes: ~1,700 events a
day, so a million events reach back ~1.6 years), served by the real `factoryctl serve`
on 127.0.0.1. Prints medians and p95 (the machine is shared and noisy). Targets:
/api/status p95 <= 100 ms, page render <= 300 ms, `report --since 24h` <= 0.5 s and flat
in log size, the server's resident memory <= 100 MB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from factoryctl.jobs.context import Context
from factoryctl.jobs.outcomes import report_dict
from tests.populate import events, write_log
from tests.serving import TOKEN, serving

BIN = Path(sys.executable).parent
SESSIONS = 8
PER_DAY = 1700  # roughly what events() writes per day for eight sessions


def make_home(root: Path, n_events: int, now: datetime) -> Path:
    home = root / f"home-{n_events}"
    log = home / "state" / "experiment-log.jsonl"
    if log.exists():  # --keep: the log of an earlier run (it ends when that run made it)
        print(f"  log: kept from an earlier run, {log.stat().st_size / 1e6:.0f} MB")
        return home
    home.mkdir(parents=True)
    (home / "factory.toml").write_text(f"[factory]\nsessions = {SESSIONS}\n[budget]\ndaily_usd = 150.0\n")
    start = now - timedelta(days=n_events / PER_DAY * 1.05)
    t0 = time.perf_counter()
    written = write_log(home / "state" / "experiment-log.jsonl",
                        tail_of(events(start, now, sessions=SESSIONS), n_events), None)  # fmt: skip
    size = (home / "state" / "experiment-log.jsonl").stat().st_size
    print(f"  log: {written:,} events, {size / 1e6:.0f} MB, written in {time.perf_counter() - t0:.0f} s")
    return home


def tail_of(rows: object, n: int) -> list[dict[str, object]]:
    """The last n events (so the log ends now whatever its size)."""
    from collections import deque

    return list(deque(rows, maxlen=n))  # type: ignore[call-overload]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed_get(url: str) -> float:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as resp:
        resp.read()
        assert resp.status == 200
    return time.perf_counter() - t0


def report_wall(home: Path, runs: int) -> list[float]:
    env = {**os.environ, "FACTORY_HOME": str(home)}
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run([str(BIN / "factoryctl"), "report", "--since", "24h", "--json"], env=env,
                              capture_output=True, text=True)  # fmt: skip
        out.append(time.perf_counter() - t0)
        assert done.returncode == 0, done.stderr
    return out


def bench(home: Path, requests: int, runs: int) -> dict[str, float]:
    with serving(home) as srv:
        first_page = timed_get(srv.url + "/")  # fills the plots' day cache
        status = [timed_get(srv.url + "/api/status") for _ in range(requests)]
        page = [timed_get(srv.url + "/") for _ in range(max(10, requests // 3))]
        rss = psutil.Process(srv.proc.pid).memory_info().rss / 1e6
    report = report_wall(home, runs)
    inproc = []
    for _ in range(runs):
        t0 = time.perf_counter()
        ctx = Context.load(home)
        report_dict(ctx, ctx.clock() - timedelta(hours=24))
        inproc.append(time.perf_counter() - t0)
    return {
        "report_inproc": statistics.median(inproc),
        "status_p50": statistics.median(status) * 1000, "status_p95": pct(status, 95) * 1000,
        "page_first": first_page * 1000, "page_p50": statistics.median(page) * 1000, "page_p95": pct(page, 95) * 1000,
        "report_median": statistics.median(report), "rss_mb": rss,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="make the logs here and reuse them next time")
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        rows = {}
        for n in (args.small, args.events):
            print(f"{n:,}-event log:")
            rows[n] = bench(make_home(root, n, now), args.requests, args.runs)
    print()
    print(f"{'log events':>12} {'status p50':>11} {'status p95':>11} {'page 1st':>9} {'page p50':>9} {'page p95':>9} "
          f"{'report CLI':>11} {'(in-proc)':>10} {'server RSS':>11}")  # fmt: skip
    for n, r in rows.items():
        print(
            f"{n:>12,} {r['status_p50']:>8.1f} ms {r['status_p95']:>8.1f} ms {r['page_first']:>6.0f} ms "
            f"{r['page_p50']:>6.0f} ms {r['page_p95']:>6.0f} ms {r['report_median']:>9.2f} s "
            f"{r['report_inproc']:>8.2f} s {r['rss_mb']:>8.0f} MB"
        )
    print("targets: status p95 <= 100 ms, page <= 300 ms, report <= 0.5 s (flat in log size), RSS <= 100 MB")
    print(
        f"(report CLI includes the interpreter and imports; load average now {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    main()
