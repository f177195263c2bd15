"""Wall time of the sandbox host's steps: bake (cold, then cached), up, ssh, reboot, down.

Run as root from the repository root: `.venv/bin/python bench/sandbox_bench.py`.
The cold bake goes to a fresh cache directory (removed afterwards), so the machine's
cache is left alone; `--keep-cache DIR` bakes into DIR instead and keeps it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(label: str, argv: list[str], env: dict[str, str], results: list[tuple[str, float]]) -> None:
    start = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800, check=False)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"{label} failed ({done.returncode}): {done.stderr.strip()}")
    results.append((label, seconds))
    print(f"{label:<22} {seconds:7.2f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep-cache", type=Path, help="bake into this cache directory and keep it")
    parser.add_argument("--name", default=f"bench{os.getpid()}", help="sandbox name to use")
    parser.add_argument("--backend", default="nspawn", choices=["nspawn", "chroot"])
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("Error: run the sandbox bench as root")
    cache = args.keep_cache or Path(tempfile.mkdtemp(prefix="factory-sandbox-bench-", dir="/var/tmp"))
    env = {**os.environ, "FACTORY_SANDBOX_CACHE": str(cache)}
    sandbox = [sys.executable, "-m", "sandbox"]
    results: list[tuple[str, float]] = []
    try:
        timed("bake (cold)" if not args.keep_cache else "bake", [*sandbox, "bake"], env, results)
        timed("bake (cached)", [*sandbox, "bake"], env, results)
        timed("up", [*sandbox, "up", "--name", args.name, "--backend", args.backend], env, results)
        timed("ssh true", [*sandbox, "ssh", "--name", args.name, "--", "true"], env, results)
        timed("reboot", [*sandbox, "reboot", "--name", args.name], env, results)
        timed("down", [*sandbox, "down", "--name", args.name], env, results)
    finally:
        subprocess.run([*sandbox, "down", "--name", args.name], cwd=REPO, env=env, capture_output=True, check=False)
        if not args.keep_cache:
            shutil.rmtree(cache, ignore_errors=True)
    total = sum(seconds for label, seconds in results if not label.startswith("bake"))
    print(f"{'up + ssh + reboot + down':<22} {total:7.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
