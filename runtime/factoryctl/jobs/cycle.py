"""One work cycle (the Ralph loop's body): read, analyze, hack, evaluate, record.

The rules are pure (`rules/changes.py`: what is worse, which paths are protected); `Cycle.run`
carries them out.
Whatever happens, including SIGTERM mid-cycle, no half-made branch is left behind: a
branch exists after a cycle only if it was pushed and queued for review.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from factoryctl.adapters.agent import Agent, AgentResult
from factoryctl.adapters.checks import Pristine, run_checks
from factoryctl.core.checks import CheckRun, Counts
from factoryctl.core.clock import format_ts
from factoryctl.core.defaults import (
    BRANCH_NAME_POLL_S,
    PROMPT_BUDGET_CONTEXT,
    PROMPT_BUDGET_RECENT,
    PROMPT_BUDGET_TASK_BODY,
    PROMPT_REJECTIONS,
)
from factoryctl.core.errors import FactoryError
from factoryctl.core.records import ACTIVE, CycleVerdict, ReviewEntry, Task, as_dict
from factoryctl.core.signals import StopRequested, signals_held
from factoryctl.jobs import lessons, prompting
from factoryctl.jobs.context import Context
from factoryctl.jobs.workspace import SetupFailed, Workspace, ensure_setup
from factoryctl.rules.changes import (
    CHANGED_DURING_CHECKS,
    NO_CHECKS,
    commit_message,
    main_problems,
    protected_touched,
    worse_reasons,
)
from factoryctl.state.eventlog import EventFilter


@dataclass
class CycleReport:
    session: str
    verdict: CycleVerdict = CycleVerdict.FAILED
    reason: str = ""
    branch: str | None = None
    base: str | None = None
    head: str | None = None
    task: Task | None = None
    agent: AgentResult | None = None
    before: dict[str, Counts] = field(default_factory=dict)
    after: dict[str, CheckRun] = field(default_factory=dict)
    baseline_computed: bool = False
    push_attempted: bool = False
    files: tuple[str, ...] = ()
    left_out: tuple[str, ...] = ()  # by-products of running the code, not committed
    added: int = 0
    deleted: int = 0
    durations: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what a person should know (no checks, main broken)

    def end(self, verdict: CycleVerdict, reason: str) -> None:
        self.verdict, self.reason = verdict, reason

    def as_event(self) -> dict[str, Any]:
        agent = self.agent
        return {
            "task": None if self.task is None else self.task.id,
            "task_title": None if self.task is None else self.task.title,
            "branch": self.branch,
            "base": self.base,
            "head": self.head,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "before": {n: vars(c) for n, c in self.before.items()},
            "after": {n: r.as_dict() for n, r in self.after.items()},
            "baseline_computed": self.baseline_computed,
            "files_changed": len(self.files),
            "files": list(self.files[:50]),
            "lines_added": self.added,
            "lines_deleted": self.deleted,
            "left_out": list(self.left_out[:50]),
            "agent_outcome": None if agent is None else agent.outcome.value,
            "summary": None if agent is None else agent.text[:500],
            "cost_usd": 0.0 if agent is None else agent.cost_usd,
            "num_turns": 0 if agent is None else agent.num_turns,
            "denied": [] if agent is None else list(agent.denied),
            "durations": {k: round(v, 3) for k, v in self.durations.items()},
            "notes": list(self.notes),
        }


class Cycle:
    """One cycle of one session, in that session's worktree."""

    def __init__(self, ctx: Context, session: str, *, agent: Agent | None = None, progress: Any = None) -> None:
        self.ctx = ctx
        self.session = ctx.local_session(session)
        self.agent = agent or ctx.agent()
        self.ws = Workspace(ctx, session)
        self.say = progress or (lambda text: None)
        self.baselines = ctx.baselines()
        self._started: str | None = None  # this cycle's start, as its heartbeat says

    def run(self) -> CycleReport:
        self.ctx.require_sandbox()
        with self.ctx.job_lock(f"cycle-{self.session}"):
            report = CycleReport(self.session)
            started = time.monotonic()
            self.ctx.heartbeats().beat(self.session, "cycle", doing=None)
            self._started = self.ctx.heartbeats().of(self.session).get("cycle_started")
            try:
                self._run(report)
            except StopRequested:
                report.end(CycleVerdict.INTERRUPTED, "stopped (SIGTERM) before the branch was pushed")
                raise
            except FactoryError as exc:
                report.end(CycleVerdict.FAILED, str(exc))
            finally:
                with signals_held():  # a second SIGTERM must not cut the clean-up short
                    self._clean_up(report)
                    report.durations["total_s"] = time.monotonic() - started
                    self.ctx.log.append("ralph_cycle", session=self.session, data=report.as_event())
                last = {"verdict": report.verdict.value, "ended": format_ts(self.ctx.clock()), "branch": report.branch,
                        "reason": report.reason[:200]}  # fmt: skip
                self.ctx.heartbeats().beat(self.session, "idle", last_cycle=last, doing=None)
            return report

    def _run(self, report: CycleReport) -> None:
        specs = self.ctx.settings.checks
        self.say("fetching main and resetting the worktree")
        report.base = base = self.ws.prepare()
        t0 = time.monotonic()
        if self.ws.setup_if_needed():
            self.say("ran repo.setup in the worktree")
        report.durations["setup_s"] = time.monotonic() - t0
        if not specs:
            report.notes.append(NO_CHECKS)
            self.say("warning: " + NO_CHECKS)
        t0 = time.monotonic()
        report.before, report.baseline_computed = self.baselines.get(
            base, specs, lambda: self._checks("baseline"), session=self.session
        )
        if report.baseline_computed:
            self.ws.git.run("clean", "-ffd", "--quiet")  # what the checks left must not enter the change
            self.ws.clear_byproducts()
        report.durations["baseline_s"] = time.monotonic() - t0
        problems = main_problems(self.baselines.sound(specs), report.before)
        self.baselines.record_health(base, specs, report.before, problems, format_ts(self.ctx.clock()))
        if problems:  # a broken yardstick: an agent call now would be money spent on nothing
            report.notes.extend(problems)
            report.end(CycleVerdict.WAITING, "main is broken, waiting for it to be fixed: " + "; ".join(problems))
            self.say(report.reason)
            return
        report.task = self.ctx.tasks().claim(self.session, max_attempts=self.ctx.settings.scheduler.max_task_failures)
        report.branch = branch = self._new_branch_name()
        self.ws.start_branch(branch, base)
        if report.task is not None:
            report.task = self.ctx.tasks().transition(report.task.id, "in_progress", note=branch)
        prompt = self._prompt(report)
        self.say(f"calling the agent on {branch}" + (f" for task #{report.task.id}" if report.task else ""))
        t0 = time.monotonic()
        with self.ws.agent_git(branch, base) as agent_git:
            launch = self.ctx.launch(self.ws.path, self.session, network=True, credential=True,
                                     extra_writable=(agent_git,))  # fmt: skip
            report.agent = result = self.agent.call(
                prompt, cwd=self.ws.path, session=self.session, purpose="cycle", launch=launch,
                on_activity=self._activity,
            )  # fmt: skip
        report.durations["agent_s"] = time.monotonic() - t0
        if not result.ok:
            report.end(CycleVerdict.FAILED, f"agent call failed: {result.outcome.value}: {result.reason}")
            return
        self._evaluate(report, branch, base)

    def _evaluate(self, report: CycleReport, branch: str, base: str) -> None:
        git = self.ws.git
        if git.current_branch() != branch:
            report.end(CycleVerdict.DISCARDED, "the agent left its branch")
            return
        assert report.agent is not None
        report.left_out = tuple(self.ws.clear_byproducts())
        if report.left_out:
            shown = ", ".join(report.left_out[:5]) + (" ..." if len(report.left_out) > 5 else "")
            report.notes.append(f"left out {len(report.left_out)} by-product(s) of running the code: {shown}")
            self.say(report.notes[-1])
        git.commit_all(commit_message(self.session, report.task, report.agent.text))
        report.head = head = git.rev("HEAD")
        if not git.is_ancestor(base, head):
            report.end(CycleVerdict.DISCARDED, "the agent rewrote history below main")
            return
        stat = git.diffstat(base, head)
        report.files, report.added, report.deleted = stat.files, stat.added, stat.deleted
        if not stat.files:
            denied = report.agent.denied
            if denied:
                report.end(CycleVerdict.FAILED, f"no change: the agent's tools were denied ({', '.join(denied)})")
            else:
                report.end(CycleVerdict.DISCARDED, "no change")
            return
        hits = protected_touched(stat.files, self.ctx.settings.repo.protected_paths)
        if hits:
            report.end(CycleVerdict.DISCARDED, f"touches protected paths: {', '.join(hits[:5])}")
            return
        t0 = time.monotonic()
        try:  # the change's own manifests (a dependency it added), never packages the agent installed by hand
            if ensure_setup(self.ctx, self.ws.path, self.session):
                self.say("ran repo.setup for the change's manifests")
        except SetupFailed as exc:
            report.end(CycleVerdict.DISCARDED, f"repo.setup failed on the change: {exc}")
            return
        report.durations["setup_s"] = report.durations.get("setup_s", 0.0) + time.monotonic() - t0
        t0 = time.monotonic()
        self.say("running the checks on the change")
        report.after = self._checks("after")
        report.durations["checks_s"] = time.monotonic() - t0
        if not git.unchanged(head):  # the counts must belong to the commit that is pushed
            report.end(CycleVerdict.DISCARDED, CHANGED_DURING_CHECKS)
            return
        before_tests = self.baselines.tests(base, self.ctx.settings.checks)
        reasons = worse_reasons(report.before, before_tests, report.after)
        if reasons:
            report.end(CycleVerdict.DISCARDED, "checks got worse: " + "; ".join(reasons))
            return
        if report.task is not None and self.ctx.tasks().get(report.task.id).status == "cancelled":
            report.end(CycleVerdict.DISCARDED, f"task #{report.task.id} was cancelled meanwhile")
            return
        self.say(f"pushing {branch}")
        report.push_attempted = True
        self.ws.git.push("origin", [f"refs/heads/{branch}:refs/heads/{branch}"])
        self.ctx.review_queue().add_pending(
            ReviewEntry(
                branch=branch,
                session=self.session,
                base=base,
                head=head,
                task=None if report.task is None else report.task.id,
                queued=format_ts(self.ctx.clock()),
                summary=report.agent.text[:500],
                before={n: vars(c) for n, c in report.before.items()},
                after={n: vars(r.counts) for n, r in report.after.items()},
                evidence={n: r.evidence for n, r in report.after.items() if r.evidence},
                files_changed=len(stat.files),
                lines_added=stat.added,
                lines_deleted=stat.deleted,
            )
        )
        report.end(CycleVerdict.PUSHED, "checks held; queued for review")

    def _activity(self, what: str) -> None:
        """The agent's latest tool call: in the pane, and in the heartbeat (status, standup facts)."""
        self.say(f"agent: {what}")
        self.ctx.heartbeats().beat(self.session, "cycle", doing=what, cycle_started=self._started)

    def _new_branch_name(self) -> str:
        """PREFIX/SESSION/UTC-SECOND; a second cycle within the same second waits for the next.

        The wait goes through the context's sleep, and is bounded: a clock that never moves
        (a fake one in a test) is an error, not a spin.
        """
        previous = as_dict(self.ctx.heartbeats().of(self.session).get("last_cycle"))
        for _ in range(int(5 / BRANCH_NAME_POLL_S)):
            stamp = self.ctx.clock().strftime("%Y%m%dT%H%M%SZ")
            name = f"{self.ctx.settings.repo.branch_prefix}/{self.session}/{stamp}"
            if name != previous.get("branch"):
                return name
            self.ctx.sleep(BRANCH_NAME_POLL_S)
        raise FactoryError(f"the clock did not move past {stamp} in 5 s: no fresh branch name for {self.session}")

    def _checks(self, phase: str) -> dict[str, CheckRun]:
        specs = self.ctx.settings.checks
        if specs:
            self.say(f"running {len(specs)} check(s) ({phase})")
        pristine = Pristine(self.ws.git, tuple(self.ctx.settings.repo.dependency_dirs))
        return run_checks(specs, self.ws.launch(), heavy_slot=self.ctx.heavy_slot, clock=self.ctx.clock,
                          pristine=pristine)  # fmt: skip

    def _clean_up(self, report: CycleReport) -> None:
        """Drop the branch unless it was pushed; settle the task."""
        if report.branch is not None and report.verdict is not CycleVerdict.PUSHED and report.base is not None:
            try:
                self.ws.drop_branch(report.branch, report.base, remote=report.push_attempted)
            except FactoryError as exc:
                report.reason += f" (and cleaning up failed: {exc})"
        task = report.task
        if task is None:
            return
        tasks = self.ctx.tasks()
        current = tasks.get(task.id)
        if current.status not in ACTIVE or current.session != self.session:
            return  # cancelled by a person, or requeued and given to another session meanwhile
        if report.verdict is CycleVerdict.PUSHED:
            tasks.transition(task.id, "pushed", note=report.branch or "")
        else:  # the scheduler parks a task once it has failed scheduler.max_task_failures times
            tasks.transition(task.id, "requeued", note=report.reason, refund=report.verdict is CycleVerdict.INTERRUPTED)

    def _prompt(self, report: CycleReport) -> str:
        cuts: list[str] = []
        settings = self.ctx.settings
        committed = prompting.read_committed(self.ws.repo, report.base or "HEAD", settings.repo.context_files, cuts)
        context = prompting.fit(
            committed,
            PROMPT_BUDGET_CONTEXT,
            "context file",
            cuts,
        )
        log = self.ctx.log
        cycles = log.tail(PROMPT_BUDGET_RECENT, EventFilter(types=frozenset({"ralph_cycle"})))
        recent = [prompting.describe(e) for e in cycles]
        task = report.task
        files = [str(f) for e in cycles if e.session == self.session for f in e.data.get("files") or []]
        task_text = "" if task is None else f"{task.title} {task.body}"
        skills = lessons.skills_for_prompt(self.ctx, lessons.at_hand(task_text, files), cuts)
        rejections = [
            prompting.describe(e)
            for e in log.tail(200, EventFilter(types=frozenset({"cto_review"})))
            if e.data.get("session") == self.session and e.data.get("verdict") == "reject"
        ][-PROMPT_REJECTIONS:]
        if task is not None and len(task.body) > PROMPT_BUDGET_TASK_BODY:
            cuts.append(f"task body cut at {PROMPT_BUDGET_TASK_BODY:,} characters")
        values = {
            "session": self.session,
            "branch": report.branch,
            "base": report.base or "",
            "task": None
            if task is None
            else {
                "id": task.id,
                "title": task.title,
                "priority": task.priority,
                "body": task.body[:PROMPT_BUDGET_TASK_BODY],
            },
            "baseline": {n: vars(c) for n, c in report.before.items()},
            "protected_paths": settings.repo.protected_paths,
            "context_files": context,
            "skills": skills,
            "advice": lessons.advice_for(self.ctx, self.session),
            "recent": recent,
            "rejections": rejections,
            "evidence": prompting.evidence_lines(log, self.session),
            "cuts": cuts,
        }
        return prompting.render_prompt(prompting.load_template(self.ctx.paths.home / "prompts", "cycle"), values)
