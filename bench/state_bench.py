"""Benchmark the shared state: appends/s (1 and 8 writers), and `factoryctl status` /
`factoryctl log tail -n 50` wall time on a 1,000-event and a 1,000,000-event log.

    .venv/bin/python bench/state_bench.py [--events 1000000] [--runs 5]

Prints medians (this machine is shared and noisy). Targets: status and log tail
<= 0.5 s each on 1,000,000 events, flat in log size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BIN = Path(sys.executable).parent
TYPES = ["ralph_cycle", "agent_call", "cto_review", "task", "scheduler", "alert", "bot_message"]

APPENDER = """
import sys, time
from pathlib import Path
from factoryctl.state.eventlog import EventLog
log = EventLog(Path(sys.argv[1]), secrets=())
n = int(sys.argv[2])
t0 = time.perf_counter()
for i in range(n):
    log.append("ralph_cycle", session="s1", data={"i": i, "verdict": "pushed", "counts": {"tsc": 0}})
print(time.perf_counter() - t0)
"""


def appends_per_s(writers: int, per_writer: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.jsonl"
        start = time.perf_counter()
        procs = [
            subprocess.Popen([sys.executable, "-c", APPENDER, str(path), str(per_writer)], stdout=subprocess.PIPE)
            for _ in range(writers)
        ]
        for proc in procs:
            proc.communicate()
        wall = time.perf_counter() - start
        lines = path.read_bytes().count(b"\n")
        assert lines == writers * per_writer, lines
        return lines / wall


def make_log(path: Path, events: int, now: datetime) -> None:
    """A log spanning ~2,000 events a day, ending now; today's agent calls cost money."""
    per_day = 2000
    step = timedelta(days=1) / per_day
    start = now - step * events
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(events):
            ts = (start + step * i).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            kind = TYPES[i % len(TYPES)]
            data: dict[str, object] = {"i": i, "verdict": "pushed", "reason": "checks held", "files": 2}
            if kind == "agent_call":
                data = {"purpose": "cycle", "outcome": "success", "cost_usd": 0.01, "num_turns": 3}
            fh.write(json.dumps({"ts": ts, "type": kind, "session": f"s{1 + i % 8}", "data": data}) + "\n")


def time_cli(home: Path, args: list[str], runs: int) -> float:
    env = {**os.environ, "FACTORY_HOME": str(home)}
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([str(BIN / "factoryctl"), *args], env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--appends", type=int, default=4000, help="events per writer")
    args = parser.parse_args()

    one = statistics.median(appends_per_s(1, args.appends) for _ in range(3))
    eight = statistics.median(appends_per_s(8, args.appends) for _ in range(3))
    print(f"appends/s, 1 writer:   {one:,.0f}")
    print(f"appends/s, 8 writers:  {eight:,.0f} (all writers together)")

    now = datetime.now(UTC)
    rows = []
    for events in (1_000, args.events):
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "factory"
            t0 = time.perf_counter()
            make_log(home / "state" / "experiment-log.jsonl", events, now)
            made = time.perf_counter() - t0
            size = (home / "state" / "experiment-log.jsonl").stat().st_size
            status = time_cli(home, ["status"], args.runs)
            tail = time_cli(home, ["log", "tail", "-n", "50"], args.runs)
            version = time_cli(home, ["--version"], args.runs)
            rows.append((events, size, status, tail, version))
            print(f"log of {events:>9,} events ({size / 1e6:,.0f} MB, made in {made:.1f}s): "
                  f"status {status:.3f}s, log tail -n 50 {tail:.3f}s, (--version {version:.3f}s)")  # fmt: skip
    small, big = rows[0], rows[-1]
    print(f"ratio big/small: status {big[2] / small[2]:.2f}x, log tail {big[3] / small[3]:.2f}x (flat is ~1.0x)")


if __name__ == "__main__":
    main()
