"""The two state backends side by side: latency per event appended (p50/p95/p99), 1 and 8 writers,
a task claim, and the last 50 events read, on the files and on a real local PostgreSQL.

    .venv/bin/python bench/state_backend_bench.py [--events 2000]

Starts its own PostgreSQL cluster (tests/support/postgres.py: a temp dir, a unix socket, fsync
off like the tests' cluster, so the figures are the engine's and the client's, not the disk's).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from factoryctl.core.clock import utcnow
from factoryctl.core.paths import Paths
from factoryctl.state.backend import StateBackend, open_backend
from tests.support.postgres import PgServer, server_bin

WRITER = """
import sys, time, json
from pathlib import Path
from factoryctl.core.clock import utcnow
from factoryctl.core.paths import Paths
from factoryctl.state.backend import open_backend
arg = sys.argv[1]
state = open_backend(arg if arg.startswith("postgresql") else "", Paths(Path(arg)))
log = state.event_log(utcnow)
out = []
for i in range(int(sys.argv[2])):
    t = time.perf_counter()
    log.append("bench", session="s1", data={"i": i, "pad": "x" * 300})
    out.append(time.perf_counter() - t)
print(json.dumps(out))
"""


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def writers(arg: str, count: int, events: int) -> list[float]:
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, arg, str(events)], stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    out: list[float] = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=600)
        out += json.loads(stdout)
    return out


def bench(name: str, arg: str, state: StateBackend, events: int) -> dict[str, float]:
    log = state.event_log(utcnow)
    log._secrets = ()
    one = timed(lambda: log.append("bench", session="s1", data={"pad": "x" * 300}), events)
    eight = writers(arg, 8, events // 8)
    tasks = state.task_queue(log)
    add = timed(lambda: tasks.add("more"), 250)

    def claim_and_finish() -> None:
        task = tasks.claim("s1")
        assert task is not None
        tasks.transition(task.id, "pushed", note="bench")

    claim = timed(claim_and_finish, 100)
    tail = timed(lambda: log.tail(50), 50)
    row = {
        "append p50 ms": pct(one, 50), "append p95 ms": pct(one, 95), "append p99 ms": pct(one, 99),
        "8 writers p95 ms": pct(eight, 95), "task add p95 ms": pct(add, 95),
        "claim+push p95 ms": pct(claim, 95), "tail 50 p95 ms": pct(tail, 95),
    }  # fmt: skip
    print(name, json.dumps({k: round(v, 2) for k, v in row.items()}))
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="state-bench-"))
    bench("files", str(home), open_backend("", Paths(home)), args.events)
    bindir = server_bin()
    if bindir is None:
        sys.exit("PostgreSQL's server binaries are missing: apt-get install postgresql")
    server = PgServer(bindir).start()
    try:
        url = server.fresh_database()
        bench("postgresql", url, open_backend(url, Paths(home)), args.events)
    finally:
        server.remove()


if __name__ == "__main__":
    main()
