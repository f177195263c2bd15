"""One sentence per event, for a person: `status`, `log tail`, the bot's `/log`, the status page.

Every event type the runtime appends has its own function in SENTENCES (a test greps the
runtime for the types it writes and fails on one without a sentence). Empty fields are left
out and nothing is printed as a Python value (`None`, `True`, `key=...`): the full record
stays in `--json`. Events are data from a file a person may have edited, so every field is
read with its type checked, and a sentence never fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from factoryctl.core.records import LogEvent
from factoryctl.rules.words import (
    checks_text,
    field_int,
    field_map,
    field_num,
    field_str,
    field_strs,
    money,
    plural,
    seconds,
    short,
    when,
)


def _join(*parts: str, sep: str = ", ") -> str:
    return sep.join(p for p in parts if p)


def _with(text: str, detail: str) -> str:
    """`text (detail)`, or `text` alone when there is no detail."""
    return f"{text} ({detail})" if detail else text


def _because(text: str, why: str) -> str:
    return f"{text}: {why}" if why else text


def _sha(value: str) -> str:
    return value[:10]


def _task(data: Mapping[str, Any], id_key: str = "task", title_key: str = "task_title") -> str:
    task_id, title = field_int(data, id_key), field_str(data, title_key)
    if task_id is None:
        return ""
    return f"task #{task_id}" + (f" “{short(title, 60)}”" if title else "")


def _subject(session: str | None, fallback: str) -> str:
    return session or fallback


# -- one function per event type ----------------------------------------------------------

Sentence = Callable[[str | None, Mapping[str, Any]], str]


def _ralph_cycle(session: str | None, d: Mapping[str, Any]) -> str:
    who = _subject(session, "a session")
    verdict, branch, reason = field_str(d, "verdict"), field_str(d, "branch"), field_str(d, "reason")
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
    checks = checks_text(field_map(d, "after")) if verdict == "pushed" else ""
    cost, took = field_num(d, "cost_usd"), field_num(field_map(d, "durations"), "total_s")
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
    purpose = field_str(d, "purpose")
    if purpose == "cycle" or not purpose:
        who = f"{session}'s agent" if session else "an agent"
    else:
        who = f"{_JOBS.get(purpose, purpose)}'s model call" + (f" for {session}" if session else "")
    outcome, took = field_str(d, "outcome"), seconds(field_num(d, "duration_s"))
    if outcome == "success":
        head = f"{who} answered" + (f" in {took}" if took else "")
    else:
        code, reason = field_int(d, "exit_code"), short(field_str(d, "reason"), 160)
        head = f"{who} failed" + (f" after {took}" if took else "")
        if outcome == "exit_nonzero" and not reason:
            head = _because(head, f"exited with code {code}" if code is not None else "exited")
        elif outcome in _SAYS_IT_ALL and reason:  # the adapter's reason names the outcome already
            head = _because(head, reason)
        else:
            head = _with(_because(head, _FAILURES.get(outcome, outcome.replace("_", " "))), reason)
    cost, turns = field_num(d, "cost_usd"), field_int(d, "num_turns")
    tokens = (field_int(d, "input_tokens") or 0) + (field_int(d, "output_tokens") or 0)
    denied, tools = field_strs(d, "denied"), field_int(d, "tool_calls")
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
    branch, verdict, landed = field_str(d, "branch") or "a branch", field_str(d, "verdict"), field_str(d, "landed")
    if verdict == "approve":
        head = f"{branch} landed" + (f" as {_sha(landed)}" if landed else "")
    else:
        head = f"{branch} " + _GATE.get(verdict, f"was reviewed ({verdict or 'no verdict'})")
    reasons = "; ".join(short(r, 160) for r in field_strs(d, "reasons")[:3])
    runs, took = field_int(d, "check_runs"), seconds(field_num(d, "duration_s"))
    detail = _join(plural(runs, "check run") if runs else "", took)
    return _with(_because(head, reasons), detail)


def _review_run(session: str | None, d: Mapping[str, Any]) -> str:
    branches, runs = field_int(d, "branches") or 0, field_int(d, "check_runs") or 0
    return f"the review went through {plural(branches, 'branch', 'branches')} with {plural(runs, 'check run')}"


def _flake(session: str | None, d: Mapping[str, Any]) -> str:
    checks, head = ", ".join(field_strs(d, "checks")) or "a check", _sha(field_str(d, "head"))
    where = f" on {head}" if head else ""
    return f"{checks} failed once and passed on the second run{where} (a flaky test)"


def _team_standup(session: str | None, d: Mapping[str, Any]) -> str:
    if d.get("skipped") is True:
        return _because("the standup was skipped", field_str(d, "reason"))
    calls, cost, tasks = field_int(d, "calls") or 0, field_num(d, "cost_usd"), d.get("tasks_created")
    created = sum(1 for t in tasks if isinstance(t, Mapping) and "id" in t) if isinstance(tasks, list) else 0
    failed = d.get("failed")
    problems = len(failed) if isinstance(failed, list) else 0
    detail = _join(plural(calls, "model call"), money(cost) if cost else "",
                   plural(created, "task") + " created" if created else "",
                   plural(problems, "answer") + " failed" if problems else "")  # fmt: skip
    summary = short(field_str(d, "summary"), 200)
    return _with("the standup met" + (f": {summary}" if summary else ""), detail)


def _doctor_analysis(session: str | None, d: Mapping[str, Any]) -> str:
    summary = short(field_str(d, "summary"), 240)
    if not summary:
        states = field_map(d, "sessions")
        summary = ", ".join(f"{name} {field_str(v, 'state')}" for name, v in states.items() if isinstance(v, Mapping))
    cost = field_num(d, "cost_usd")
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
    task_id, action, note = field_int(d, "id"), field_str(d, "action"), short(field_str(d, "note"), 160)
    name = f"task #{task_id}" if task_id is not None else "a task"
    if action == "added":
        title, priority, source = short(field_str(d, "title"), 80), field_str(d, "priority"), field_str(d, "source")
        detail = _join(f"{priority} priority" if priority and priority != "normal" else "",
                       f"from {source}" if source else "", f"reserved for {session}" if session else "")  # fmt: skip
        return _with(f"{name} added" + (f": {title}" if title else ""), detail)
    phrase = _TASK_ACTIONS.get(action, action.replace("_", " ") or "changed")
    if "{who}" in phrase:
        phrase = phrase.format(who=session) if session else phrase.split(" by ")[0].split(" to ")[0]
    return _because(f"{name} {phrase}", note)


def _alert(session: str | None, d: Mapping[str, Any]) -> str:
    text = field_str(d, "message") or field_str(d, "text") or field_str(d, "key") or "(no text)"
    return f"alert: {short(text, 300)}"


def _alert_undelivered(session: str | None, d: Mapping[str, Any]) -> str:
    key, chat, tries = field_str(d, "key"), field_int(d, "chat"), field_int(d, "tries")
    error = short(field_str(d, "error"), 160)
    head = "a notice" + (f" ({key})" if key else "") + " could not be delivered"
    head += f" to chat {chat}" if chat is not None else ""
    head += f" after {plural(tries, 'try', 'tries')}" if tries else ""
    return _because(head, error)


def _bot(session: str | None, d: Mapping[str, Any]) -> str:
    action, chats = field_str(d, "action"), field_int(d, "chats")
    if action == "started":
        return "the bot started" + (f", answering {plural(chats, 'chat')}" if chats is not None else "")
    return f"the bot {action}" if action else "the bot changed state"


def _bot_refused(session: str | None, d: Mapping[str, Any]) -> str:
    chat = field_int(d, "chat")
    sender = f"chat {chat}" if chat is not None else "a chat"
    return f"the bot ignored a message from {sender} (not allow-listed)"


_ASKED = {"empty": "an empty message", "unknown": "an unknown command", "unhandled": "a request it cannot handle",
          "button": "a button that is not its own"}  # fmt: skip
_ANSWERED = {"error": "with an error", "busy": "busy", "started": "started in the background"}


def _bot_message(session: str | None, d: Mapping[str, Any]) -> str:
    command, outcome = field_str(d, "command"), field_str(d, "outcome")
    chat, ms = field_int(d, "chat"), field_num(d, "latency_ms")
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
    text = short(field_str(d, "text"), 120)
    return "the bot could not handle a message" + (f": “{text}”" if text else "")


def _bot_improve(session: str | None, d: Mapping[str, Any]) -> str:
    messages, accepted, refused = field_int(d, "messages") or 0, field_strs(d, "accepted"), d.get("refused")
    refused_n = len(refused) if isinstance(refused, list) else 0
    note, cost = short(field_str(d, "note"), 160), field_num(d, "cost_usd")
    if not messages:
        return _because("bot improve had no unhandled messages to learn from", note)
    head = f"bot improve read {plural(messages, 'unhandled message')}: " + (
        f"learned {', '.join(accepted)}" if accepted else "learned nothing new"
    )
    detail = _join(f"{refused_n} refused" if refused_n else "", money(cost) if cost else "", note)
    return _with(head, detail)


def _trigger(session: str | None, d: Mapping[str, Any]) -> str:
    endpoint, outcome, job = field_str(d, "endpoint") or "an HTTP trigger", field_str(d, "outcome"), field_str(d, "job")
    task, source = field_int(d, "task"), field_str(d, "source_ip")
    if job and "source_ip" not in d:  # the end of a job an HTTP trigger started
        took, code = seconds(field_num(d, "duration_s")), field_int(d, "exit_code")
        words = {"finished": "finished", "failed": "failed", "timed_out": "timed out"}.get(outcome, outcome)
        head = f"the {job} started over HTTP {words or 'ended'}" + (f" after {took}" if took else "")
        return _because(head, short(field_str(d, "reason"), 160) or (f"exit code {code}" if code else ""))
    said = {"started": "started it", "queued": f"queued task #{task}" if task is not None else "queued a task",
            "already_running": "it was already running", "unavailable": "this factoryctl cannot run it"}.get(
                outcome, outcome.replace("_", " "))  # fmt: skip
    return _because(f"HTTP {endpoint}" + (f" from {source}" if source else ""), said)


def _scheduler(session: str | None, d: Mapping[str, Any]) -> str:
    actions, errors = field_strs(d, "actions"), field_strs(d, "errors")
    holds = field_map(d, "holds")
    closed = [f"{name} ({short(str(why), 80)})" for name, why in field_map(holds, "closed").items()]
    sessions = field_map(d, "sessions")
    running, configured = field_int(sessions, "running"), field_int(sessions, "configured")
    did = "; ".join(short(a, 100) for a in actions[:4]) + ("; …" if len(actions) > 4 else "")
    parts = [
        did or "nothing to change",
        # an event written before holds were named (no "holds" key) says nothing about them
        ("new cycles held back: " + ", ".join(closed) if closed else "nothing held back" if "holds" in d else ""),
        f"{running} of {configured} sessions running" if running is not None and configured is not None else "",
        f"errors: {'; '.join(short(e, 100) for e in errors[:2])}" if errors else "",
    ]
    return "scheduler: " + _join(*parts, sep="; ")


def _baseline(session: str | None, d: Mapping[str, Any]) -> str:
    commit = _sha(field_str(d, "commit"))
    who = f"{session} measured" if session else "measured"
    head = f"{who} main's baseline" + (f" at {commit}" if commit else "")
    return _because(head, checks_text(field_map(d, "checks")) or "no checks")


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
    said = [f"{k.replace('_', ' ')} {short(v, 60)}" for k, v in d.items() if isinstance(v, str) and v.strip()]
    return _join(f"{kind.replace('_', ' ')}" + (f" from {session}" if session else ""), *said[:4], sep="; ")


def sentence(event: LogEvent, limit: int = 400) -> str:
    """What happened, in one line a person reads at a glance (at most `limit` characters)."""
    data = event.data if isinstance(event.data, Mapping) else {}
    say = SENTENCES.get(event.type)
    text = say(event.session, data) if say else _unknown(event.type, event.session, data)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def line(event: LogEvent, limit: int = 400) -> str:
    """The event with its time, as `log tail` and `status` print it."""
    return f"{when(event.ts)}  {sentence(event, limit)}"
