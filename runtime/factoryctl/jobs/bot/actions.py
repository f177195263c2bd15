"""The bot's actions: each a thin call into the jobs the CLI calls too, answered as a `Reply`.

Reads go straight to the same functions the CLI uses (`jobs.status.collect`, the task
queue, the log); a person's word on a branch goes to `jobs.review.person`, pause and resume
to `jobs.pause`. The long jobs (review, standup, doctor) start through the one launcher
(`jobs.launcher`, as the HTTP triggers do). Long work answers at once and hands back
`later`, which the bot runs in the background and whose reply it sends when the work ends.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from factoryctl.adapters.git import check_branch_name
from factoryctl.adapters.runner import Completed
from factoryctl.adapters.telegram import Reply
from factoryctl.core.clock import day_start, format_ts
from factoryctl.core.defaults import BOT_LANDINGS_DAYS, BOT_LOG_MAX
from factoryctl.core.errors import AlreadyRunning, FactoryError, UsageError
from factoryctl.core.records import OPEN
from factoryctl.jobs import pause as pausing
from factoryctl.jobs.bot import replies
from factoryctl.jobs.context import Context
from factoryctl.jobs.launcher import Launcher
from factoryctl.jobs.review import person
from factoryctl.jobs.status import collect
from factoryctl.rules.botskills import SNAPSHOT_KEYS, Action, BotSkill
from factoryctl.state.eventlog import Event, EventFilter
from factoryctl.state.spend import spend_since

Later = Callable[[], Reply]


@dataclass(frozen=True)
class Answer:
    reply: Reply
    outcome: str = "ok"  # ok | error | busy | started
    later: Later | None = None


def error(text: str) -> Answer:
    return Answer(Reply.text(text), "error")


class Actions:
    """What the bot can do; `do(action, arg)` is the one entry (commands and skills alike)."""

    def __init__(
        self, ctx: Context, skills: Callable[[], list[BotSkill]] = list, launcher: Launcher | None = None
    ) -> None:
        self.ctx = ctx
        self.skills = skills
        self.launcher = launcher or Launcher(ctx)
        self._running: set[str] = set()
        self._guard = threading.Lock()

    def do(self, action: Action, arg: str = "") -> Answer:
        try:
            return getattr(self, f"_{action.value}")(arg.strip())  # type: ignore[no-any-return]
        except FactoryError as exc:
            return error(f"Error: {exc}")

    # -- reads ---------------------------------------------------------------------------

    def landings(self, n: int = 3) -> list[Event]:
        since = format_ts(self.ctx.clock() - timedelta(days=BOT_LANDINGS_DAYS))
        flt = EventFilter(types=frozenset({"cto_review"}), since=since)
        found = []
        for event in self.ctx.log.iter_reverse(flt):
            if event.data.get("verdict") == "approve" and event.data.get("landed"):
                found.append(event)
                if len(found) >= n:
                    break
        return found

    def snapshot(self) -> dict[str, Any]:
        """The read-only status snapshot a skill's template sees (plain data, nothing callable)."""
        report = collect(self.ctx, last=0).as_dict()
        report["landings"] = [{"branch": e.data.get("branch"), "ts": e.ts, "commit": e.data.get("landed")}
                              for e in self.landings()]  # fmt: skip
        return {k: report.get(k) for k in SNAPSHOT_KEYS}

    def _status(self, arg: str) -> Answer:
        return Answer(replies.status(collect(self.ctx, last=0), self.landings()))

    def _tasks(self, arg: str) -> Answer:
        open_tasks = sorted((t for t in self.ctx.tasks().all() if t.status in OPEN), key=lambda t: t.sort_key())
        return Answer(replies.tasks(open_tasks))

    def _task(self, arg: str) -> Answer:
        if not arg:
            return error("usage: /task <what to build or fix>")
        task = self.ctx.tasks().add(arg)
        return Answer(Reply.text(f"queued task #{task.id}: {task.title}"))

    def pending(self) -> list[dict[str, Any]]:
        """The pending branches in queue order: `/approve 2` means the second of these."""
        return [e.as_dict() for e in self.ctx.review_queue().read().pending()]

    def _queue(self, arg: str) -> Answer:
        return Answer(replies.queue(self.pending()))

    def _log(self, arg: str) -> Answer:
        n = 20
        if arg:
            if not arg.isdigit() or not 1 <= int(arg) <= BOT_LOG_MAX:
                return error(f"usage: /log [n], n from 1 to {BOT_LOG_MAX}")
            n = int(arg)
        return Answer(replies.log(self.ctx.log.tail(n)))

    def _spend(self, arg: str) -> Answer:
        budget = collect(self.ctx, last=0).budget
        return Answer(replies.spend(spend_since(self.ctx.log, day_start(self.ctx.clock())), budget))

    def _help(self, arg: str) -> Answer:
        return Answer(replies.help_text(self.skills()))

    # -- what changes the factory ------------------------------------------------------------

    def _said(self, done: Completed) -> Reply:
        return Reply.text((done.stdout.strip() or done.stderr.strip() or f"exit {done.returncode}")[-3000:])

    def branch(self, arg: str) -> str:
        """A branch name, or the branch at that number of the /queue list."""
        token = arg.split()[0] if arg.split() else ""
        if not token:
            raise UsageError("name a branch or its number in /queue")
        if token.isdigit():
            pending = self.pending()
            if not 1 <= int(token) <= len(pending):
                raise UsageError(f"no branch number {token}; /queue lists {len(pending)}")
            return str(pending[int(token) - 1]["branch"])
        check_branch_name(token)
        return token

    def _approve(self, arg: str) -> Answer:
        branch = self.branch(arg)

        def land() -> Reply:
            said: list[str] = []
            person.approve_and_land(self.ctx, branch, say=said.append)
            return Reply.text("\n".join(said))

        return self._in_background(f"approve:{branch}", f"approving {branch}", land)

    def _reject(self, arg: str) -> Answer:
        branch = self.branch(arg)
        reason = arg.partition(" ")[2].strip() or "rejected from Telegram"
        person.reject(self.ctx, branch, reason)
        return Answer(Reply.text(f"rejected {branch} (archived under refs/archive/{branch})"))

    def _restore(self, arg: str) -> Answer:
        branch = self.branch(arg)
        person.restore(self.ctx, branch)
        return Answer(Reply.text(f"restored {branch}; it is pending again"))

    def _pause(self, arg: str) -> Answer:
        return Answer(Reply.text(pausing.pause(self.ctx, arg or None, "paused from Telegram")))

    def _resume(self, arg: str) -> Answer:
        return Answer(Reply.text(pausing.resume(self.ctx, arg or None)))

    def _review(self, arg: str) -> Answer:
        def outcomes(done: Completed) -> Reply:
            if not done.ok:
                return self._said(done)
            try:
                found = json.loads(done.stdout)["outcomes"]
            except (ValueError, KeyError, TypeError):
                return Reply.text(done.stdout.strip()[-3000:] or "the review printed nothing")
            return replies.review_outcomes(found)

        return self._launch("review", "review started; I will say what landed when it ends", outcomes, "--json")

    def _standup(self, arg: str) -> Answer:
        return self._launch("standup", "standup started", self._said)

    def _doctor(self, arg: str) -> Answer:
        return self._launch("doctor", "doctor started", self._said)

    def _launch(self, job: str, started: str, reply: Callable[[Completed], Reply], *args: str) -> Answer:
        """Start a long job through the launcher; its reply comes when it ends."""
        try:
            launched = self.launcher.start(job, *args)
        except AlreadyRunning as exc:
            return Answer(Reply.text(str(exc)), "busy")
        return Answer(Reply.text(started), "started", lambda: reply(launched.result()))

    def _in_background(self, name: str, started: str, work: Later) -> Answer:
        """Start `work` unless this bot runs the same work now."""
        with self._guard:
            if name in self._running:
                return Answer(Reply.text(f"{name} is already running"), "busy")
            self._running.add(name)

        def later() -> Reply:
            try:
                return work()
            finally:
                with self._guard:
                    self._running.discard(name)

        return Answer(Reply.text(started), "started", later)
