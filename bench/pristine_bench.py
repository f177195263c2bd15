"""Benchmark the pristine copy per check run (issue 21) against reusing the worktree as it is.

On the TypeScript pnpm sample (tests/samples/ts-pnpm: tsc + vitest through `pnpm exec`, set
up by `factoryctl init` with `pnpm install`) and the Python sample (tests/samples/py-app:
pytest, ruff, mypy as `init` detects them), in a session's worktree after setup:

- reuse: `run_checks` without cleaning (what the checks did before issue 21);
- pristine: `run_checks` with `git clean -ffdx` (dependency folders kept) before each check,
  the worktree looked at after each one (HEAD, tracked files, anything new), and a last clean.

Both run each check with a fresh HOME (a temporary folder made and removed per check run)
and the report through a named pipe: those are not optional any more, and cost about a
millisecond. The two are interleaved, `--runs` times each (median of 10 by default).

    .venv/bin/python bench/pristine_bench.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ts_bench import initialised

from factoryctl.adapters.checks import Pristine, run_checks
from factoryctl.jobs.context import Context
from factoryctl.jobs.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "samples"


def factory(root: Path, sample: str) -> Context:
    """A factory on a copy of the sample, set up by `factoryctl init` (its checks as detected)."""
    toml = initialised(root, SAMPLES / sample, [{"result": "nothing"}])
    # The sandbox hides the home folder, and with it a pyenv's python3: the checks run on this interpreter.
    toml.write_text(toml.read_text().replace('"python3"', json.dumps(sys.executable)))
    return Context.load(root / "factory")


def timed(call: Callable[[], object]) -> float:
    t0 = time.monotonic()
    call()
    return time.monotonic() - t0


def bench(sample: str, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = factory(Path(tmp), sample)
        ws = Workspace(ctx, "s1")
        ws.prepare()
        ws.setup_if_needed()
        specs, launch = ctx.settings.checks, ws.launch()
        pristine = Pristine(ws.git, tuple(ctx.settings.repo.dependency_dirs))

        def reuse() -> None:
            run_checks(specs, launch, heavy_slot=ctx.heavy_slot, clock=ctx.clock)

        def clean() -> None:
            runs_ = run_checks(specs, launch, heavy_slot=ctx.heavy_slot, clock=ctx.clock, pristine=pristine)
            crashed = {n: r.counts.note for n, r in runs_.items() if r.counts.crashed}
            assert not crashed, crashed

        clean()  # warm-up: the OS's file cache, node's compile cache
        head = ws.git.rev("HEAD")

        def steps_alone() -> None:  # what `pristine` adds to a run: a clean and a look per check, a last clean
            for _ in specs:
                pristine.clean()
                pristine.void(head)
            pristine.clean()

        reused, pristined, steps = [], [], []
        for _ in range(runs):  # interleaved: a busy machine slows both alike
            reused.append(timed(reuse))
            pristined.append(timed(clean))
            steps.append(timed(steps_alone))
        a, b = statistics.median(reused), statistics.median(pristined)
        names = " + ".join(spec.name for spec in specs)
        print(f"{sample} ({names}), median of {runs}: reuse {a:.3f}s, pristine {b:.3f}s "
              f"({b - a:+.3f}s = {(b - a) / a:+.1%}); the cleaning and looking alone: "
              f"{statistics.median(steps) * 1000:.0f} ms per run of all checks")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--sample", choices=("ts-pnpm", "py-app"), action="append")
    args = parser.parse_args()
    samples = args.sample or ["ts-pnpm", "py-app"]
    if "ts-pnpm" in samples and shutil.which("pnpm") is None:
        sys.exit("pnpm is not installed: bash scripts/setup.sh")
    for sample in samples:
        bench(sample, args.runs)


if __name__ == "__main__":
    main()
