"""Evidence: the few lines of a check's output that say *why* (pure, next to the parsers).

Counts say "tsc: errors 0 -> 1"; evidence keeps `src/money.ts(14,3): error TS2322: ...`,
the failing test's name, or the tail of a crash, so the next cycle's prompt, the reviewer
and a person (`factoryctl queue show`) see what went wrong. It is bounded (at most
EVIDENCE_LINES lines of EVIDENCE_LINE_CHARS characters), has the worktree's absolute path
taken out, and secrets scrubbed: it comes from code the agent wrote, so it is data only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator

from factoryctl.adapters.parsers import strip_ansi
from factoryctl.core.checks import Counts
from factoryctl.core.defaults import EVIDENCE_LINE_CHARS, EVIDENCE_LINES

# Lines worth keeping, per tool; the first N matches in output order are kept.
_LINES: dict[str, tuple[re.Pattern[str], ...]] = {
    "tsc": (re.compile(r"^\S.*?(?:\(\d+,\d+\)|:\d+:\d+)(?::| -) error TS\d+:.*|^error TS\d+:.*"),),
    "vitest": (
        re.compile(r"^\s*FAIL\s+\S.*"),
        re.compile(r"^\s*×\s+\S.*"),
        re.compile(r"^(?:\w*Error|Error|Caused by)\b.*"),
    ),
    "jest": (
        re.compile(r"^\s*●\s+(?!Test suite failed to run).*"),
        re.compile(r"^\s*Cannot find module.*|^\s*(?:\w*Error):.*"),
    ),
    "pytest": (re.compile(r"^(?:FAILED|ERROR)\s+\S.*"), re.compile(r"^E\s{3}\S.*")),
    "ruff": (re.compile(r"^\S.*?:\d+:\d+: [A-Z]+\d+ .*"),),
    "mypy": (re.compile(r"^\S.*?:\d+(?::\d+)?: error:.*"),),
}
# Likely secrets in tool output: API keys, bearer tokens, Telegram bot tokens, GitHub tokens.
_SECRETISH = re.compile(
    r"sk-ant-[\w-]{8,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|\b\d{6,}:[A-Za-z0-9_-]{30,}\b"
    r"|(?i:bearer|token|api[_-]?key|password|secret)(?:\s*[:=]\s*|\s+)['\"]?[^\s'\"]{8,}"
)
_ESLINT_FILE = re.compile(r"^(/|[A-Za-z]:\\|\S+\.(?:[cm]?[jt]sx?|vue|svelte)$)\S*$")
_ESLINT_ITEM = re.compile(r"^\s+(\d+):(\d+)\s+error\s+(.*)$")
_RUFF_CODE = re.compile(r"^([A-Z]+\d+)(?: \[\*\])? (.*)$")
_RUFF_AT = re.compile(r"^\s*-->\s+(\S+)")


def extract(
    parser: str,
    stdout: str,
    stderr: str,
    returncode: int | None,
    counts: Counts,
    *,
    root: str = "",
    secrets: Iterable[str] = (),
) -> tuple[str, ...]:
    """What matters in one check run's output: diagnostics, failing tests, or a crash's tail.

    Nothing when the run is clean (no errors, no failures, not crashed).
    """
    if not (counts.crashed or counts.errors or counts.failed or returncode is None):
        return ()
    out, err = strip_ansi(stdout), strip_ansi(stderr)
    found = list(_from_json(out)) or list(_diagnostics(parser, f"{out}\n{err}"))
    if not found:
        found = _tail(f"{out}\n{err}")
    if counts.note and (counts.crashed or not found):
        found.insert(0, counts.note)
    return bound(found, root=root, secrets=secrets)


def bound(lines: Iterable[str], *, root: str = "", secrets: Iterable[str] = ()) -> tuple[str, ...]:
    """At most EVIDENCE_LINES distinct lines, each cut, with `root/` and secrets taken out."""
    hidden = [s for s in secrets if len(s) >= 8]
    prefix = root.rstrip("/") + "/" if root else ""
    out: list[str] = []
    for raw in lines:
        line = " ".join(str(raw).split())
        if prefix:
            line = line.replace(prefix, "")
        for secret in hidden:
            line = line.replace(secret, "***")
        line = _SECRETISH.sub("***", line)
        if len(line) > EVIDENCE_LINE_CHARS:
            line = line[: EVIDENCE_LINE_CHARS - 1] + "…"
        if line and line not in out:
            out.append(line)
        if len(out) >= EVIDENCE_LINES:
            break
    return tuple(out)


def _diagnostics(parser: str, text: str) -> Iterator[str]:
    if parser == "eslint":
        yield from _eslint(text)
        return
    if parser == "ruff":
        yield from _ruff_full(text)
    patterns = _LINES.get(parser, ())
    for line in text.splitlines():
        if any(p.match(line) for p in patterns):
            yield line.strip()


def _eslint(text: str) -> Iterator[str]:
    """eslint's stylish output names the file once, then `line:col  error  message  rule`."""
    current = ""
    for line in text.splitlines():
        if _ESLINT_FILE.match(line):
            current = line.strip()
            continue
        item = _ESLINT_ITEM.match(line)
        if item:
            yield f"{current}:{item[1]}:{item[2]}: {' '.join(item[3].split())}"


