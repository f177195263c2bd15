"""Benchmark the factory's own time per cycle with the real Claude Code CLI and an instant model.

    .venv/bin/python bench/claude_cycle_bench.py [--runs 10]

The real `claude` CLI (from npm) talks to the Messages API stand-in (tests/support/
messages_standin.py), which answers at once: one Write, then a closing text. Two ways,
alternating, `--runs` times each:
- bare: `claude -p` with the factory's default agent flags, the same prompt, in a plain git
  clone, no sandbox;
- cycle: a whole `factoryctl cycle` (fetch, worktree reset, the sandboxed call, commit, push,
  queue) with no checks configured, so only the factory's own work is added to the call.
The figure is the difference of the medians. Target: the factory adds at most 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from factoryctl.jobs.cycle import Cycle  # noqa: E402
from tests.factories import CLAUDE_AGENT, make_factory, use_claude  # noqa: E402
from tests.support.messages_standin import Server, client_env  # noqa: E402

CONTENT = "def test_bench() -> None:\n    assert True\n"


def bare_call(claude_dir: Path, prompt: str, env: dict[str, str]) -> float:
    """One `claude -p` call as a person would run it, outside the factory."""
    (claude_dir / "tests" / "test_bench.py").unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run(CLAUDE_AGENT, input=prompt, cwd=claude_dir, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    took = time.perf_counter() - start
    if done.returncode != 0 or not (claude_dir / "tests" / "test_bench.py").exists():
        raise SystemExit(f"bare claude call failed ({done.returncode}): {done.stdout[-300:]} {done.stderr[-300:]}")
    return took


def measure(runs: int) -> None:
    if shutil.which("claude") is None:
        raise SystemExit("the real `claude` CLI is not installed: npm install -g @anthropic-ai/claude-code")
    server = Server(0, {"plays": [{"match": "bench-cycle", "steps": [
        {"tool": "Write", "input": {"file_path": "tests/test_bench.py", "content": CONTENT}},
        {"text": "Add a benchmark test"}]}]}).start()  # fmt: skip
    os.environ.update(client_env(server.url))
    with tempfile.TemporaryDirectory() as tmp:
        factory = make_factory(Path(tmp), checks="", sessions=1, agent_timeout_s=120)
        use_claude(factory)
        ctx = factory.ctx()
        ctx.tasks()  # the state folder exists
        plain = Path(tmp) / "plain"
        subprocess.run(["git", "clone", "-q", str(factory.origin), str(plain)], check=True)
        home = Path(tmp) / "bare-home"
        home.mkdir()
        env = {**os.environ, "HOME": str(home), "IS_SANDBOX": "1"}
        bare: list[float] = []
        cycle: list[float] = []
        agent: list[float] = []
        for i in range(runs + 1):  # the first of each warms caches and is not counted
            ctx.tasks().add(f"bench-cycle {i}")
            # the prompt carries the task title; the stand-in matches on it
            start = time.perf_counter()
            report = Cycle(factory.ctx(), "s1").run()
            took = time.perf_counter() - start
            if report.verdict != "pushed":
                raise SystemExit(f"cycle {i}: {report.verdict}: {report.reason}")
            prompt = f"You are s1. bench-cycle {i}: add tests/test_bench.py.\n"
            bare_took = bare_call(plain, prompt, env)
            if i:
                cycle.append(took)
                agent.append(report.durations["agent_s"])
                bare.append(bare_took)
    server.stop()
    med = statistics.median
    print(f"{runs} runs each, medians: bare `claude -p` {med(bare):.3f} s; whole cycle {med(cycle):.3f} s "
          f"(of which the sandboxed agent call {med(agent):.3f} s)")  # fmt: skip
    print(f"the factory adds {med(cycle) - med(bare):+.3f} s per cycle (target <= 0.5 s); "
          f"sandbox and stream reading add {med(agent) - med(bare):+.3f} s to the call itself")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    measure(parser.parse_args().runs)


if __name__ == "__main__":
    main()
