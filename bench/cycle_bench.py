"""Benchmark the work cycle.

1. Orchestration overhead per cycle (an instant agent, a trivial check) on a repository
   of >= 5,000 files and >= 1,000 commits, with the bare git operations of a cycle timed
   beside it. Target: <= 1 s median.
2. Check runs per cycle with 8 sessions in steady state (main not moving). Target: <= 1.1
   (without a shared baseline it would be 2).

    .venv/bin/python bench/cycle_bench.py [--cycles 10] [--rounds 3] [--sandbox on|off]

The agent, setup and the checks run in the bubblewrap sandbox unless `--sandbox off`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from factoryctl.jobs.context import Context
from factoryctl.jobs.cycle import Cycle
from factoryctl.state.eventlog import EventFilter

BIN = Path(sys.executable).parent
INSTANT_AGENT = """#!/bin/sh
cat > /dev/null
echo "change $$" > "bench-$$.txt"
echo '{"type":"result","subtype":"success","is_error":false,"result":"bench change",'\\
'"total_cost_usd":0,"num_turns":1,"session_id":"b"}'
"""


def git(cwd: Path, *args: str, input: bytes | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, input=input, check=True, capture_output=True)


def big_origin(root: Path, files: int, commits: int) -> Path:
    """A bare repository with `files` files and `commits` commits, built with fast-import."""
    origin = root / "origin.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(origin))
    out = []
    stamp = 1_700_000_000
    for c in range(commits):
        out.append(f"commit refs/heads/main\nmark :{c + 1}\ncommitter Bench <b@x> {stamp + c} +0000\n")
        msg = f"commit {c}\n".encode()
        out.append(f"data {len(msg)}\n{msg.decode()}")
        if c:
            out.append(f"from :{c}\n")
        paths = range(files) if c == 0 else [c * 7 % files]
        for i in paths:
            body = f"file {i} version {c}\n"
            out.append(f"M 100644 inline src/d{i % 50}/f{i}.txt\ndata {len(body)}\n{body}")
        out.append("\n")
    git(origin, "fast-import", "--quiet", input="".join(out).encode())
    return origin


SANDBOX = {"on": True, "off": False}
sandboxed = True


def make_home(root: Path, origin: Path, sessions: int) -> Path:
    home = root / "factory"
    home.mkdir()
    git(root, "clone", "-q", str(origin), str(home / "repo"))
    tools = root / "bin"  # out of FACTORY_HOME: the sandbox may let the agent read it
    tools.mkdir()
    agent = tools / "instant-agent.sh"
    agent.write_text(INSTANT_AGENT)
    agent.chmod(0o755)
    (home / "factory.toml").write_text(
        f"""
[factory]
sessions = {sessions}
[agent]
command = ["{agent}"]
timeout_s = 60
[sandbox]
enabled = {"true" if sandboxed else "false"}
readable = ["{tools}"]
[[checks]]
name = "trivial"
command = ["true"]
parser = "exitcode"
heavy = true
"""
    )
    return home


def bare_git_cycle(repo: Path, wt: Path, n: int) -> float:
    """The git commands a cycle needs, run directly: the floor under the overhead."""
    t0 = time.perf_counter()
    git(repo, "fetch", "--quiet", "origin", "+refs/heads/main:refs/remotes/origin/main")
    git(wt, "checkout", "--detach", "--force", "--quiet", "origin/main")
    git(wt, "reset", "--hard", "--quiet", "origin/main")
    git(wt, "clean", "-ffd", "--quiet")
    git(wt, "checkout", "--quiet", "-b", f"bare/{n}")
    (wt / f"bare-{n}.txt").write_text("x\n")
    git(wt, "add", "--all")
    git(wt, "-c", "user.name=b", "-c", "user.email=b@x", "commit", "--quiet", "-m", "bare")
    git(wt, "diff", "--numstat", "origin/main", "HEAD")
    git(wt, "push", "--quiet", "origin", f"bare/{n}")
    return time.perf_counter() - t0


def overhead(cycles: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        origin = big_origin(root, files=5000, commits=1000)
        print(f"repository: 5,000 files, 1,000 commits (built in {time.perf_counter() - t0:.1f}s)")
        home = make_home(root, origin, sessions=1)
        # Back-to-back cycles would share a branch-name second (and wait for the next one):
        # a clock that moves a minute per cycle keeps the names apart without sleeping.
        shift = [0]
        ctx = Context.load(home, clock=lambda: datetime.now(UTC) + timedelta(minutes=shift[0]))
        totals, rest = [], []
        for i in range(cycles + 1):
            shift[0] += 1
            report = Cycle(ctx, "s1").run()
            assert report.verdict == "pushed", report.reason
            if i == 0:
                continue  # the first cycle creates the worktree and the baseline
            d = report.durations
            totals.append(d["total_s"])
            rest.append(d["total_s"] - d.get("agent_s", 0) - d.get("checks_s", 0) - d.get("baseline_s", 0))
        wt = root / "bare-wt"
        git(home / "repo", "worktree", "add", "--detach", "--quiet", str(wt), "origin/main")
        bare = [bare_git_cycle(home / "repo", wt, n) for n in range(cycles)]
        print(f"cycle wall time, median of {cycles}:          {statistics.median(totals):.3f}s")
        print(f"  orchestration (minus agent and checks):  {statistics.median(rest):.3f}s  (target <= 1 s)")
        print(f"  the same git commands run bare:          {statistics.median(bare):.3f}s")


def sharing(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        origin = big_origin(root, files=200, commits=20)
        home = make_home(root, origin, sessions=8)
        env = {**os.environ, "FACTORY_HOME": str(home)}
        t0 = time.perf_counter()
        for _ in range(rounds):
            procs = [
                subprocess.Popen(
                    [str(BIN / "factoryctl"), "cycle", f"s{i}", "--json"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                for i in range(1, 9)
            ]
            for proc in procs:
                _, err = proc.communicate()
                assert proc.returncode == 0, err
        log = Context.load(home).log
        cycles = log.tail(10**6, EventFilter(types=frozenset({"ralph_cycle"})))
        baselines = log.tail(10**6, EventFilter(types=frozenset({"baseline"})))
        runs = sum(len(b.data["checks"]) for b in baselines) + sum(len(c.data["after"]) for c in cycles)
        print(f"8 sessions x {rounds} rounds: {len(cycles)} cycles, {len(baselines)} baseline computation(s), "
              f"{runs} check runs in {time.perf_counter() - t0:.1f}s")  # fmt: skip
        print(f"check runs per cycle: {runs / len(cycles):.3f}  (target <= 1.1; without sharing: 2)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sandbox", choices=sorted(SANDBOX), default="on")
    args = parser.parse_args()
    global sandboxed
    sandboxed = SANDBOX[args.sandbox]
    print(f"sandbox: {args.sandbox}")
    overhead(args.cycles)
    sharing(args.rounds)


if __name__ == "__main__":
    main()
