"""Benchmark the factory on the TypeScript pnpm sample (tests/samples/ts-pnpm, set up by `factoryctl init`).

1. Factory overhead per cycle as a share of the bare check time: a cycle with an instant
   agent (steady state: main's baseline cached, setup not rerun) against the same checks
   run by hand (`pnpm exec tsc --noEmit`, `pnpm exec vitest run`). Target: <= 10%.
2. Check runs per branch in a review of 4 branches of which one is bad (a type error that
   shows only on top of another branch: deterministic, never retried). Target: <= 1.25.

    .venv/bin/python bench/ts_bench.py [--cycles 5] [--bare 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from factoryctl.jobs.context import Context
from factoryctl.jobs.cycle import Cycle
from factoryctl.jobs.init import init
from factoryctl.jobs.review.gate import MergeGate

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "samples" / "ts-pnpm"
AGENT = str(Path(sys.executable).parent / "factory-scripted-agent")
APPROVE = json.dumps({"verdict": "approve", "reasons": ["ok"], "risk": "low", "issues": []})
MONEY = (SAMPLE / "src" / "money.ts").read_text()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@x", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip


def initialised(root: Path, sample: Path, calls: list[dict[str, object]]) -> Path:
    """A copy of `sample` as a one-commit repository, made a factory by `factoryctl init` (its checks as
    detected) with the scripted agent playing `calls`; returns its factory.toml."""
    repo = root / "repo-src"
    shutil.copytree(sample, repo, ignore=shutil.ignore_patterns("node_modules", "__pycache__", ".*_cache"))
    (repo / ".gitignore").write_text("node_modules/\n__pycache__/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    scenario = root / "agent" / "scenario.json"
    scenario.parent.mkdir()
    scenario.write_text(json.dumps({"calls": calls, "repeat": True}))
    init(str(repo), root / "factory", agent=[AGENT, "--scenario", str(scenario)])
    return root / "factory" / "factory.toml"


def factory(root: Path, calls: list[dict[str, object]]) -> Context:
    toml = initialised(root, SAMPLE, calls)
    with toml.open("a") as fh:  # the stand-in agent keeps its state there
        fh.write(f"\n[sandbox]\nwritable = [{json.dumps(str(root / 'agent'))}]\n")
    return Context.load(root / "factory")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def overhead(cycles: int, bare_runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ctx = factory(root, [{"actions": [{"append": "src/money.ts", "content": "// cycle {n}\n"}], "result": "n"}])
        Cycle(ctx, "s1").run()  # warm-up: worktree, setup, main's baseline
        wt = root / "factory" / "worktrees" / "s1"
        totals, checks, agents, setups, bare = [], [], [], [], []
        for i in range(max(cycles, bare_runs)):  # interleaved: a busy machine slows both alike
            if i < cycles:
                report = Cycle(Context.load(root / "factory"), "s1").run()
                assert report.verdict == "pushed", report.reason
                d = report.durations
                totals.append(d["total_s"])
                checks.append(d.get("checks_s", 0.0))
                agents.append(d.get("agent_s", 0.0))
                setups.append(d.get("setup_s", 0.0))
            if i < bare_runs:
                t0 = time.monotonic()
                for argv in (["pnpm", "exec", "tsc", "--noEmit"], ["pnpm", "exec", "vitest", "run"]):
                    subprocess.run(argv, cwd=wt, capture_output=True, check=False)
                bare.append(time.monotonic() - t0)
    bare_med = statistics.median(bare)
    # The factory's own time in a cycle: all of it but the agent and the tools themselves.
    own = [t - a - c for t, a, c in zip(totals, agents, checks, strict=True)]
    print(f"bare checks (tsc + vitest by hand): median {bare_med:.2f}s, p95 {pct(bare, 0.95):.2f}s ({bare_runs} runs)")
    print(f"cycle total: median {statistics.median(totals):.2f}s, p95 {pct(totals, 0.95):.2f}s; "
          f"its checks {statistics.median(checks):.2f}s, agent {statistics.median(agents):.2f}s, "
          f"setup {statistics.median(setups):.2f}s ({cycles} cycles)")  # fmt: skip
    print(f"factory overhead per cycle (total - agent - checks): median {statistics.median(own):.2f}s, "
          f"p95 {pct(own, 0.95):.2f}s = {statistics.median(own) / bare_med:.1%} of the bare check time "
          "(target <= 10%)")  # fmt: skip
    paired = statistics.median(totals) - statistics.median(agents) - bare_med
    print(f"cycle minus agent minus bare checks: {paired:+.2f}s = {paired / bare_med:+.1%} (noisy on a shared machine)")


def review_runs() -> None:
    """4 branches: s1 renames `format` to `formatPrice` (keeping its callers right), s4 adds a caller
    of the old name; each passes alone, s4 fails tsc on top of s1. s2 and s3 add tests."""
    renamed = MONEY.replace("export function format(", "export function formatPrice(")
    assert renamed != MONEY, "the sample's money.ts changed: adjust the bench"
    cart_test = (SAMPLE / "src" / "cart.test.ts").read_text()
    cart_test = cart_test.replace("add, format }", "add, formatPrice }").replace("(format(", "(formatPrice(")
    caller = 'import { format } from "./money";\n\nexport const ten = format({ cents: 1000, currency: "EUR" });\n'
    test = 'import {{ expect, it }} from "vitest";\n\nit("{name}", () => {{ expect(1).toBe(1); }});\n'
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        calls: list[dict[str, object]] = [
            {"match": "You are s1,", "result": "Rename format", "actions": [
                {"write": "src/money.ts", "content": renamed}, {"write": "src/cart.test.ts", "content": cart_test}]},
            {"match": "You are s2,", "result": "t2", "actions": [{"write": "src/t2.test.ts",
                                                                 "content": test.format(name="t2")}]},
            {"match": "You are s3,", "result": "t3", "actions": [{"write": "src/t3.test.ts",
                                                                 "content": test.format(name="t3")}]},
            {"match": "You are s4,", "result": "ten", "actions": [{"write": "src/ten.ts", "content": caller}]},
            {"match": "by session", "result": APPROVE},
        ]  # fmt: skip
        ctx = factory(root, calls)
        for s in ("s1", "s2", "s3", "s4"):
            report = Cycle(Context.load(root / "factory"), s).run()
            assert report.verdict == "pushed", (s, report.reason)
        gate = MergeGate(Context.load(root / "factory"))
        t0 = time.monotonic()
        outcomes = gate.run()
        took = time.monotonic() - t0
    verdicts = {o.branch.split("/")[1]: str(o.verdict) for o in outcomes}
    print(f"review of 4 branches (one bad): {gate.check_runs} check runs = {gate.check_runs / 4:.2f} per branch "
          f"(target <= 1.25) in {took:.1f}s; verdicts {verdicts}")  # fmt: skip
    del ctx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--bare", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("pnpm") is None:
        sys.exit("pnpm is not installed: bash scripts/setup.sh")
    overhead(args.cycles, args.bare)
    review_runs()


if __name__ == "__main__":
    main()
