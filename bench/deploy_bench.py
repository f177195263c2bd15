"""Wall time of deploying the factory: a first deploy on a fresh sandbox host, then the no-change redeploy.

Run as root from the repository root: `.venv/bin/python bench/deploy_bench.py [--runs N]`.
Each run brings up its own sandbox (the cached image; `python -m sandbox bake` first if
none is cached), deploys the demo twice with pyinfra, and takes the sandbox down.
Targets: first deploy <= 180 s, no-change redeploy <= 10 s (and it must change nothing).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYINFRA = str(Path(sys.executable).parent / "pyinfra")
SECRETS = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "TELEGRAM_BOT_TOKEN", "FACTORY_HTTP_TOKEN")
TARGETS = {"first deploy": 180.0, "no-change redeploy": 10.0}


def run(argv: list[str], env: dict[str, str], timeout: float = 1800) -> tuple[float, str]:
    start = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv[:4])} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return seconds, done.stdout + done.stderr


def changes(output: str) -> int:
    """The changed-operation count of pyinfra's "Grand total" row."""
    match = re.search(r"^\s*Grand total\s+\S+\s+(\S+)", output, re.M)
    if not match:
        sys.exit("no results table in pyinfra's output")
    return 0 if match.group(1) == "-" else int(match.group(1))


def one_run(name: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("FACTORY_")}
    env["FACTORY_SANDBOX_NAME"] = name
    sandbox = [sys.executable, "-m", "sandbox"]
    deploy = [PYINFRA, "inventory.py", "deploy.py", "-y"]
    try:
        run([*sandbox, "up", "--name", name], env)
        first, out = run(deploy, env)
        print(f"  first deploy        {first:7.1f} s   ({changes(out)} changes)", flush=True)
        second, out = run(deploy, env)
        print(f"  no-change redeploy  {second:7.1f} s   ({changes(out)} changes)", flush=True)
        if changes(out):
            sys.exit("the redeploy changed something: it must change nothing")
    finally:
        subprocess.run([*sandbox, "down", "--name", name], cwd=REPO, env=env, capture_output=True, check=False)
    return {"first deploy": first, "no-change redeploy": second}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1, help="fresh sandboxes to deploy (default: 1)")
    parser.add_argument("--name", default=f"dbench{os.getpid()}", help="sandbox name prefix")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("Error: run the deploy bench as root (it brings up a sandbox host)")
    results: list[dict[str, float]] = []
    for i in range(args.runs):
        print(f"run {i + 1}/{args.runs}: fresh sandbox {args.name}{i}", flush=True)
        results.append(one_run(f"{args.name}{i}"))
    print()
    failed = False
    for label, target in TARGETS.items():
        values = [r[label] for r in results]
        verdict = "ok" if max(values) <= target else "OVER TARGET"
        failed |= max(values) > target
        print(f"{label:<20} median {statistics.median(values):6.1f} s   max {max(values):6.1f} s   "
              f"target <= {target:.0f} s: {verdict}")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
