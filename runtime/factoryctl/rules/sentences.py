"""One sentence per event, for a person: `status`, `log tail`, the bot's `/log`, the status page.

Every event type the runtime appends has its own function in SENTENCES (a test greps the
runtime for the types it writes and fails on one without a sentence). Empty fields are left
out and nothing is printed as a Python value (`None`, `True`, `key=...`): the full record
stays in `--json`. Events are data from a file a person may have edited, so every field is
read with its type checked, and a sentence never fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol


class Event(Protocol):
    """An experiment-log event as the state layer reads it (`state.eventlog.Event`)."""

    @property
    def ts(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def session(self) -> str | None: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


# -- reading fields -----------------------------------------------------------------------


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value.strip() if isinstance(value, str) else ""


def _num(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _map(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _strs(data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if isinstance(value, str):
        return [value] if value.strip() else []
    if not isinstance(value, list | tuple):
        return []
    return [v.strip() for v in value if isinstance(v, str) and v.strip()]


# -- saying numbers -----------------------------------------------------------------------


def money(usd: float | None) -> str:
    """`$0.12`; a cost under a cent is `$0.004`, not `$0.00`."""
    if usd is None:
        return ""
    return f"${usd:.2f}" if usd == 0 or usd >= 0.01 else f"${usd:.3f}".rstrip("0")


def seconds(s: float | None) -> str:
    """A duration read at a glance: `0.1 s`, `14 s`, `3.5 min`, `2.0 h`."""
    if s is None or s < 0:
        return ""
    if s < 10:
        return f"{s:.1f} s"
    return f"{s:.0f} s" if s < 120 else (f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h")


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _join(*parts: str, sep: str = ", ") -> str:
    return sep.join(p for p in parts if p)


def _with(text: str, detail: str) -> str:
    """`text (detail)`, or `text` alone when there is no detail."""
    return f"{text} ({detail})" if detail else text


def _because(text: str, why: str) -> str:
    return f"{text}: {why}" if why else text


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sha(value: str) -> str:
    return value[:10]


def check_counts(name: str, counts: Mapping[str, Any]) -> str:
    """One check's result in words: `pytest 3 passed, 1 failed`, `tsc no errors`, `mypy crashed (...)`."""
    if counts.get("crashed") is True:
        return _with(f"{name} crashed", _short(_str(counts, "note"), 60))
    errors, failed = _int(counts, "errors") or 0, _int(counts, "failed") or 0
    passed, total = _int(counts, "passed") or 0, _int(counts, "total") or 0
    if total or passed or failed:
        return f"{name} " + _join(f"{passed:,} passed", f"{failed:,} failed" if failed else "")
    return f"{name} " + (plural(errors, "error") if errors else "no errors")


