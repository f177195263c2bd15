"""The TypeScript sample as a pnpm project (tests/samples/ts-pnpm, installed by scripts/setup.sh):
`factoryctl init` detects pnpm, tsc and vitest; a branch whose package.json and lockfile disagree,
queued before two good ones, never stops the review: both good ones land in the same run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.factories import IGNORE, SAMPLES, git
from tests.helpers import run_cli, tool

pytestmark = pytest.mark.skipif(shutil.which("pnpm") is None, reason="pnpm is not installed (scripts/setup.sh)")

APPROVE = json.dumps({"verdict": "approve", "reasons": ["focused and tested"], "risk": "low", "issues": []})
PACKAGE = json.loads((SAMPLES / "ts-pnpm" / "package.json").read_text())
STALE = json.dumps({**PACKAGE, "dependencies": {"left-pad": "1.3.0"}}, indent=2) + "\n"


def a_test(name: str) -> str:
    return f'import {{ expect, it }} from "vitest";\n\nit("{name}", () => {{\n  expect(2 * 2).toBe(4);\n}});\n'


def factory_from_init(tmp_path: Path, calls: list[dict[str, object]]) -> Path:
    repo = tmp_path / "my-ts-pnpm"
    shutil.copytree(SAMPLES / "ts-pnpm", repo, ignore=IGNORE)
    (repo / ".gitignore").write_text("node_modules/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    scenario = tmp_path / "agent" / "scenario.json"
    scenario.parent.mkdir(exist_ok=True)
    scenario.write_text(json.dumps({"calls": calls}))
    home = tmp_path / "factory"
    agent = f"{tool('factory-scripted-agent')} --scenario {scenario}"
    done = run_cli("init", str(repo), "--home", str(home), "--agent", agent, home=home, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "setup:  pnpm install --frozen-lockfile" in done.stdout
    assert "tsc: pnpm exec tsc --noEmit" in done.stdout and "vitest: pnpm exec vitest run" in done.stdout
    # The scripted agent (the model's stand-in) writes its state next to its scenario: the sandbox lets it.
    with (home / "factory.toml").open("a") as fh:
        fh.write(f"\n[sandbox]\nwritable = [{json.dumps(str(tmp_path / 'agent'))}]\n")
    return home


def queue_stale_branch(home: Path, tmp_path: Path) -> None:
    """s1's branch whose package.json and lockfile disagree, pushed and queued first.

    A cycle no longer pushes such a branch (pnpm 12's `pnpm exec` re-checks the lockfile and the
    sandboxed check crashes, so the cycle discards it); a branch queued before that, or restored
    by a person, still reaches the gate: it is made here the way a cycle makes one.
    """
    from factoryctl.core.clock import format_ts, utcnow
    from factoryctl.core.records import ReviewEntry
    from factoryctl.jobs.context import Context

    work = tmp_path / "stale"
    git(tmp_path, "clone", "-q", str(home / "origin.git"), str(work))
    base = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "-q", "-b", "brl/s1/20260101T000000Z")
    (work / "package.json").write_text(STALE)
    git(work, "commit", "-q", "-am", "Use left-pad")
    git(work, "push", "-q", "origin", "HEAD")
    ctx = Context.load(home)
    ctx.review_queue().add_pending(ReviewEntry(
        branch="brl/s1/20260101T000000Z", session="s1", base=base, head=git(work, "rev-parse", "HEAD"),
        queued=format_ts(utcnow()), summary="Use left-pad", files_changed=1, lines_added=1,
    ))  # fmt: skip


def test_a_stale_lockfile_branch_never_blocks_the_two_good_ones_behind_it(tmp_path: Path) -> None:
    home = factory_from_init(tmp_path, [
        {"match": "You are s2,", "actions": [{"write": "src/a.test.ts", "content": a_test("a")}], "result": "Test a"},
        {"match": "You are s3,", "actions": [{"write": "src/b.test.ts", "content": a_test("b")}], "result": "Test b"},
        {"match": "by session s2", "result": APPROVE},
        {"match": "by session s3", "result": APPROVE},
        {"match": "by session s1", "result": APPROVE},
    ])  # fmt: skip
    queue_stale_branch(home, tmp_path)  # first in the queue: the gate meets it first
    for session in ("s2", "s3"):
        done = run_cli("cycle", session, home=home, timeout=600)
        assert "pushed: checks held" in done.stdout, done.stdout + done.stderr
    review = run_cli("review", "--json", home=home, timeout=900)
    # The gate's own part of issue 11 (the lead's): setup failing in the review worktree is a
    # decision about that branch (rejected with the reason, an alert), and the review goes on.
    assert review.returncode == 0, review.stdout + review.stderr
    queue = {e["session"]: e for e in json.loads(run_cli("queue", "list", "--all", "--json", home=home).stdout)}
    assert queue["s2"]["status"] == queue["s3"]["status"] == "approved", queue
    assert queue["s1"]["status"] == "rejected" and "lockfile" in " ".join(queue["s1"]["reasons"]).lower(), queue
    origin = home / "origin.git"
    assert git(origin, "show", "main:src/a.test.ts") and git(origin, "show", "main:src/b.test.ts")
