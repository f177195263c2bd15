"""Benchmark the scheduler: the CPU one tick costs, and the resident memory of the real
`factoryctl scheduler` process, with 8 sessions and a 1,000,000-event log.

    .venv/bin/python bench/scheduler_bench.py [--events 1000000] [--ticks 20] [--no-pm2]

The 8 sessions are real tmux sessions (a private server) running `factoryctl loop sN`,
paused so they only wait; PM2 is a private daemon with three idle apps, so every tick
also runs `pm2 jlist`. Prints medians (this machine is shared and noisy): the
scheduler's own CPU, the CPU of the programs it ran (tmux, pm2), and wall time.
Target: resident memory <= 60 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psutil

from factoryctl.adapters.pm2 import Pm2
from factoryctl.adapters.tmux import Tmux
from factoryctl.core.clock import day_start
from factoryctl.core.defaults import TMUX_SOCKET_ENV
from factoryctl.jobs.context import Context
from factoryctl.jobs.scheduler import Scheduler
from factoryctl.state.spend import spend_since

BIN = Path(sys.executable).parent


def setup_home(home: Path, events: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from state_bench import make_log  # the same log shape as the state benchmark

    (home / "state").mkdir(parents=True)
    (home / "factory.toml").write_text("[factory]\nsessions = 8\n[scheduler]\ntick_s = 1\n")
    (home / "state" / "paused").write_text("benchmark\n")  # the loops wait; no repository needed
    t0 = time.perf_counter()
    make_log(home / "state" / "experiment-log.jsonl", events, datetime.now(UTC))
    size = (home / "state" / "experiment-log.jsonl").stat().st_size
    print(f"log: {events:,} events, {size / 1e6:,.0f} MB (made in {time.perf_counter() - t0:.1f}s)")
    ctx = Context.load(home)
    for i in range(50):
        ctx.tasks().add(f"task {i}", priority=("low", "normal", "high")[i % 3])


def start_pm2(pm2_home: Path, env: dict[str, str]) -> None:
    apps = [{"name": f"idle-{i}", "script": "/bin/sleep", "args": ["3600"], "interpreter": "none"} for i in range(3)]
    eco = pm2_home / "eco.json"
    pm2_home.mkdir(parents=True, exist_ok=True)
    eco.write_text(json.dumps({"apps": apps}))
    subprocess.run(["pm2", "start", str(eco)], env=env, check=True, capture_output=True)


def tick_costs(ctx: Context, pm2: Pm2, ticks: int) -> tuple[list[float], list[float], list[float]]:
    sched = Scheduler(ctx, pm2=pm2)
    sched.tick()  # the first tick starts the 8 sessions: not a steady-state tick
    time.sleep(2)
    own, children, wall = [], [], []
    for _ in range(ticks):
        t_cpu, t_children, t_wall = time.process_time(), os.times(), time.perf_counter()
        sched.tick()
        after = os.times()
        own.append((time.process_time() - t_cpu) * 1000)
        children.append((after.children_user + after.children_system
                         - t_children.children_user - t_children.children_system) * 1000)  # fmt: skip
        wall.append((time.perf_counter() - t_wall) * 1000)
    return own, children, wall


def scheduler_rss(home: Path, env: dict[str, str], seconds: float) -> tuple[float, float]:
    """Run the real `factoryctl scheduler` (tick_s = 1); its peak and last resident memory in MB."""
    proc = subprocess.Popen([str(BIN / "factoryctl"), "scheduler"], env={**env, "FACTORY_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    peak = last = 0.0
    deadline = time.monotonic() + seconds
    try:
        ps = psutil.Process(proc.pid)
        while time.monotonic() < deadline and proc.poll() is None:
            last = ps.memory_info().rss / 1e6
            peak = max(peak, last)
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    if proc.returncode != 0:
        raise SystemExit(f"factoryctl scheduler exited {proc.returncode}: {err.decode()[-500:]}")
    return peak, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--rss-seconds", type=float, default=8.0, help="how long the real scheduler runs")
    parser.add_argument("--no-pm2", action="store_true", help="leave PM2 out")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "factory"
        pm2_home = Path(tempfile.mkdtemp(prefix="pm2-bench-"))
        socket = f"factory-bench-{uuid.uuid4().hex[:8]}"
        env = {**os.environ, TMUX_SOCKET_ENV: socket, "PM2_HOME": str(pm2_home)}
        os.environ.update({TMUX_SOCKET_ENV: socket, "PM2_HOME": str(pm2_home)})
        use_pm2 = not args.no_pm2 and shutil.which("pm2") is not None
        try:
            setup_home(home, args.events)
            if use_pm2:
                start_pm2(pm2_home, env)
            ctx = Context.load(home)
            today = spend_since(ctx.log, day_start(ctx.clock()))["calls"]
            print(f"today so far: {today} agent calls in the log (each tick sums them)")
            own, children, wall = tick_costs(ctx, Pm2(environ=env), args.ticks)
            running = len(Tmux(socket).panes())
            print(f"sessions: {running} tmux sessions running `factoryctl loop sN`"
                  + (", PM2 daemon with 3 apps" if use_pm2 else ", no PM2"))  # fmt: skip
            own_ms, child_ms, wall_ms = (statistics.median(x) for x in (own, children, wall))
            print(f"tick ({args.ticks} ticks, median): scheduler CPU {own_ms:.1f} ms, "
                  f"tmux/pm2 CPU {child_ms:.1f} ms, wall {wall_ms:.1f} ms")  # fmt: skip
            peak, last = scheduler_rss(home, env, args.rss_seconds)
            print(f"`factoryctl scheduler` resident memory: {last:.1f} MB (peak {peak:.1f} MB; target <= 60 MB)")
        finally:
            for pane in Tmux(socket).panes().values():
                with contextlib.suppress(psutil.Error):
                    psutil.Process(pane.pid).terminate()
            time.sleep(1)
            Tmux(socket).kill_server()
            if use_pm2:
                subprocess.run(["pm2", "kill"], env=env, capture_output=True, check=False)
            shutil.rmtree(pm2_home, ignore_errors=True)


if __name__ == "__main__":
    main()