def check_change(name: str, before: Mapping[str, Any], after: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    """`pytest: failed 0 -> 1, tests 5 -> 6` (a count a run did not give: `none`)."""

    def count(counts: object, key: str) -> str:
        value = _int(counts, key) if isinstance(counts, Mapping) else None
        return "none" if value is None else f"{value:,}"

    words = {"total": "tests"}
    return f"{name}: " + ", ".join(f"{words.get(k, k)} {count(before, k)} -> {count(after, k)}" for k in keys)


def checks_text(results: Mapping[str, Any]) -> str:
    """Every check's result in one phrase (what held or changed reads at a glance)."""
    return ", ".join(check_counts(str(n), c) for n, c in results.items() if isinstance(c, Mapping))


def _task(data: Mapping[str, Any], id_key: str = "task", title_key: str = "task_title") -> str:
    task_id, title = _int(data, id_key), _str(data, title_key)
    if task_id is None:
        return ""
    return f"task #{task_id}" + (f" “{_short(title, 60)}”" if title else "")


def _subject(session: str | None, fallback: str) -> str:
    return session or fallback


# -- one function per event type ----------------------------------------------------------

Sentence = Callable[[str | None, Mapping[str, Any]], str]


def _ralph_cycle(session: str | None, d: Mapping[str, Any]) -> str:
    who = _subject(session, "a session")
    verdict, branch, reason = _str(d, "verdict"), _str(d, "branch"), _str(d, "reason")
    match verdict:
        case "pushed":
            head = f"{who} pushed {branch}" if branch else f"{who} pushed its change"
        case "discarded":
            head = f"{who} discarded its change"
        case "failed":
            head = f"{who}'s cycle failed"
        case "interrupted":
            head = f"{who}'s cycle was interrupted"
        case "waiting":
            head = f"{who} waited without calling the agent"
        case _:
            head = f"{who}'s cycle ended" + (f" {verdict}" if verdict else "")
    checks = checks_text(_map(d, "after")) if verdict == "pushed" else ""
    cost, took = _num(d, "cost_usd"), _num(_map(d, "durations"), "total_s")
    spent = _join(money(cost) if cost else "", seconds(took), sep=" in ")
    detail = _join(checks, _task(d), spent, sep="; ")
    return _with(_because(head, reason), detail)


_FAILURES = {
    "timeout": "timed out",
    "not_logged_in": "is not logged in",
    "malformed_output": "printed something other than its JSON result",
    "max_turns": "ran out of turns",
    "budget": "reached its dollar limit",
    "error": "reported an error",
    "missing_command": "was not found",
    "denied": "had its tool calls refused (the permission mode)",
    "overloaded": "found the model service overloaded",
    "api_error": "got an error from the model service",
    "stream_cut": "was cut off mid-answer",
}
_SAYS_IT_ALL = frozenset({"exit_nonzero", "denied", "overloaded", "api_error", "stream_cut"})
_JOBS = {"review": "the reviewer", "standup": "the standup", "doctor": "the doctor", "bot_improve": "bot improve"}


def _agent_call(session: str | None, d: Mapping[str, Any]) -> str:
    purpose = _str(d, "purpose")
    if purpose == "cycle" or not purpose:
        who = f"{session}'s agent" if session else "an agent"
    else:
        who = f"{_JOBS.get(purpose, purpose)}'s model call" + (f" for {session}" if session else "")
    outcome, took = _str(d, "outcome"), seconds(_num(d, "duration_s"))
    if outcome == "success":
        head = f"{who} answered" + (f" in {took}" if took else "")
    else:
        code, reason = _int(d, "exit_code"), _short(_str(d, "reason"), 160)
        head = f"{who} failed" + (f" after {took}" if took else "")
        if outcome == "exit_nonzero" and not reason:
            head = _because(head, f"exited with code {code}" if code is not None else "exited")
        elif outcome in _SAYS_IT_ALL and reason:  # the adapter's reason names the outcome already
            head = _because(head, reason)
        else:
            head = _with(_because(head, _FAILURES.get(outcome, outcome.replace("_", " "))), reason)
    cost, turns = _num(d, "cost_usd"), _int(d, "num_turns")
    tokens = (_int(d, "input_tokens") or 0) + (_int(d, "output_tokens") or 0)
    denied, tools = _strs(d, "denied"), _int(d, "tool_calls")
    detail = _join(money(cost) if cost else "", plural(turns, "turn") if turns else "",
                   plural(tools, "tool call") if tools else "",
                   plural(tokens, "token") if tokens else "",
                   f"refused: {', '.join(denied[:5])}" if denied else "")  # fmt: skip
    return f"{head}, {detail}" if detail else head


_GATE = {
    "reject": "was rejected",
    "pending": "stays in the review queue",
    "awaiting_human": "passed the review and waits for a person (factoryctl queue approve)",
    "would_land": "would land (dry run)",
    "would_reject": "would be rejected (dry run)",
    "human_approve": "was approved by a person; it lands at the next review",
    "restored": "was brought back to the review queue by a person",
}


def _cto_review(session: str | None, d: Mapping[str, Any]) -> str:
    branch, verdict, landed = _str(d, "branch") or "a branch", _str(d, "verdict"), _str(d, "landed")
    if verdict == "approve":
        head = f"{branch} landed" + (f" as {_sha(landed)}" if landed else "")
    else:
        head = f"{branch} " + _GATE.get(verdict, f"was reviewed ({verdict or 'no verdict'})")
    reasons = "; ".join(_short(r, 160) for r in _strs(d, "reasons")[:3])
    runs, took = _int(d, "check_runs"), seconds(_num(d, "duration_s"))
    detail = _join(plural(runs, "check run") if runs else "", took)
    return _with(_because(head, reasons), detail)


def _review_run(session: str | None, d: Mapping[str, Any]) -> str:
    branches, runs = _int(d, "branches") or 0, _int(d, "check_runs") or 0
    return f"the review went through {plural(branches, 'branch', 'branches')} with {plural(runs, 'check run')}"


def _flake(session: str | None, d: Mapping[str, Any]) -> str:
    checks, head = ", ".join(_strs(d, "checks")) or "a check", _sha(_str(d, "head"))
    where = f" on {head}" if head else ""
    return f"{checks} failed once and passed on the second run{where} (a flaky test)"


def _team_standup(session: str | None, d: Mapping[str, Any]) -> str:
    if d.get("skipped") is True:
        return _because("the standup was skipped", _str(d, "reason"))
    calls, cost, tasks = _int(d, "calls") or 0, _num(d, "cost_usd"), d.get("tasks_created")
    created = len(tasks) if isinstance(tasks, list) else 0
    failed = d.get("failed")
    problems = len(failed) if isinstance(failed, list) else 0
    detail = _join(plural(calls, "model call"), money(cost) if cost else "",
                   plural(created, "task") + " created" if created else "",
                   plural(problems, "answer") + " failed" if problems else "")  # fmt: skip
    summary = _short(_str(d, "summary"), 200)
    return _with("the standup met" + (f": {summary}" if summary else ""), detail)


def _doctor_analysis(session: str | None, d: Mapping[str, Any]) -> str:
    summary = _short(_str(d, "summary"), 240)
    if not summary:
        states = _map(d, "sessions")
        summary = ", ".join(f"{name} {_str(v, 'health')}" for name, v in states.items() if isinstance(v, Mapping))
    cost = _num(d, "cost_usd")
    return _with(_because("the doctor looked at the sessions", summary), money(cost) if cost else "")


_TASK_ACTIONS = {
    "assigned": "was assigned to {who}",
    "in_progress": "was started by {who}",
    "pushed": "was pushed for review by {who}",
    "done": "is done",
    "failed": "failed",
    "cancelled": "was cancelled",
    "parked": "was parked",
    "requeued": "is back in the queue",
    "queued": "is back in the queue",
}


def _task_event(session: str | None, d: Mapping[str, Any]) -> str:
    task_id, action, note = _int(d, "id"), _str(d, "action"), _short(_str(d, "note"), 160)
    name = f"task #{task_id}" if task_id is not None else "a task"
    if action == "added":
        title, priority, source = _short(_str(d, "title"), 80), _str(d, "priority"), _str(d, "source")
        detail = _join(f"{priority} priority" if priority and priority != "normal" else "",
                       f"from {source}" if source else "", f"reserved for {session}" if session else "")  # fmt: skip
        return _with(f"{name} added" + (f": {title}" if title else ""), detail)
    phrase = _TASK_ACTIONS.get(action, action.replace("_", " ") or "changed")
    if "{who}" in phrase:
        phrase = phrase.format(who=session) if session else phrase.split(" by ")[0].split(" to ")[0]
    return _because(f"{name} {phrase}", note)


def _alert(session: str | None, d: Mapping[str, Any]) -> str:
    text = _str(d, "message") or _str(d, "text") or _str(d, "key") or "(no text)"
    return f"alert: {_short(text, 300)}"


def _alert_undelivered(session: str | None, d: Mapping[str, Any]) -> str:
    key, chat, tries, error = _str(d, "key"), _int(d, "chat"), _int(d, "tries"), _short(_str(d, "error"), 160)
    head = "a notice" + (f" ({key})" if key else "") + " could not be delivered"
    head += f" to chat {chat}" if chat is not None else ""
    head += f" after {plural(tries, 'try', 'tries')}" if tries else ""
    return _because(head, error)


def _bot(session: str | None, d: Mapping[str, Any]) -> str:
    action, chats = _str(d, "action"), _int(d, "chats")
    if action == "started":
        return "the bot started" + (f", answering {plural(chats, 'chat')}" if chats is not None else "")
    return f"the bot {action}" if action else "the bot changed state"


def _bot_refused(session: str | None, d: Mapping[str, Any]) -> str:
    chat = _int(d, "chat")
    return "the bot ignored a message from " + (f"chat {chat}" if chat is not None else "a chat") + \
        " (not allow-listed)"  # fmt: skip


_ASKED = {"empty": "an empty message", "unknown": "an unknown command", "unhandled": "a request it cannot handle",
          "button": "a button that is not its own"}  # fmt: skip
_ANSWERED = {"error": "with an error", "busy": "busy", "started": "started in the background"}


def _bot_message(session: str | None, d: Mapping[str, Any]) -> str:
    command, outcome, chat, ms = _str(d, "command"), _str(d, "outcome"), _int(d, "chat"), _num(d, "latency_ms")
    if command.startswith("skill:"):
        asked = f"a message with its learned skill {command[6:]}"
    elif command.startswith("button:"):
        asked = f"the {command[7:]} button"
    else:
        asked = _ASKED.get(command, f"/{command}" if command else "a message")
    head = f"the bot answered {asked}" + (f" from chat {chat}" if chat is not None else "")
    head += f" in {ms:.0f} ms" if ms is not None else ""
    return head if outcome in ("", "ok") else f"{head} ({_ANSWERED.get(outcome, outcome.replace('_', ' '))})"


def _bot_unhandled(session: str | None, d: Mapping[str, Any]) -> str:
    text = _short(_str(d, "text"), 120)
    return "the bot could not handle a message" + (f": “{text}”" if text else "")


def _bot_improve(session: str | None, d: Mapping[str, Any]) -> str:
    messages, accepted, refused = _int(d, "messages") or 0, _strs(d, "accepted"), d.get("refused")
    refused_n = len(refused) if isinstance(refused, list) else 0
    note, cost = _short(_str(d, "note"), 160), _num(d, "cost_usd")
    if not messages:
        return _because("bot improve had no unhandled messages to learn from", note)
    head = f"bot improve read {plural(messages, 'unhandled message')}: " + (
        f"learned {', '.join(accepted)}" if accepted else "learned nothing new"
    )
    detail = _join(f"{refused_n} refused" if refused_n else "", money(cost) if cost else "", note)
    return _with(head, detail)


def _trigger(session: str | None, d: Mapping[str, Any]) -> str:
    endpoint, outcome, job = _str(d, "endpoint") or "an HTTP trigger", _str(d, "outcome"), _str(d, "job")
    task, source = _int(d, "task"), _str(d, "source_ip")
    if job and "source_ip" not in d:  # the end of a job an HTTP trigger started
        took, code = seconds(_num(d, "duration_s")), _int(d, "exit_code")
        words = {"finished": "finished", "failed": "failed", "timed_out": "timed out"}.get(outcome, outcome)
        head = f"the {job} started over HTTP {words or 'ended'}" + (f" after {took}" if took else "")
        return _because(head, _short(_str(d, "reason"), 160) or (f"exit code {code}" if code else ""))
    said = {"started": "started it", "queued": f"queued task #{task}" if task is not None else "queued a task",
            "already_running": "it was already running", "unavailable": "this factoryctl cannot run it"}.get(
                outcome, outcome.replace("_", " "))  # fmt: skip
    return _because(f"HTTP {endpoint}" + (f" from {source}" if source else ""), said)


def _scheduler(session: str | None, d: Mapping[str, Any]) -> str:
    actions, errors = _strs(d, "actions"), _strs(d, "errors")
    gates = _map(d, "gates")
    closed = [f"{name} closed ({_short(str(why), 80)})" for name, why in _map(gates, "closed").items()]
    sessions = _map(d, "sessions")
    running, configured = _int(sessions, "running"), _int(sessions, "configured")
    did = "; ".join(_short(a, 100) for a in actions[:4]) + ("; …" if len(actions) > 4 else "")
    parts = [
        did or "nothing to change",
        "; ".join(closed) or "gates open",
        f"{running} of {configured} sessions running" if running is not None and configured is not None else "",
        f"errors: {'; '.join(_short(e, 100) for e in errors[:2])}" if errors else "",
    ]
    return "scheduler: " + _join(*parts, sep="; ")


def _baseline(session: str | None, d: Mapping[str, Any]) -> str:
    commit = _sha(_str(d, "commit"))
    who = f"{session} measured" if session else "measured"
    head = f"{who} main's baseline" + (f" at {commit}" if commit else "")
    return _because(head, checks_text(_map(d, "checks")) or "no checks")


SENTENCES: Mapping[str, Sentence] = {
    "ralph_cycle": _ralph_cycle,
    "agent_call": _agent_call,
    "cto_review": _cto_review,
    "review_run": _review_run,
    "flake": _flake,
    "team_standup": _team_standup,
    "doctor_analysis": _doctor_analysis,
    "task": _task_event,
    "alert": _alert,
    "alert_undelivered": _alert_undelivered,
    "bot": _bot,
    "bot_refused": _bot_refused,
    "bot_message": _bot_message,
    "bot_unhandled": _bot_unhandled,
    "bot_improve": _bot_improve,
    "trigger": _trigger,
    "scheduler": _scheduler,
    "baseline": _baseline,
}


def _unknown(kind: str, session: str | None, d: Mapping[str, Any]) -> str:
    """A type this version does not know (a newer writer, a hand-made line): its plain text fields."""
    said = [f"{k.replace('_', ' ')} {_short(v, 60)}" for k, v in d.items() if isinstance(v, str) and v.strip()]
    return _join(f"{kind.replace('_', ' ')}" + (f" from {session}" if session else ""), *said[:4], sep="; ")


def sentence(event: Event, limit: int = 400) -> str:
    """What happened, in one line a person reads at a glance (at most `limit` characters)."""
    data = event.data if isinstance(event.data, Mapping) else {}
    say = SENTENCES.get(event.type)
    text = say(event.session, data) if say else _unknown(event.type, event.session, data)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when(ts: str) -> str:
    """`2026-12-05T10:55:06.123Z` -> `2026-12-05 10:55:06` (UTC)."""
    return f"{ts[:10]} {ts[11:19]}" if len(ts) >= 19 and ts[10:11] == "T" else ts


def line(event: Event, limit: int = 400) -> str:
    """The event with its time, as `log tail` and `status` print it."""
    return f"{when(event.ts)}  {sentence(event, limit)}"
