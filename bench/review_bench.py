"""Benchmark the merge gate: check runs and wall time for 16 pending branches,
one by one vs batched; and batched with one bad branch among them (first, middle, last).

Targets: <= 2 check runs for 16 passing branches batched; <= 2*log2(16)+1 = 9 with one bad.
Main's baseline is computed before the review (in steady state the cycles have done it)
and is not counted; the real pytest runs on the sample project.

    .venv/bin/python bench/review_bench.py [--branches 16]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from factoryctl.adapters.checks import run_checks  # noqa: E402
from factoryctl.core.clock import format_ts  # noqa: E402
from factoryctl.core.records import ReviewEntry  # noqa: E402
from factoryctl.jobs.context import Context  # noqa: E402
from factoryctl.jobs.review.gate import MergeGate  # noqa: E402
from tests.factories import git, make_factory  # noqa: E402

GOOD = "def test_ok_{i}() -> None:\n    assert {i} == {i}\n"
BAD = "def test_bad_{i}() -> None:\n    assert {i} == -1\n"
APPROVE = json.dumps({"verdict": "approve", "reasons": ["fine"], "risk": "low", "issues": []})


def scenario(tmp: Path, branches: int, bad: int | None, batch_min: int) -> Context:
    factory = make_factory(tmp, sessions=branches, extra=f"[review]\nbatch_min = {batch_min}\n")
    factory.script([{"result": APPROVE}], repeat=True)
    ctx = factory.ctx()
    seed = tmp / "work"
    git(tmp, "clone", "-q", str(factory.origin), str(seed))
    for i in range(1, branches + 1):
        branch = f"brl/s{i}/20261124T0000{i:02d}Z"
        git(seed, "checkout", "-q", "-B", branch, "origin/main")
        body = (BAD if i == bad else GOOD).format(i=i)
        (seed / "tests" / f"test_b{i}.py").write_text(body)
        git(seed, "add", "-A")
        git(seed, "commit", "-q", "-m", f"branch {i}")
        git(seed, "push", "-q", "origin", branch)
        head = git(seed, "rev-parse", "HEAD")
        ctx.review_queue().add_pending(ReviewEntry(branch, session=f"s{i}", head=head, queued=format_ts(ctx.clock())))
    # Main's baseline, as the cycles would have left it.
    main = factory.main_sha()
    git(seed, "checkout", "-q", "--detach", main)
    baselines = ctx.baselines()
    launch = ctx.launch(seed, "bench")
    checks = ctx.settings.checks
    baselines.get(
        main, checks, lambda: run_checks(checks, launch, heavy_slot=ctx.heavy_slot, clock=ctx.clock), session=None
    )
    return ctx


def measure(branches: int, bad: int | None, batched: bool) -> tuple[int, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = scenario(Path(tmp), branches, bad, batch_min=1 if batched else 10**6)
        t0 = time.perf_counter()
        gate = MergeGate(ctx)
        outcomes = gate.run()
        took = time.perf_counter() - t0
        landed = sum(o.verdict == "approve" for o in outcomes)
        return gate.check_runs, took, landed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--branches", type=int, default=16)
    args = parser.parse_args()
    n = args.branches
    runs, took, landed = measure(n, None, batched=False)
    print(f"{n} passing, one by one: {runs:>3} check runs, {took:6.1f}s, {landed} landed")
    runs, took, landed = measure(n, None, batched=True)
    print(f"{n} passing, batched:    {runs:>3} check runs, {took:6.1f}s, {landed} landed  (target <= 2)")
    limit = 2 * int(math.log2(n)) + 1
    worst = 0
    for position in (1, n // 2, n):
        runs, took, landed = measure(n, position, batched=True)
        worst = max(worst, runs)
        print(f"{n} with bad #{position:<2} batched: {runs:>3} check runs, {took:6.1f}s, {landed} landed")
    print(f"worst case with one bad branch: {worst} check runs (target <= {limit})")


if __name__ == "__main__":
    main()
