"""The merge gate (CTO review): main only moves to a commit that was tested exactly as it lands.

For each pending branch, oldest first: merge it onto the tip of origin/main in the review
worktree, run the checks on that merge commit and compare with main's baseline, ask the
reviewer model, and land the tested commit with a compare-and-swap push (redone if main
moved). Rejected branches are archived under refs/archive/ and deleted. With more than
`review.batch_min` pending, approved branches are merged and tested as one batch and
bisected when the batch fails. Every step can be killed: the next run finishes the work
(a branch already on main is recorded as landed; a vanished one from its archive ref).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from factoryctl.adapters.agent import Agent
from factoryctl.adapters.checks import run_checks
from factoryctl.adapters.git import Git, GitError
from factoryctl.core.checks import CheckRun, Counts
from factoryctl.core.clock import format_ts
from factoryctl.core.defaults import PROMPT_BUDGET_CONTEXT
from factoryctl.core.errors import FactoryError, NotFound
from factoryctl.core.records import LIVE
from factoryctl.jobs import prompting
from factoryctl.jobs.context import Context
from factoryctl.jobs.workspace import ensure_setup, setup_marker
from factoryctl.rules.changes import protected_touched, worse
from factoryctl.rules.verdict import InvalidVerdict, ReviewerVerdict, parse_verdict
from factoryctl.state.baselines import Baselines
from factoryctl.state.locks import exclusive, job_lock


class MainMoved(Exception):
    """The compare-and-swap push found main at another commit than the one tested."""


@dataclass
class BranchOutcome:
    """What the gate decided about one branch in this run."""

    branch: str
    verdict: str  # approve | reject | pending | awaiting_human | would_land
    reasons: list[str] = field(default_factory=list)
    landed: str | None = None


def archive_ref(branch: str) -> str:
    return f"refs/archive/{branch}"


class MergeGate:
    def __init__(
        self,
        ctx: Context,
        *,
        reviewer: Agent | None = None,
        progress: Callable[[str], None] | None = None,
        dry_run: bool = False,
    ) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.main = ctx.settings.repo.main
        self.reviewer = reviewer or ctx.reviewer()
        self.say = progress or (lambda text: None)
        self.dry_run = dry_run
        self.repo = Git(ctx.repo_dir)
        self.path = ctx.paths.worktrees_dir / "review"
        self.git = Git(self.path, identity=("factory review", "review@factory.invalid"))
        self.baselines = Baselines(ctx.paths.state_dir, ctx.paths.locks_dir, ctx.log)
        self.check_runs = 0
        self.outcomes: list[BranchOutcome] = []

    # -- the run -------------------------------------------------------------------

    def run(self, only: str | None = None) -> list[BranchOutcome]:
        with job_lock(self.ctx.paths.locks_dir, "review"):
            pending = self._pending(only)
            if not pending:
                self.say("nothing pending")
                return []
            self._prepare()
            if only is None and len(pending) > self.settings.review.batch_min and not self.dry_run:
                self.say(f"{len(pending)} pending: reviewing as a batch")
                pending = self._batch(pending)
            for entry in pending:
                self._one(entry)
            return self.outcomes

    def _pending(self, only: str | None) -> list[dict[str, Any]]:
        entries = [e for e in self.ctx.review_queue().read().get("branches", []) if e.get("status") == "pending"]
        if only is None:  # waiting for a person: the reviewer was asked already
            entries = [e for e in entries if not (e.get("awaiting") == "human" and not e.get("human_approved"))]
        else:
            entries = [e for e in entries if e.get("branch") == only]
            if not entries:
                raise NotFound(f"no pending branch {only!r} in the review queue (see `factoryctl queue list`)")
        priority = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
        tasks = {t.id: t for t in self.ctx.tasks().all()}
        human = self.settings.review.mode == "human"

        def key(e: dict[str, Any]) -> tuple[int, int, str]:
            task = tasks.get(e.get("task") or -1)
            waiting = 0 if (not human or e.get("human_approved")) else 1  # a person's approvals first
            return (waiting, priority.get(task.priority, 2) if task else 2, str(e.get("queued", "")))

        return sorted(entries, key=key)

    def _prepare(self) -> None:
        prefix = self.settings.repo.branch_prefix
        with exclusive(self.ctx.paths.locks_dir / "repo.lock"):
            self.repo.fetch(
                "origin",
                f"+refs/heads/{self.main}:refs/remotes/origin/{self.main}",
                f"+refs/heads/{prefix}/*:refs/remotes/origin/{prefix}/*",
            )
            self.repo.run("worktree", "prune")
            registered = {p.resolve() for p in self.repo.worktrees()}
            if self.path.resolve() not in registered:
                if self.path.exists():
                    shutil.rmtree(self.path)
                setup_marker(self.ctx, "review").unlink(missing_ok=True)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.repo.run("worktree", "add", "--detach", "--quiet", str(self.path), f"origin/{self.main}")

    def _refresh_main(self) -> str:
        with exclusive(self.ctx.paths.locks_dir / "repo.lock"):
            self.repo.fetch("origin", f"+refs/heads/{self.main}:refs/remotes/origin/{self.main}")
        return self.repo.rev(f"refs/remotes/origin/{self.main}")

    # -- one branch at a time ----------------------------------------------------------

    def _one(self, entry: dict[str, Any]) -> None:
        branch = entry["branch"]
        for attempt in range(self.settings.review.max_redo):
            main_sha = self._refresh_main()
            head = self._recover(entry, main_sha)
            if head is None:
                return
            self.say(f"{branch}: merging onto {self.main} at {main_sha[:10]}" + (" (again)" if attempt else ""))
            started = time.monotonic()
            baseline = self._baseline(main_sha)
            merged = self._merge(main_sha, [entry])
            if not merged.merged:
                self._reject(entry, [f"conflict with {self.main} in: {', '.join(merged.conflicts[branch])}"])
                return
            after, reasons = self._test(baseline, retry=True)
            if reasons:
                self._reject(entry, ["checks got worse on the merge result: " + "; ".join(reasons)], baseline, after)
                return
            verdict = self._ask(entry, main_sha, baseline, after)
            if verdict is None:
                return
            if not verdict.approve:
                self._reject(entry, list(verdict.reasons), baseline, after, verdict)
                return
            if self.dry_run:
                self.outcomes.append(BranchOutcome(branch, "would_land", list(verdict.reasons)))
                self.say(f"{branch}: would land (dry run)")
                return
            if self._waits_for_person(entry, verdict, baseline, after):
                return
            try:
                self._land(merged.tip, main_sha)
            except MainMoved:
                self.say(f"{branch}: {self.main} moved during the review; redoing it on the new tip")
                continue
            self._landed(entry, merged.tip, baseline, after, verdict, time.monotonic() - started, tested=merged.tip)
            self.baselines.put(merged.tip, self.settings.checks, after, session=None)
            return
        self._alert(f"main-moving:{branch}", f"{branch}: {self.main} moved {self.settings.review.max_redo} times "
                    "during its review; left pending")  # fmt: skip
        self.outcomes.append(BranchOutcome(branch, "pending", [f"{self.main} kept moving"]))

    def _recover(self, entry: dict[str, Any], main_sha: str) -> str | None:
        """The branch head to review, or None when an earlier (interrupted) run decided it."""
        branch = entry["branch"]
        head = self.repo.maybe_rev(f"refs/remotes/origin/{branch}")
        if self.dry_run:
            return head
        if head is None:
            archived = self._archived(branch)
            if archived and self._is_ancestor(archived, main_sha):
                self._landed(entry, main_sha, None, None, None, 0.0, note="landed by an earlier, interrupted review")
            else:
                self._reject(entry, ["the branch is gone from origin" + (" (archived)" if archived else "")])
            return None
        if self._is_ancestor(head, main_sha):
            self._landed(entry, main_sha, None, None, None, 0.0, note="already on main (an earlier review landed it)")
            return None
        if entry.get("head") and head != entry["head"]:
            self._reject(entry, [f"the branch moved after its cycle tested it ({entry['head'][:10]} -> {head[:10]})"])
            return None
        touched = protected_touched(self.repo.diffstat(main_sha, head).files, self.settings.repo.protected_paths)
        if touched:
            self._reject(entry, [f"touches protected paths: {', '.join(touched[:5])}"])
            return None
        return head

    # -- building blocks ---------------------------------------------------------------

    @dataclass
    class Merge:
        tip: str
        merged: list[dict[str, Any]]
        conflicts: dict[str, list[str]]

    def _merge(self, base: str, entries: Sequence[dict[str, Any]]) -> MergeGate.Merge:
        """Merge the branches one after another onto `base`; conflicting ones are left out."""
        self.git.run("checkout", "--detach", "--force", "--quiet", base)
        self.git.run("reset", "--hard", "--quiet", base)
        self.git.run("clean", "-ffd", "--quiet")
        merged, conflicts = [], {}
        for entry in entries:
            branch = entry["branch"]
            task = f", task #{entry['task']}" if entry.get("task") else ""
            message = f"Merge {branch} (session {entry.get('session', '?')}{task})"
            done = self.git.run("merge", "--no-ff", "--no-edit", "-m", message, f"refs/remotes/origin/{branch}",
                                check=False)  # fmt: skip
            if done.ok:
                merged.append(entry)
                continue
            files = self.git.out("diff", "--name-only", "--diff-filter=U").splitlines()
            self.git.run("merge", "--abort", check=False)
            self.git.run("reset", "--hard", "--quiet", check=False)
            conflicts[branch] = files or [done.tail(120)]
        ensure_setup(self.ctx, self.path, "review")
        return MergeGate.Merge(self.git.rev("HEAD"), merged, conflicts)

    def _baseline(self, main_sha: str) -> dict[str, Counts]:
        def compute() -> dict[str, CheckRun]:
            self.git.run("checkout", "--detach", "--force", "--quiet", main_sha)
            self.git.run("clean", "-ffd", "--quiet")
            ensure_setup(self.ctx, self.path, "review")
            self.check_runs += 1
            return self._checks()

        counts, _ = self.baselines.get(main_sha, self.settings.checks, compute, session=None)
        return counts

    def _checks(self) -> dict[str, CheckRun]:
        return run_checks(self.settings.checks, self.path, heavy_slot=self.ctx.heavy_slot, clock=self.ctx.clock)

    def _test(self, baseline: Mapping[str, Counts], *, retry: bool) -> tuple[dict[str, CheckRun], list[str]]:
        """Run the checks on the worktree's HEAD; a worse result is retried once when `retry`."""
        self.check_runs += 1
        after = self._checks()
        reasons = worse(baseline, {n: r.counts for n, r in after.items()})
        if reasons and retry and self.settings.checks:
            self.say("checks got worse; running them once more before rejecting")
            self.check_runs += 1
            again = self._checks()
            again_reasons = worse(baseline, {n: r.counts for n, r in again.items()})
            if not again_reasons:
                flaky = sorted({r.split(":", 1)[0] for r in reasons})
                self.ctx.log.append("flake", data={"checks": flaky, "first": reasons, "head": self.git.rev("HEAD")})
            return again, again_reasons
        return after, reasons

    def _land(self, tip: str, expected_main: str) -> None:
        """Compare-and-swap: main becomes `tip` only if it is still `expected_main`."""
        done = self.repo.run(
            "push", "--porcelain", f"--force-with-lease=refs/heads/{self.main}:{expected_main}",
            "origin", f"{tip}:refs/heads/{self.main}", check=False,
        )  # fmt: skip
        if done.ok:
            return
        if self._refresh_main() != expected_main:
            raise MainMoved(expected_main)
        raise GitError(done)  # refused for another reason (a protected branch, a hook): say so

    def _archive_and_delete(self, branch: str) -> None:
        head = self.repo.maybe_rev(f"refs/remotes/origin/{branch}")
        if head is None:
            return
        self.repo.push("origin", ["--atomic", f"{head}:{archive_ref(branch)}", f":refs/heads/{branch}"])
        self.repo.run("update-ref", "-d", f"refs/remotes/origin/{branch}", check=False)

    def _archived(self, branch: str) -> str | None:
        out = self.repo.run("ls-remote", "origin", archive_ref(branch), check=False).stdout.split()
        return out[0] if out else None

    def _is_ancestor(self, commit: str, of: str) -> bool:
        return self.repo.run("merge-base", "--is-ancestor", commit, of, check=False).returncode == 0

    # -- the reviewer model ----------------------------------------------------------------

    def _ask(
        self, entry: dict[str, Any], base: str, baseline: Mapping[str, Counts], after: Mapping[str, CheckRun] | None
    ) -> ReviewerVerdict | None:
        """The reviewer's verdict; an invalid answer is asked again once, then the branch stays pending."""
        if self.dry_run:
            return ReviewerVerdict(True, ("dry run: the reviewer was not asked",), "low")
        prompt = self._review_prompt(entry, base, baseline, after)
        problem = ""
        for _ in range(2):
            result = self.reviewer.call(prompt, cwd=self.path, session=entry.get("session"), purpose="review")
            if not result.ok:
                problem = f"reviewer call failed: {result.outcome.value}: {result.reason}"
                continue
            try:
                return parse_verdict(result.text)
            except InvalidVerdict as exc:
                problem = f"invalid reviewer answer: {exc}"
        self._alert(f"reviewer:{entry['branch']}", f"{entry['branch']}: {problem}; left pending")
        self.outcomes.append(BranchOutcome(entry["branch"], "pending", [problem]))
        return None

    def _review_prompt(
        self, entry: dict[str, Any], base: str, baseline: Mapping[str, Counts], after: Mapping[str, CheckRun] | None
    ) -> str:
        branch = entry["branch"]
        cuts: list[str] = []
        budget = self.settings.review.diff_budget_chars
        diff = self.repo.run("diff", "--no-color", f"{base}...refs/remotes/origin/{branch}", "--").stdout
        stat = self.repo.out("diff", "--shortstat", f"{base}...refs/remotes/origin/{branch}", "--")
        if len(diff) > budget:
            cuts.append(f"the diff cut at {budget:,} of {len(diff):,} characters")
            diff = diff[:budget] + "\n[...cut]"
        after_counts = {n: r.counts for n, r in after.items()} if after else {
            n: Counts(**{k: v for k, v in c.items() if k in Counts.__dataclass_fields__})
            for n, c in (entry.get("after") or {}).items()
        }  # fmt: skip
        deltas = {n: {"before": vars(baseline[n]), "after": vars(c)} for n, c in after_counts.items() if n in baseline}
        task = None
        if entry.get("task"):
            try:
                t = self.ctx.tasks().get(int(entry["task"]))
                task = {"id": t.id, "title": t.title}
            except NotFound:
                pass
        context = prompting.fit(
            prompting.read_files(self.path, self.settings.repo.context_files), PROMPT_BUDGET_CONTEXT // 2,
            "context file", cuts,
        )  # fmt: skip
        values = {
            "branch": branch, "session": entry.get("session", "?"), "task": task,
            "summary": str(entry.get("summary", ""))[:1000], "deltas": deltas, "diff": diff.rstrip(),
            "stat": stat or "no changes", "context_files": context, "cuts": cuts,
        }  # fmt: skip
        return prompting.render_prompt(prompting.load_template(self.ctx.paths.home / "prompts", "review"), values)

    def _waits_for_person(
        self,
        entry: dict[str, Any],
        verdict: ReviewerVerdict,
        baseline: Mapping[str, Counts],
        after: Mapping[str, CheckRun],
    ) -> bool:
        if self.settings.review.mode != "human" or entry.get("human_approved"):
            return False
        self._update(entry["branch"], reviewer_verdict=verdict.as_dict(), awaiting="human")
        self._event(entry, "awaiting_human", list(verdict.reasons), baseline, after, verdict)
        self.outcomes.append(BranchOutcome(entry["branch"], "awaiting_human", list(verdict.reasons)))
        self.say(f"{entry['branch']}: approved by the reviewer; waiting for `factoryctl queue approve`")
        return True

    # -- batches (bors-style) --------------------------------------------------------------

    def _batch(self, pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Review each branch, then merge and test the approved ones together; returns what is left."""
        main_sha = self._refresh_main()
        approved: list[dict[str, Any]] = []
        for entry in pending:
            if self._recover(entry, main_sha) is None:
                continue
            baseline = self._baseline(main_sha)
            verdict = self._ask(entry, main_sha, baseline, None)
            if verdict is None:
                continue
            if not verdict.approve:
                self._reject(entry, list(verdict.reasons), baseline, None, verdict)
            elif not self._waits_for_person_early(entry, verdict):
                entry["_verdict"] = verdict
                approved.append(entry)
        leftover: list[dict[str, Any]] = []
        try:
            self._bisect(main_sha, approved, suspect=False, leftover=leftover)
        except MainMoved:
            self.say(f"{self.main} moved during the batch; the rest goes one by one")
            decided = {o.branch for o in self.outcomes}
            leftover = [e for e in approved if e["branch"] not in decided]
        return leftover

    def _waits_for_person_early(self, entry: dict[str, Any], verdict: ReviewerVerdict) -> bool:
        if self.settings.review.mode != "human" or entry.get("human_approved"):
            return False
        self._update(entry["branch"], reviewer_verdict=verdict.as_dict(), awaiting="human")
        self.outcomes.append(BranchOutcome(entry["branch"], "awaiting_human", list(verdict.reasons)))
        return True

    def _bisect(
        self, base: str, batch: list[dict[str, Any]], *, suspect: bool, leftover: list[dict[str, Any]]
    ) -> tuple[str, bool]:
        """Land what passes of `batch` on `base`; returns (new main, whether all of it landed).

        `suspect`: the batch is known to hold a failure (its parent failed and the other half
        passed), so it is split at once instead of being tested whole.
        """
        if not batch:
            return base, True
        if not suspect or len(batch) == 1:
            baseline = self._baseline(base)
            merged = self._merge(base, batch)
            leftover.extend(e for e in batch if e["branch"] in merged.conflicts)
            if not merged.merged:
                return base, False
            self.say(f"testing a batch of {len(merged.merged)} on {base[:10]}")
            after, reasons = self._test(baseline, retry=False)
            if not reasons:
                self._land(merged.tip, base)
                for entry in merged.merged:
                    self._landed(entry, merged.tip, baseline, after, entry.get("_verdict"), 0.0,
                                 note=f"landed in a batch of {len(merged.merged)}", tested=merged.tip)  # fmt: skip
                self.baselines.put(merged.tip, self.settings.checks, after, session=None)
                return merged.tip, len(merged.merged) == len(batch)
            if len(merged.merged) == 1:
                # A lone branch fails here after failing in its parent batch too: that was the retry.
                self._reject(merged.merged[0], ["checks got worse on the merge result: " + "; ".join(reasons)],
                             baseline, after)  # fmt: skip
                return base, False
            batch = merged.merged
        half = len(batch) // 2
        left, right = batch[:half], batch[half:]
        tip, all_left = self._bisect(base, left, suspect=False, leftover=leftover)
        tip, all_right = self._bisect(tip, right, suspect=all_left, leftover=leftover)
        return tip, all_left and all_right

    # -- decisions -------------------------------------------------------------------------

    def _landed(
        self,
        entry: dict[str, Any],
        main_sha: str,
        baseline: Mapping[str, Counts] | None,
        after: Mapping[str, CheckRun] | None,
        verdict: ReviewerVerdict | None,
        took: float,
        note: str = "",
        tested: str | None = None,
    ) -> None:
        branch = entry["branch"]
        self._archive_and_delete(branch)
        reasons = list(verdict.reasons) if verdict else ([note] if note else [])
        self._update(branch, status="approved", landed=main_sha, reasons=reasons, decided=format_ts(self.ctx.clock()))
        self._event(entry, "approve", reasons, baseline, after, verdict, landed=main_sha, took=took, tested=tested)
        self._settle_task(entry, landed=True, reasons=reasons)
        self.outcomes.append(BranchOutcome(branch, "approve", reasons, landed=main_sha))
        self.say(f"{branch}: landed; {self.main} is now {main_sha[:10]}")

    def _reject(
        self,
        entry: dict[str, Any],
        reasons: list[str],
        baseline: Mapping[str, Counts] | None = None,
        after: Mapping[str, CheckRun] | None = None,
        verdict: ReviewerVerdict | None = None,
    ) -> None:
        if self.dry_run:
            self.outcomes.append(BranchOutcome(entry["branch"], "would_reject", reasons))
            self.say(f"{entry['branch']}: would be rejected (dry run): {'; '.join(reasons)}")
            return
        self._archive_and_delete(entry["branch"])  # a no-op when it is already gone
        branch = entry["branch"]
        self._update(branch, status="rejected", reasons=reasons, decided=format_ts(self.ctx.clock()))
        self._event(entry, "reject", reasons, baseline, after, verdict)
        self._settle_task(entry, landed=False, reasons=reasons)
        self.outcomes.append(BranchOutcome(branch, "reject", reasons))
        self.say(f"{branch}: rejected: {'; '.join(reasons)}")

    def _settle_task(self, entry: dict[str, Any], *, landed: bool, reasons: list[str]) -> None:
        if not entry.get("task"):
            return
        tasks = self.ctx.tasks()
        try:
            task = tasks.get(int(entry["task"]))
        except NotFound:
            return
        if task.status not in LIVE:
            return  # cancelled or finished meanwhile
        if landed:
            tasks.transition(task.id, "done", note=f"landed {entry['branch']}")
        else:  # another try; the scheduler parks it after scheduler.max_task_failures attempts
            tasks.transition(task.id, "requeued", note="rejected: " + "; ".join(reasons)[:300])

    def _update(self, branch: str, **fields: Any) -> None:
        with self.ctx.review_queue().update() as doc:
            for entry in doc.get("branches", []):
                if entry.get("branch") == branch:
                    entry.update(fields)
                    entry.pop("_verdict", None)

    def _event(
        self,
        entry: dict[str, Any],
        verdict: str,
        reasons: list[str],
        baseline: Mapping[str, Counts] | None,
        after: Mapping[str, CheckRun] | None,
        model: ReviewerVerdict | None,
        *,
        landed: str | None = None,
        took: float = 0.0,
        tested: str | None = None,
    ) -> None:
        self.ctx.log.append(
            "cto_review",
            session=entry.get("session"),
            data={
                "branch": entry["branch"], "session": entry.get("session"), "task": entry.get("task"),
                "verdict": verdict, "reasons": reasons, "risk": model.risk if model else None,
                "issues": list(model.issues) if model else [],
                "before": {n: vars(c) for n, c in (baseline or {}).items()},
                "after": {n: vars(r.counts) for n, r in (after or {}).items()},
                "landed": landed, "tested": tested, "check_runs": self.check_runs, "duration_s": round(took, 3),
            },
        )  # fmt: skip

    def _alert(self, key: str, text: str) -> None:
        self.ctx.log.append("alert", data={"key": key, "text": text, "source": "review"})
        self.say(f"ALERT: {text}")


# -- queue commands ------------------------------------------------------------------------


def find_entry(ctx: Context, branch: str) -> dict[str, Any]:
    for entry in ctx.review_queue().read().get("branches", []):
        if entry.get("branch") == branch:
            return dict(entry)
    raise NotFound(f"no branch {branch!r} in the review queue (see `factoryctl queue list`)")


def approve(ctx: Context, branch: str) -> None:
    """A person approves a pending branch (review.mode = "human"); the next review lands it."""
    entry = find_entry(ctx, branch)
    if entry.get("status") != "pending":
        raise FactoryError(f"{branch} is {entry.get('status')}; only pending branches can be approved")
    MergeGate(ctx)._update(branch, human_approved=True)
    data = {"branch": branch, "verdict": "human_approve", "reasons": ["approved by a person"]}
    ctx.log.append("cto_review", session=entry.get("session"), data=data)


def reject(ctx: Context, branch: str, reason: str) -> None:
    """A person rejects a pending branch: archived, deleted, its reasons reach the session."""
    entry = find_entry(ctx, branch)
    if entry.get("status") != "pending":
        raise FactoryError(f"{branch} is {entry.get('status')}; only pending branches can be rejected")
    gate = MergeGate(ctx)
    with job_lock(ctx.paths.locks_dir, "review"):
        gate._prepare()
        gate._reject(entry, [f"rejected by a person: {reason}"])


def restore(ctx: Context, branch: str) -> None:
    """Bring an archived (rejected) branch back from refs/archive/ as pending."""
    entry = find_entry(ctx, branch)
    if entry.get("status") == "pending":
        raise FactoryError(f"{branch} is already pending")
    gate = MergeGate(ctx)
    archived = gate._archived(branch)
    if archived is None:
        raise NotFound(f"no archive ref {archive_ref(branch)} on origin")
    with exclusive(ctx.paths.locks_dir / "repo.lock"):
        gate.repo.run("fetch", "--quiet", "origin", f"+{archive_ref(branch)}:{archive_ref(branch)}")
        gate.repo.push("origin", [f"{archived}:refs/heads/{branch}"])
    gate._update(branch, status="pending", reasons=[], restored=format_ts(ctx.clock()), human_approved=False)
    ctx.log.append("cto_review", session=entry.get("session"),
                   data={"branch": branch, "verdict": "restored", "reasons": []})  # fmt: skip