def _ruff_full(text: str) -> Iterator[str]:
    """ruff's full format: `F401 message` then ` --> file:line:col`."""
    pending = ""
    for line in text.splitlines():
        code = _RUFF_CODE.match(line)
        if code:
            pending = f"{code[1]} {code[2]}"
            continue
        where = _RUFF_AT.match(line)
        if where and pending:
            yield f"{where[1]}: {pending}"
            pending = ""


def _json_line(line: str) -> dict[str, object] | None:
    """One line holding one JSON object (mypy -O json), or None."""
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _from_json(text: str) -> Iterator[str]:
    """Failing tests of a jest/vitest JSON report; errors of an eslint JSON report."""
    report: object = None
    for start in re.finditer(r"^[\[{]", text, re.M):
        try:
            report = json.JSONDecoder().raw_decode(text, start.start())[0]
            break
        except (ValueError, RecursionError):
            continue
    if isinstance(report, dict) and report.get("severity") is not None and "file" in report:
        for line in text.splitlines():  # mypy -O json: one object a line
            item = _json_line(line)
            if item is not None and item.get("severity") == "error":
                yield f"{item.get('file')}:{item.get('line')}: error: {item.get('message')}  [{item.get('code')}]"
    elif isinstance(report, dict) and isinstance(report.get("testResults"), list):
        for result in report["testResults"]:
            if not isinstance(result, dict):
                continue
            name = str(result.get("name", ""))
            failed = [a for a in result.get("assertionResults") or [] if isinstance(a, dict)
                      and a.get("status") == "failed"]  # fmt: skip
            for a in failed:
                messages = a.get("failureMessages") or [""]
                first = str(messages[0]).strip().splitlines()[:1] if messages else []
                yield f"FAIL {name} > {a.get('fullName', '')}" + (f": {first[0]}" if first else "")
            if result.get("status") == "failed" and not failed:
                message = str(result.get("message", "")).strip().splitlines()
                yield f"FAIL {name}" + (f": {next((m for m in message if m.strip()), '')}" if message else "")
    elif isinstance(report, list):
        for entry in report:
            if not isinstance(entry, dict):
                continue
            where = entry.get("location")
            if isinstance(where, dict):  # ruff --output-format=json
                yield (f"{entry.get('filename', '')}:{where.get('row')}:{where.get('column')}: "
                       f"{entry.get('code') or ''} {entry.get('message', '')}")  # fmt: skip
                continue
            for m in entry.get("messages") or []:
                if isinstance(m, dict) and m.get("severity") == 2:
                    yield f"{entry.get('filePath', '')}:{m.get('line')}:{m.get('column')}: {m.get('message', '')}"


def _tail(text: str, n: int = 5) -> list[str]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("npm warn")]
    return lines[-n:]
