"""Benchmark the team's memory: standup wall time for 8 sessions with a reviewer stand-in that
takes 2 s per call, and doctor wall time on a 1,000,000-event log.

    .venv/bin/python bench/memory_bench.py [--runs 3] [--events 1000000] [--days 30]

The reviewer stand-in is the scripted agent (a real subprocess per call) sleeping 2 s and
answering each round in its schema. Targets: standup <= 30 s for 8 sessions (3 rounds of 8
calls and one summary: 25 calls, a 50 s serial floor), doctor <= 2 s on 1,000,000 events.
Prints medians and p95 (this machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

BIN = Path(sys.executable).parent
SESSIONS = 8


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def answer(match: str, result: dict[str, object], delay: float) -> dict[str, object]:
    return {"match": match, "actions": [{"sleep": delay}], "result": json.dumps(result), "cost_usd": 0.001}


def write_home(home: Path, scenario: Path, extra: str = "") -> None:
    home.mkdir(parents=True, exist_ok=True)
    agent = BIN / "factory-scripted-agent"
    (home / "factory.toml").write_text(
        f'[factory]\nsessions = {SESSIONS}\n[reviewer]\ncommand = ["{agent}", "--scenario", "{scenario}"]\n'
        f"timeout_s = 60\n[sandbox]\nwritable = [{json.dumps(str(scenario.parent))}]\n{extra}"
    )


def standup_once(tmp: Path, delay: float) -> tuple[float, int]:
    from factoryctl.jobs.context import Context
    from factoryctl.jobs.standup import Standup

    home, scenario = tmp / f"home-{uuid.uuid4().hex[:6]}", tmp / f"scenario-{uuid.uuid4().hex[:6]}.json"
    calls = [
        answer("Standup round 1 for", {"done": ["a cycle"], "stuck": [], "needs": []}, delay),
        answer("Standup round 2 for", {"responses": [{"to": "team", "text": "no overlap"}]}, delay),
        answer("Standup round 3 for", {"next_task": {"title": "Add a test"}, "proposal": "more tests"}, delay),
        answer("Standup summary.", {"summary": "fine", "priorities": [], "blockers": []}, delay),
    ]
    scenario.write_text(json.dumps({"repeat": True, "calls": calls}))
    write_home(home, scenario)
    ctx = Context.load(home)
    for i in range(1, SESSIONS + 1):  # news: one cycle per session since the last standup
        data = {"verdict": "discarded", "reason": "no change", "branch": None, "files": [f"src/f{i}.py"]}
        ctx.log.append("ralph_cycle", session=f"s{i}", data=data)
    started = time.perf_counter()
    data = Standup(ctx).run()
    took = time.perf_counter() - started
    assert not data["skipped"] and not data["failed"], data
    return took, int(data["calls"])


def make_log(path: Path, events: int, days: float, now: datetime) -> None:
    """`events` events spread evenly over `days` ending now: cycles, reviews, agent calls, tasks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    step = timedelta(days=days) / events
    start = now - step * events
    kinds = ["ralph_cycle", "agent_call", "agent_call", "task", "scheduler", "cto_review"]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(events):
            ts = (start + step * i).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            kind = kinds[i % len(kinds)]
            session = f"s{i % SESSIONS + 1}"
            if kind == "ralph_cycle":
                data = {"verdict": "pushed" if i % 3 else "discarded", "reason": "checks held",
                        "branch": f"brl/{session}/{i}", "files": ["src/a.py"], "agent_outcome": "success"}  # fmt: skip
            elif kind == "cto_review":
                data = {"branch": f"brl/{session}/{i - 5}", "verdict": "reject", "reasons": ["unfocused"]}
            else:
                data = {"purpose": "cycle", "cost_usd": 0.01, "n": i}
            line = {"ts": ts, "type": kind, "session": session, "data": data}
            fh.write(json.dumps(line, separators=(",", ":")) + "\n")


def doctor_runs(tmp: Path, events: int, days: float, runs: int) -> tuple[list[float], list[float]]:
    from factoryctl.adapters.tmux import Tmux
    from factoryctl.jobs.context import Context
    from factoryctl.jobs.doctor import Doctor
    from factoryctl.jobs.sessions import Sessions

    home, scenario = tmp / "doctor-home", tmp / "doctor.json"
    reply = {"cycle_prompt": "", "skills": [], "notes": "bench"}
    scenario.write_text(json.dumps({"repeat": True, "calls": [answer("Doctor's analysis", reply, 0.0)]}))
    write_home(home, scenario, "[doctor]\nrestart_dead = false\n")
    make_log(home / "state" / "experiment-log.jsonl", events, days, datetime.now(UTC))
    tmux = Tmux(f"memory-bench-{uuid.uuid4().hex[:6]}")  # a private server with no sessions
    walls, gathers = [], []
    for _ in range(runs):
        ctx = Context.load(home)
        doctor = Doctor(ctx, sessions=Sessions(ctx, tmux))
        t0 = time.perf_counter()
        doctor.gather()
        gathers.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        doctor.run()
        walls.append(time.perf_counter() - t0)
    return walls, gathers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=30.0, help="the log spans this many days")
    parser.add_argument("--delay", type=float, default=2.0, help="seconds per reviewer call")
    args = parser.parse_args()
    os.environ.pop("FACTORY_HOME", None)
    os.environ["FACTORY_TMUX_SOCKET"] = f"memory-bench-{uuid.uuid4().hex[:6]}"  # no panes to capture
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        results = [standup_once(tmp, args.delay) for _ in range(args.runs)]
        walls = [r[0] for r in results]
        print(f"standup, {SESSIONS} sessions, reviewer {args.delay:g} s/call: {results[0][1]} calls; "
              f"wall median {statistics.median(walls):.2f} s, p95 {p95(walls):.2f} s "
              f"(target <= 30 s; serial floor {results[0][1] * args.delay:.0f} s)")  # fmt: skip
        t0 = time.perf_counter()
        walls, gathers = doctor_runs(tmp, args.events, args.days, args.runs)
        print(f"(log of {args.events:,} events over {args.days:g} days written in {time.perf_counter() - t0:.1f} s)")
        print(f"doctor on {args.events:,} events: wall median {statistics.median(walls):.3f} s, p95 {p95(walls):.3f} s "
              f"(target <= 2 s; includes one scripted model call); reading the window alone: median "
              f"{statistics.median(gathers):.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
