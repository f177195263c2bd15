"""How things look on a terminal: plain, aligned, one line per item. JSON goes as-is."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from factoryctl.core.records import ReviewEntry, Task
from factoryctl.core.text import CONTROL
from factoryctl.jobs.status import HoldsStatus, StatusReport, session_lines, spend_by_session
from factoryctl.rules import sentences, words
from factoryctl.state.eventlog import Event


def emit(text: str) -> None:
    """A line (or lines) for a person on stdout; control characters from outside text are cut out."""
    sys.stdout.write(printable(text) + "\n")


def warn(text: str) -> None:
    """A line for a person on stderr (stdout stays parseable)."""
    sys.stderr.write(printable(text) + "\n")


def printable(text: str) -> str:
    """Text from outside (titles, branch names, reasons) without terminal control characters."""
    return CONTROL.sub("?", text)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def event_line(event: Event, limit: int = 400) -> str:
    """An event as one sentence with its time (`--json` keeps the full record)."""
    return printable(sentences.line(event, limit))


def task_line(task: Task) -> str:
    who = f" [{task.session}]" if task.session else ""
    return f"#{task.id:<4} {task.status:<11} {task.priority:<7} {task.title}{who}"


def task_detail(task: Task) -> str:
    lines = [
        f"task #{task.id}: {task.title}",
        f"  status    {task.status}" + (f" (session {task.session})" if task.session else ""),
        f"  priority  {task.priority}",
        f"  created   {task.created}",
        f"  attempts  {task.attempts}",
    ]
    if task.body:
        lines += ["", *("  " + line for line in task.body.splitlines())]
    lines += ["", "  history:"]
    lines += [f"    {h['ts']}  {h['status']:<11} {h.get('note', '')}" for h in task.history]
    return "\n".join(lines)


def status_text(report: StatusReport) -> str:
    spend, budget = report.spend_today, report.budget
    lines = [f"factory at {report.home}  ({report.now})", f"sandbox: {report.sandbox.text}", report.summary]
    lines += ["", "sessions:"]
    lines += session_lines(report)  # state, what the agent does now, task, last cycle (by host in a fleet)
    tasks = ", ".join(f"{k} {v}" for k, v in report.tasks.items()) or "empty"
    review = ", ".join(f"{k} {v}" for k, v in report.review_queue.items()) or "empty"
    lines += [
        "",
        f"tasks:         {tasks}",
        f"review queue:  {review}",
        f"spend today:   ${spend['total_usd']:.2f} of ${budget.daily_usd:.2f} "
        f"({spend['calls']} agent calls, ${budget.left_usd:.2f} left)",
    ]
    if spend.get("by_purpose"):
        jobs = ", ".join(f"{k} ${v:.2f}" for k, v in spend["by_purpose"].items())
        lines.append(f"  by job:      {jobs}")
        lines.append(f"  by session:  {spend_by_session(spend)}")
    lines.append(f"budget:        {budget.state} (degrades at ${budget.soft_usd:.2f}: {budget.degrade})")
    lines.append(f"holds:         {holds_text(report.holds)}")
    lines += [f"warning:       {w}" for w in report.warnings]
    lines += ["", "last events:"]
    lines += [f"  {event_line(Event(**e), 200)}" for e in report.last_events] or ["  (none yet)"]
    return "\n".join(lines)


def session_line(row: Mapping[str, Any]) -> str:
    task = row["task"]
    doing = f"task #{task['id']} ({task['status']})" if task else "no task"
    age = row["heartbeat_age_s"]
    beat = "never" if age is None else f"{age:.0f} s ago"
    ended = words.when(str(row["last_cycle_ended"] or ""))
    last = f"last cycle {row['last_verdict'] or 'ended'} at {ended}" if ended else "no cycle yet"
    stray = "" if row["configured"] else "  (not configured)"
    tmux = {"running": "tmux running", "missing": "no tmux session", "dead": "tmux pane dead"}.get(row["running"])
    name = f"{row['name']:<4}"
    line = f"{name} {tmux or row['running']:<15} {row['state']:<9} {doing:<22} heartbeat {beat:<10} {last}"
    line += stray
    now = f"\n     now: {printable(row['doing'])}" if row.get("doing") else ""
    waiting = f"\n     waiting: {row['waiting']}" if row["waiting"] else ""
    waiting += f"\n     LOST: {row['lost']}" if row.get("lost") else ""
    return line + now + waiting + f"\n     attach: {row['attach']}"


def holds_text(holds: HoldsStatus) -> str:
    """What holds new cycles back (every session, some, the cheaper agent) and the pause flags, in one line."""
    parts = [f"{name} ({why})" for name, why in holds.closed.items()]
    if holds.sessions:
        parts.append("held: " + ", ".join(holds.sessions))
    if holds.agent:
        parts.append(f"agent: {holds.agent}")
    parts = parts or ["none"]
    if holds.paused:
        parts.append("paused: " + ", ".join(holds.paused))
    if not holds.updated:
        parts.append("(no scheduler tick yet)")
    return "; ".join(parts)


def queue_line(entry: ReviewEntry) -> str:
    task = f" task #{entry.task}" if entry.task is not None else ""
    waiting = ""
    if entry.waits_for_person:
        waiting = f" (awaiting a person: {entry.reasons[0]})" if entry.reasons else " (awaiting a person)"
    return printable(f"{entry.status.value:<9} {entry.branch}{task}  queued {words.when(entry.queued)}{waiting}")


def queue_detail(entry: ReviewEntry) -> str:
    lines = [f"{entry.branch}: {entry.status.value}", f"  session   {entry.session}"]
    if entry.task is not None:
        lines.append(f"  task      #{entry.task}")
    lines += [f"  head      {entry.head}", f"  queued    {entry.queued}"]
    if entry.landed:
        lines.append(f"  landed    {entry.landed}")
    for name, after in entry.after.items():
        before = entry.before.get(name, {})
        lines.append("  " + words.check_change(name, before, after, ("errors", "failed", "total")))
    for name, evidence in entry.evidence.items():
        lines += [f"  {name} said:", *(f"    {line}" for line in evidence)]
    if entry.summary:
        lines += ["", f"  {entry.summary}"]
    lines += [f"  - {reason}" for reason in entry.reasons]
    return printable("\n".join(lines))


def _pct(x: float | None, none: str) -> str:
    return none if x is None else f"{x * 100:.0f} %"


def _money(x: float | None, none: str) -> str:
    return none if x is None else f"${x:.2f}"


def _dur(s: float | None) -> str:
    return words.seconds(s) or "none yet"


def _mix(counts: Mapping[str, Any]) -> str:
    return ", ".join(f"{str(k).replace('_', ' ')} {v}" for k, v in counts.items() if v) or "none"


def report_text(r: Mapping[str, Any]) -> str:
    """`factoryctl report`: the outcome figures of one window, then one line per session."""
    tok, unlanded = r["tokens"], "nothing landed yet"
    per_landed = (
        unlanded if r["usd_per_landed"] is None and r["tokens_per_landed"] is None
        else f"{_money(r['usd_per_landed'], 'no cost')}, "
        + ("no tokens" if r["tokens_per_landed"] is None else f"{r['tokens_per_landed']:,.0f} tokens")
    )  # fmt: skip
    push = r["push_to_land_s"]
    lines = [
        f"outcomes from {words.when(r['since'])} to {words.when(r['until'])} UTC",
        "",
        f"cycles:           {r['cycles']} ({_mix(r['verdicts'])})",
        f"discard rate:     {_pct(r['discard_rate'], 'no finished cycles yet')}",
        f"  discarded:      {_mix(r['discarded_by_reason'])}",
        f"  failed:         {_mix(r['failed_by_outcome'])}",
        f"landed:           {r['landed']} ({r['merges_per_day']} per day)",
        f"rejected at gate: {r['rejected']} ({_mix(r['rejected_by_reason'])})",
        f"review runs:      {r['review_runs']}; check runs {r['check_runs']} (one = every configured check, once)",
        "cycle time:       "
        + (f"mean {_dur(r['cycle_s']['mean'])}, median {_dur(r['cycle_s']['median'])}"
           if r["cycle_s"]["mean"] is not None else "no cycles yet"),
        "push to land:     "
        + (f"median {_dur(push['median'])}, max {_dur(push['max'])}" if push["median"] is not None else unlanded),
        f"spend:            {_money(r['spend_usd'], '$0.00')} in {r['agent_calls']} agent calls; "
        f"tokens {tok['input']:,} in / {tok['output']:,} out",
        f"per landed:       {per_landed}",
    ]  # fmt: skip
    if r["by_session"]:
        lines += ["", "by session:"]
        for name, s in r["by_session"].items():
            lines.append(
                f"  {name:<5} {words.plural(s['cycles'], 'cycle'):>11}  {s['landed']:>3} landed  "
                f"discard {_pct(s['discard_rate'], 'none'):>5}  "
                f"{_money(s['spend_usd'], '$0.00'):>8}  {s['tokens']['total']:,} tokens"
            )
    return "\n".join(lines)
