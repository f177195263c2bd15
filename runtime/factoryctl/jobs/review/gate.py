"""The merge gate (CTO review): main only moves to a commit that was tested exactly as it lands.

For each pending branch, oldest first (`review_one`, read it top to bottom): see where the
branch stands, merge it onto the tip of origin/main in the review worktree, run the checks
on that merge commit and compare with main's baseline, ask the reviewer model, and land
the tested commit with a compare-and-swap push (redone if main moved). After each step
a pure rule (rules/gate.py) says whether the branch's review ends there; the decision is
carried out in one place (record.py). With more than `review.batch_min` pending, the
approved branches are merged and tested as one batch (batch.py). Every step can be
killed: the next run finishes the work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from factoryctl.adapters.agent import Agent
from factoryctl.adapters.checks import Pristine, run_checks
from factoryctl.core.checks import CheckRun, Counts
from factoryctl.core.defaults import REVIEW_FAILURES
from factoryctl.core.errors import FactoryError, NotFound, StateUnreachable
from factoryctl.core.records import Alert, ReviewEntry
from factoryctl.jobs.context import Context
from factoryctl.jobs.review import reviewer
from factoryctl.jobs.review.batch import review_batch
from factoryctl.jobs.review.record import Recorder
from factoryctl.jobs.review.tree import MainMoved, ReviewTree
from factoryctl.jobs.workspace import SetupFailed
from factoryctl.rules import gate as rules
from factoryctl.rules.changes import CHANGED_DURING_CHECKS, no_checks_reason, worse_reasons
from factoryctl.rules.gate import Decision
from factoryctl.rules.verdict import ReviewerVerdict
from factoryctl.state.baselines import checks_key


class MainBroken(FactoryError):
    """Main itself cannot be set up: nothing can be compared with it."""

    def __init__(self, commit: str, message: str) -> None:
        super().__init__(message)
        self.commit = commit


DRY_RUN_VERDICT = ReviewerVerdict(True, ("dry run: the reviewer was not asked",), "low")


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
        self.tree = ReviewTree(ctx)
        self.record = Recorder(ctx, self.tree, self.say, dry_run=dry_run)
        self.baselines = ctx.baselines()
        self.check_runs = 0

    @property
    def decisions(self) -> list[Decision]:
        return self.record.decisions

    def run(self, only: str | None = None) -> list[Decision]:
        self.ctx.require_sandbox()
        with self.ctx.job_lock("review"):
            pending = self._pending(only)
            if not pending:
                self.say("nothing pending")
                return []
            self.tree.prepare()
            try:
                if only is None and len(pending) > self.settings.review.batch_min and not self.dry_run:
                    pending = self._batch_first(pending)
                for entry in pending:
                    self.review_safely(entry)
            except MainBroken as exc:  # nothing can be compared with main: say so once, end the run
                self.record.alerts.send(Alert(f"review:main-broken:{exc.commit[:12]}", str(exc)))
                raise
            finally:
                if self.decisions and not self.dry_run:  # the outcome figures count review runs from this
                    self.ctx.log.append("review_run", data={"branches": len(self.decisions),
                                                            "check_runs": self.check_runs})  # fmt: skip
            return self.decisions

    def _batch_first(self, pending: list[ReviewEntry]) -> list[ReviewEntry]:
        """The batch; what it leaves, or everything it did not decide when it failed, goes one by one."""
        self.say(f"{len(pending)} pending: reviewing as a batch")
        try:
            for done in review_batch(self, pending):
                self.finish(done.entry, done.decision, started=done.started, check_runs=done.check_runs)
        except MainBroken:
            raise
        except FactoryError as exc:
            self.say(f"the batch failed ({exc}); the rest goes one by one")
        decided = {d.branch for d in self.decisions}
        return [e for e in pending if e.branch not in decided]

    def _pending(self, only: str | None) -> list[ReviewEntry]:
        queue = self.ctx.review_queue().read()
        for problem in queue.problems:  # a malformed entry is skipped (and left for a person), never the run's end
            self.record.alerts.send(Alert(f"review:bad-entry:{problem[:80]}", f"skipped: {problem}"))
        entries = queue.pending()
        priority_of = {t.id: t.priority for t in self.ctx.tasks().all()}
        human = self.settings.review.mode == "human"
        chosen = rules.review_order(entries, priority_of, human_mode=human, only=only)
        if only is not None and not chosen:
            raise NotFound(f"no pending branch {only!r} in the review queue (see `factoryctl queue list`)")
        return chosen

    # -- one branch, top to bottom -----------------------------------------------------------

    def review_safely(self, entry: ReviewEntry) -> Decision | None:
        """`review_one`, where anything going wrong with this branch is a decision about it, never the end
        of the run (main's own setup failing is the exception: no branch can be judged)."""
        started, runs = time.monotonic(), self.check_runs
        try:
            return self.review_one(entry)
        except (MainBroken, StateUnreachable):  # no branch's fault: the run ends, the branch stays pending
            raise
        except FactoryError as exc:
            decision = rules.review_failed(entry, str(exc)[:500], REVIEW_FAILURES)
            return self.finish(entry, decision, started=started, check_runs=self.check_runs - runs)

    def review_one(self, entry: ReviewEntry) -> Decision:
        started, runs = time.monotonic(), self.check_runs
        tries = self.settings.review.max_redo
        for attempt in range(tries):
            main_sha = self.tree.refresh_main()
            decision = self._review_on(entry, main_sha, again=attempt > 0)
            if decision is not None:
                return self.finish(entry, decision, started=started, check_runs=self.check_runs - runs)
            self.say(f"{entry.branch}: {self.main} moved during the review; redoing it on the new tip")
        decision = rules.main_kept_moving(entry.branch, self.main, tries)
        return self.finish(entry, decision, started=started, check_runs=self.check_runs - runs)

    def _review_on(self, entry: ReviewEntry, main_sha: str, *, again: bool) -> Decision | None:
        """The branch's review on this main; None when main moved before it could land."""
        branch = entry.branch
        facts = self.tree.facts(entry, main_sha)
        decided = rules.before_merge(entry, facts, main_sha)
        if decided is not None:
            return decided
        if self._tested_as_it_stands(entry, facts.head, main_sha):
            assert entry.tested is not None
            self.say(f"{branch}: {self.main} has not moved since its merge result was tested; landing that commit")
            try:
                self.tree.land(entry.tested, main_sha)
            except MainMoved:
                return None
            return rules.landed(branch, entry.tested, None)
        self.say(f"{branch}: merging onto {self.main} at {main_sha[:10]}" + (" (again)" if again else ""))
        baseline = self.baseline(main_sha)
        try:
            merge = self.tree.merge(main_sha, [entry])
        except SetupFailed as exc:
            return rules.setup_failed(branch, str(exc))
        decided = rules.after_merge(branch, merge.conflicts, self.main)
        if decided is not None:
            return decided
        after, reasons = self.test(main_sha, baseline, retry=True)
        decided = rules.after_checks(branch, reasons)
        if decided is not None:
            return replace(decided.measured(baseline, after), tested=merge.tip)
        answer = self.ask(entry, main_sha, baseline, after)
        human = self.settings.review.mode == "human"
        decided = rules.after_reviewer(entry, answer, human_mode=human, dry_run=self.dry_run, sensitive=facts.sensitive,
                                       no_checks=no_checks_reason(self.settings))  # fmt: skip
        if decided is not None:
            return replace(decided.measured(baseline, after), tested=merge.tip)
        assert isinstance(answer, ReviewerVerdict)
        # Main moves only if what follows can be recorded (and, on PostgreSQL, this gate still holds the
        # review lock): a state lost during the review leaves main as it was and the branch pending.
        self.ctx.state.check()
        try:
            self.tree.land(merge.tip, main_sha)
        except MainMoved:
            return None
        self.baselines.put(merge.tip, self.settings.checks, after)
        return rules.landed(branch, merge.tip, answer).measured(baseline, after)

    def _tested_as_it_stands(self, entry: ReviewEntry, head: str | None, main_sha: str) -> bool:
        """A person approved a branch whose merge result the gate tested on this very main, with this
        checks configuration, and the branch has not moved: that commit lands as it was tested."""
        if not (entry.human_approved and entry.tested and head and not self.dry_run):
            return False
        if entry.tested_key != checks_key(self.settings.checks):
            return False
        return self.tree.merge_of(entry.tested) == (main_sha, head)

    def finish(self, entry: ReviewEntry, decision: Decision, *, started: float, check_runs: float) -> Decision:
        decision = replace(decision, duration_s=time.monotonic() - started, check_runs=check_runs)
        if self.dry_run:
            decision = rules.in_dry_run(decision)
        return self.record.apply(entry, decision)

    # -- the steps' tools --------------------------------------------------------------------

    def baseline(self, main_sha: str) -> dict[str, Counts]:
        """Main's counts for this checks configuration: shared with the cycles, computed once."""

        def compute() -> dict[str, CheckRun]:
            try:
                self.tree.checkout_main(main_sha)
            except SetupFailed as exc:
                raise MainBroken(main_sha, f"{self.main} at {main_sha[:10]} cannot be set up, no branch can be "
                                 f"reviewed: {exc}") from None  # fmt: skip
            self.check_runs += 1
            return self._checks()

        counts, _ = self.baselines.get(main_sha, self.settings.checks, compute, session=None)
        return counts

    def _checks(self) -> dict[str, CheckRun]:
        launch = self.ctx.launch(self.tree.path, "review")
        pristine = Pristine(self.tree.git, tuple(self.settings.repo.dependency_dirs))
        return run_checks(self.settings.checks, launch, heavy_slot=self.ctx.heavy_slot, clock=self.ctx.clock,
                          pristine=pristine)  # fmt: skip

    def test(self, base: str, baseline: Mapping[str, Counts], *, retry: bool) -> tuple[dict[str, CheckRun], list[str]]:
        """Run the checks on the review worktree's HEAD; a worse result is retried once when `retry`.

        Checks that changed HEAD or a tracked file did not test the merge commit: that is worse.
        """
        head = self.tree.git.rev("HEAD")
        tests = self.baselines.tests(base, self.settings.checks)
        self.check_runs += 1
        after = self._checks()
        if not self.tree.git.unchanged(head):
            return after, [CHANGED_DURING_CHECKS]
        reasons = worse_reasons(baseline, tests, after)
        # Retried only where flakes live (test runners), never a deterministic tool's result.
        may_flake = {spec.name for spec in self.settings.checks if spec.retry_on_regression}
        if not (retry and {r.split(":", 1)[0] for r in reasons} & may_flake):
            return after, reasons
        self.say("checks got worse; running them once more before rejecting")
        self.check_runs += 1
        again = self._checks()
        if not self.tree.git.unchanged(head):
            return again, [CHANGED_DURING_CHECKS]
        again_reasons = worse_reasons(baseline, tests, again)
        if not again_reasons:
            flaky = sorted({r.split(":", 1)[0] for r in reasons})
            self.ctx.log.append("flake", data={"checks": flaky, "first": reasons, "head": head})
        return again, again_reasons

    def ask(
        self, entry: ReviewEntry, base: str, baseline: Mapping[str, Counts], after: Mapping[str, CheckRun] | None
    ) -> ReviewerVerdict | str:
        if self.dry_run:
            return DRY_RUN_VERDICT
        prompt = reviewer.review_prompt(self.ctx, self.tree, entry, base, baseline, after)
        return reviewer.ask(self.ctx, self.reviewer, prompt, entry)
