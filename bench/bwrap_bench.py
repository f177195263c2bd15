"""The sandbox's cost per call: the same command through the runner, bare and in bubblewrap.

    .venv/bin/python bench/bwrap_bench.py [--calls 200]

Each sandboxed call is what a check gets (the home and a FACTORY_HOME hidden, a worktree
bound, its own PID namespace, no network). Target: <= 50 ms more per call (median).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from factoryctl.adapters.runner import run
from factoryctl.adapters.sandbox import Policy, Sandbox, allowed_env


def timed(argv: list[str], env: dict[str, str], calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        done = run(argv, env=env, timeout=30)
        out.append(time.perf_counter() - t0)
        assert done.ok, done.tail()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home, worktree, cache = root / "factory", root / "factory" / "worktrees" / "s1", root / "cache"
        worktree.mkdir(parents=True)
        cache.mkdir()
        sandbox = Sandbox(True, hide=(Path.home(), home))
        sandbox.check()
        policy = Policy(workdir=worktree, home=cache)
        env = allowed_env({"PATH": "/usr/bin:/bin"}, cache)
        command = ["sh", "-c", "true"]
        wrapped = sandbox.wrap(command, policy)
        bare, boxed = [], []
        for _ in range(args.calls // 20):  # interleaved, so load changes hit both alike
            bare += timed(command, env, 20)
            boxed += timed(wrapped, env, 20)
    b, s = statistics.median(bare), statistics.median(boxed)
    print(f"{len(bare)} calls each of `sh -c true` through the runner")
    print(f"  bare:         median {b * 1000:6.1f} ms")
    print(f"  bubblewrap:   median {s * 1000:6.1f} ms")
    print(f"  sandbox cost: {(s - b) * 1000:6.1f} ms per call  (target <= 50 ms)")


if __name__ == "__main__":
    main()
