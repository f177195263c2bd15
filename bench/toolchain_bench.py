"""Benchmark a new worktree's setup and the disk each session takes, without and with the shared caches.

For the uv sample (tests/samples/uv-app) and the TypeScript sample with a pinned pnpm
(tests/samples/ts-pnpm, `packageManager: pnpm@10.28.0`): a factory made by `factoryctl init`'s
code, then repo.setup in two sessions' new worktrees, in the bubblewrap sandbox with the network:
- private: each setup gets a cache of its own that is gone after it (what setup on a branch gets);
- shared: setup on main with the shared download caches (uv, npm, the pnpm store); the first
  session fills them, the second reads them.
Per session: setup time and disk (the worktree with its .venv / node_modules, plus the
session's own cache folder); the shared caches' size once. Then one cycle on each sample (an
instant scripted agent adding a test): the factory's own time beside the checks' (target: within
10 %).

    .venv/bin/python bench/toolchain_bench.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from factoryctl.jobs.context import Context
from factoryctl.jobs.cycle import Cycle
from factoryctl.jobs.init import init
from factoryctl.jobs.workspace import Workspace, ensure_setup, shared_caches

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "samples"
BIN = Path(sys.executable).parent


def du(path: Path) -> int:
    if not path.exists():
        return 0
    done = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[0])


def seed(tmp: Path, sample: str) -> Path:
    repo = tmp / sample
    shutil.copytree(SAMPLES / sample, repo, ignore=shutil.ignore_patterns("node_modules", ".venv"))
    if sample == "ts-pnpm":
        package = json.loads((repo / "package.json").read_text())
        package["packageManager"] = "pnpm@10.28.0"
        (repo / "package.json").write_text(json.dumps(package, indent=2) + "\n")
        (repo / ".gitignore").write_text("node_modules/\n")
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *argv], cwd=repo, check=True, capture_output=True)
    return repo


def measure(tmp: Path, sample: str, mode: str) -> list[str]:
    home = tmp / f"{sample}-{mode}"
    (tmp / mode).mkdir(exist_ok=True)
    init(str(seed(tmp / mode, sample)), home, agent=[str(BIN / "factory-scripted-agent")])
    ctx = Context.load(home)
    out = []
    for session in ("s1", "s2"):
        ws = Workspace(ctx, session)
        ws.prepare()
        t0 = time.monotonic()
        ensure_setup(ctx, ws.path, session, on_main=mode == "shared")
        took = time.monotonic() - t0
        disk = du(ws.path) + du(ctx.paths.caches_dir / session)
        out.append(f"{sample:8} {mode:8} {session}  setup {took:6.1f} s   disk {disk / 1e6:7.1f} MB")
    shared = shared_caches(ctx)[0]
    if mode == "shared":
        out.append(f"{sample:8} {mode:8} shared caches, once: {du(shared) / 1e6:.1f} MB")
        out.append(own_time(tmp, ctx, sample))
    return out


def own_time(tmp: Path, ctx: Context, sample: str) -> str:
    """One cycle of s1 (an instant scripted agent adding a test): the factory's own time beside the checks'."""
    test = ("src/bench.test.ts", 'import { expect, it } from "vitest";\n\nit("b", () => expect(1).toBe(1));\n')
    if sample == "uv-app":
        test = ("tests/test_bench.py", "def test_bench() -> None:\n    assert True\n")
    scenario = tmp / f"{sample}-scenario.json"
    scenario.write_text(json.dumps({"calls": [{"actions": [{"write": test[0], "content": test[1]}], "result": "b"}]}))
    toml = ctx.paths.config_file
    agent = json.dumps(str(BIN / "factory-scripted-agent"))
    text = toml.read_text().replace(f"command = [{agent}]", f"command = [{agent}, \"--scenario\", "
                                    f"{json.dumps(str(scenario))}]", 1)  # fmt: skip
    toml.write_text(text + f"\n[sandbox]\nwritable = [{json.dumps(str(tmp))}]\n")
    report = Cycle(Context.load(ctx.paths.home), "s1").run()
    d = report.durations
    checks = d.get("checks_s", 0.0) + d.get("baseline_s", 0.0)
    own = d["total_s"] - checks - d.get("setup_s", 0.0) - d.get("agent_s", 0.0)
    return (
        f"{sample:8} cycle    {report.verdict.value}: total {d['total_s']:.2f} s, checks {checks:.2f} s, "
        f"setup {d.get('setup_s', 0.0):.2f} s, agent {d.get('agent_s', 0.0):.2f} s, the factory's own "
        f"{own:.2f} s ({own / checks:.0%} of the checks' time)"
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="toolchain-bench-") as name:
        tmp = Path(name)
        for sample in ("uv-app", "ts-pnpm"):
            for mode in ("private", "shared"):
                for line in measure(tmp, sample, mode):
                    print(line, flush=True)


if __name__ == "__main__":
    main()
