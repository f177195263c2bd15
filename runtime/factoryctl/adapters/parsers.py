"""Turn a check tool's output into counts: pure functions, pinned by real captured output.

Every parser reads the tool's default human output (colors stripped) and, where the tool
has one, its JSON report (detected by content). The fixtures under
tests/fixtures/checks/ are what the real tools printed; tests/samples/capture.py makes them.

When a run counts as `crashed` (no report we can trust), per tool:
- any tool: killed at its timeout (returncode None).
- tsc: a non-zero exit without an `error TS` line; or any configuration error (TS5xxx,
  TS6053, TS18003, or an error located in a *.json file), since tsc then checks nothing.
  Exit 0 with no output is 0 errors. `Found N errors` (--pretty) wins over counted lines.
- vitest, jest: no `Tests` summary line and no JSON report, unless the tool said it found
  no test files ("No test files found" / "No tests found"): then total 0, not crashed.
- pytest: exit 3 (internal error) or 4 (usage error, broken conftest); no summary line
  (`... in 0.12s`) otherwise; two different summary lines (one was printed by the code
  under test); a summary that disagrees with the exit code. Exit 5 (no tests collected)
  is total 0, not crashed.
- eslint: exit 2 (config or internal error); a non-zero exit with nothing counted.
- ruff: exit 2 and up (bad config, ruff failed); a non-zero exit with nothing counted.
- mypy: a non-zero exit with nothing counted (usage error, crash); and "errors prevented
  further checking" (a syntax error, an unreadable file): then the other errors were
  never looked for, so `errors` holds what was reported but `crashed` is set.
- exitcode: only the timeout. regex: no match and a non-zero exit.

Test runners: `failed` counts failed and errored tests, and also, as one failed test
each (and one in `total`), what hides tests without failing one: a test file that could
not load (vitest "Failed Suites", jest "Test suite failed to run"), a pytest collection
or setup error (pytest's `N error`), an unhandled error (vitest "Errors  N error"), and a
JSON report with a non-zero exit but no failure in it. `total` includes skipped tests.
Linters count errors only: eslint warnings and mypy notes are not counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from factoryctl.core.checks import PARSER_NAMES, REGEX_GROUPS, Counts, compile_pattern
from factoryctl.core.defaults import NOTE_CHARS
from factoryctl.core.errors import UsageError

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|[@-_])")
# Which line of a crash's output explains it: an error's headline first, then any hint.
_REASONS = (
    re.compile(r"^(?:[\w.]*Error\b|error\b|Cause:|npm error|✘ \[ERROR\])", re.I),
    re.compile(r"error|cannot|can't|couldn't|not found|failed|no such|unknown|invalid", re.I),
)


def strip_ansi(text: str) -> str:
    """Text without terminal color and cursor escapes (FORCE_COLOR, --color=yes)."""
    return _ANSI.sub("", text)


def _crash(why: str, *texts: str) -> Counts:
    """A crashed result whose note is `why` plus the most telling line the tool printed."""
    lines = [ln.strip() for text in texts for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("npm warn")]
    line = next((ln for tier in _REASONS for ln in lines if tier.search(ln)), lines[0] if lines else "")
    return Counts(crashed=True, note=(f"{why}: {line}" if line else why)[:NOTE_CHARS])


def _json_report(text: str, accept: Callable[[object], bool]) -> object | None:
    """The first JSON value starting a line of `text` that `accept` recognises, if any."""
    decoder = json.JSONDecoder()
    for start in re.finditer(r"^[\[{]", text, re.M):
        try:
            value: object = decoder.raw_decode(text, start.start())[0]
        except ValueError:
            continue
        if accept(value):
            return value
    return None


def _list_of(value: object, key: str) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) and key in v for v in value)


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


# --- tsc ---------------------------------------------------------------------------

_TSC_ERROR = re.compile(r"^(?:(?P<file>\S.*?)(?:\(\d+,\d+\)|:\d+:\d+)(?::| -) )?error TS(?P<code>\d+):", re.M)
_TSC_FOUND = re.compile(r"^Found (\d+) errors?\b", re.M)


def _is_config_error(file: str | None, code: int) -> bool:
    return 5000 <= code < 6000 or code in (6053, 18003) or (file or "").endswith(".json")


def _tsc(out: str, err: str, rc: int) -> Counts:
    text = f"{out}\n{err}"
    found = list(_TSC_ERROR.finditer(text))
    summary = _TSC_FOUND.search(text)
    errors = int(summary[1]) if summary else len(found)
    config = [m for m in found if _is_config_error(m["file"], int(m["code"]))]
    if config:
        line = text[config[0].start() :].splitlines()[0]
        return Counts(errors=errors, crashed=True, note=f"tsc configuration error: {line}"[:NOTE_CHARS])
    if rc != 0 and errors == 0:
        return _crash(f"tsc exited {rc} without reporting an error", err, out)
    return Counts(errors=errors)


# --- vitest and jest ---------------------------------------------------------------


def _is_jest_json(value: object) -> bool:
    return isinstance(value, dict) and "numTotalTests" in value


def _from_jest_json(report: dict[str, object], rc: int) -> Counts:
    """Jest's --json report; vitest's --reporter=json writes the same shape."""
    results = report.get("testResults")
    files = [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []
    # A file that failed with no failing test in it never ran its tests (an import error).
    unloaded = sum(
        1
        for r in files
        if r.get("status") == "failed"
        and not any(isinstance(a, dict) and a.get("status") == "failed" for a in r.get("assertionResults") or [])
    )
    failed = _int(report.get("numFailedTests")) + unloaded
    total = _int(report.get("numTotalTests")) + unloaded
    note = ""
    if total == 0:
        note = "no tests found"
    elif rc != 0 and failed == 0:  # e.g. vitest's unhandled errors: not in the report at all
        failed, total, note = 1, total + 1, f"exited {rc} with no failure in the report"
    return Counts(failed=failed, passed=_int(report.get("numPassedTests")), total=total, note=note)


_VITEST_TESTS = re.compile(r"^\s*Tests\s+(?P<body>.*?)\s*\((?P<total>\d+)\)\s*$", re.M)
_VITEST_SUITES = re.compile(r"Failed Suites (\d+)")
_VITEST_UNHANDLED = re.compile(r"^\s*Errors\s+(\d+) errors?", re.M)
_JEST_TESTS = re.compile(r"^Tests:\s+(?P<body>.*?\b(?P<total>\d+) total)\s*$", re.M)
_JEST_UNLOADED = re.compile(r"● Test suite failed to run")
_OUTCOME = re.compile(r"(\d+) (failed|passed)\b")


def _outcomes(body: str) -> dict[str, int]:
    return {word: int(n) for n, word in _OUTCOME.findall(body)}


def _test_runner(
    name: str, out: str, err: str, rc: int, summary: re.Pattern[str], extras: Callable[[str], int]
) -> Counts:
    report = _json_report(out, _is_jest_json)
    if isinstance(report, dict):
        return _from_jest_json(report, rc)
    text = f"{out}\n{err}"
    found = summary.search(text)
    if found is None:
        if re.search(r"^No (?:test files|tests) found", text, re.M):
            return Counts(note="no tests found")
        return _crash(f"{name} printed no test summary (exit {rc})", err, out)
    outcomes = _outcomes(found["body"])
    extra = extras(text)
    return Counts(
        failed=outcomes.get("failed", 0) + extra,
        passed=outcomes.get("passed", 0),
        total=int(found["total"]) + extra,
    )


def _vitest_extras(text: str) -> int:
    suites = sum(int(n) for n in _VITEST_SUITES.findall(text))
    return suites + sum(int(n) for n in _VITEST_UNHANDLED.findall(text))


def _vitest(out: str, err: str, rc: int) -> Counts:
    return _test_runner("vitest", out, err, rc, _VITEST_TESTS, _vitest_extras)


def _jest_extras(text: str) -> int:
    return len(_JEST_UNLOADED.findall(text))


def _jest(out: str, err: str, rc: int) -> Counts:
    return _test_runner("jest", out, err, rc, _JEST_TESTS, _jest_extras)


# --- pytest ------------------------------------------------------------------------

_PYTEST_SUMMARY = re.compile(
    r"^=*\s*(?P<body>no tests ran|\d+ [a-z]+(?: [a-z]+)?(?:, \d+ [a-z]+(?: [a-z]+)?)*)"
    r" in [\d.]+s(?: \([\d:]+\))?\s*=*\s*$",
    re.M,
)
_PYTEST_WORD = re.compile(r"(\d+) ([a-z]+(?: [a-z]+)?)")
_PYTEST_RAN = ("passed", "failed", "error", "errors", "skipped", "xfailed", "xpassed")


def _pytest(out: str, err: str, rc: int) -> Counts:
    """pytest's summary, believed only from stdout (where pytest writes it) and when the exit code agrees."""
    if rc in (3, 4):
        why = "pytest internal error" if rc == 3 else "pytest usage or conftest error"
        return _crash(f"{why} (exit {rc})", err, out)
    summaries = list(_PYTEST_SUMMARY.finditer(out))
    if not summaries:
        if rc == 5:
            return Counts(note="no tests collected")
        return _crash(f"pytest printed no summary line (exit {rc})", err, out)
    bodies = list(dict.fromkeys(s["body"] for s in summaries))
    if len(bodies) > 1:  # pytest prints one; another was printed by the code under test (an atexit hook)
        return Counts(crashed=True, note=f"pytest printed {len(bodies)} different summaries ({', '.join(bodies[:2])})"
                      [:NOTE_CHARS])  # fmt: skip
    n = {word: int(count) for count, word in _PYTEST_WORD.findall(summaries[0]["body"])}
    errors = n.get("error", 0) + n.get("errors", 0)
    counts = Counts(
        failed=n.get("failed", 0) + errors,
        passed=n.get("passed", 0),
        total=sum(n.get(word, 0) for word in _PYTEST_RAN),
        note="no tests collected" if rc == 5 else "",
    )
    # 1: tests failed; 2: interrupted (a collection error counts as a failed test); 5: nothing collected.
    agrees = {0: counts.failed == 0, 1: counts.failed > 0, 2: counts.failed > 0, 5: counts.total == 0}.get(rc, False)
    if not agrees:
        return _crash(f"pytest's summary ({summaries[0]['body']}) disagrees with its exit code {rc}", err)
    return counts


# --- linters -----------------------------------------------------------------------

_ESLINT_SUMMARY = re.compile(r"(\d+) problems? \((\d+) errors?, \d+ warnings?\)")
_ESLINT_LINE = re.compile(r"^\s+\d+:\d+\s+error\s", re.M)


def _eslint(out: str, err: str, rc: int) -> Counts:
    if rc >= 2:
        return _crash(f"eslint failed (exit {rc})", err, out)
    report = _json_report(out, lambda v: _list_of(v, "errorCount"))
    if isinstance(report, list):
        return Counts(errors=sum(_int(f.get("errorCount")) for f in report))
    summary = _ESLINT_SUMMARY.search(out)
    errors = int(summary[2]) if summary else len(_ESLINT_LINE.findall(out))
    if rc != 0 and summary is None and errors == 0:
        return _crash(f"eslint exited {rc} without a report", err, out)
    return Counts(errors=errors)


_RUFF_FOUND = re.compile(r"^Found (\d+) errors?(?: \(\d+ fixed, (\d+) remaining\))?\.", re.M)
_RUFF_LINE = re.compile(r"^\S.*?:\d+:\d+: \S+ ", re.M)


def _ruff(out: str, err: str, rc: int) -> Counts:
    if rc >= 2:
        return _crash(f"ruff failed (exit {rc})", err, out)
    report = _json_report(out, lambda v: _list_of(v, "location"))
    if isinstance(report, list):
        return Counts(errors=len(report))
    found = _RUFF_FOUND.search(out)
    if found:
        return Counts(errors=int(found[2] if found[2] is not None else found[1]))
    errors = len(_RUFF_LINE.findall(out))
    if rc != 0 and errors == 0:
        return _crash(f"ruff exited {rc} without a report", err, out)
    return Counts(errors=errors)


_MYPY_FOUND = re.compile(r"^Found (\d+) errors? in \d+ files?(?P<rest>.*)$", re.M)
_MYPY_LINE = re.compile(r"^\S.*?: error:", re.M)


def _mypy_json(out: str) -> list[dict[str, object]]:
    """mypy -O json's diagnostics: one JSON object a line, each with file and severity."""
    items = []
    for line in out.splitlines():
        if line.startswith('{"file"'):
            try:
                value = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(value, dict) and "severity" in value:
                items.append(value)
    return items


def _mypy(out: str, err: str, rc: int) -> Counts:
    text = f"{out}\n{err}"
    items = _mypy_json(out)
    if items:
        errors = sum(1 for item in items if item.get("severity") == "error")
        if rc == 2:  # a blocking error (syntax, an unreadable file): the rest was never looked at
            crash = _crash("mypy stopped early (errors prevented further checking)", err, out)
            return Counts(errors=errors, crashed=True, note=crash.note)
        if rc != 0 and errors == 0:
            return _crash(f"mypy exited {rc} without a report", err, out)
        return Counts(errors=errors)
    found = _MYPY_FOUND.search(text)
    errors = int(found[1]) if found else len(_MYPY_LINE.findall(text))
    if found and "errors prevented further checking" in found["rest"]:
        crash = _crash("mypy stopped early (errors prevented further checking)", err, out)
        return Counts(errors=errors, crashed=True, note=crash.note)
    if rc != 0 and errors == 0:
        return _crash(f"mypy exited {rc} without a report", err, out)
    return Counts(errors=errors)


def _exitcode(out: str, err: str, rc: int) -> Counts:
    return Counts(errors=0 if rc == 0 else 1)


# --- regex -------------------------------------------------------------------------


def _regex(compiled: re.Pattern[str], out: str, err: str, rc: int) -> Counts:
    sums = dict.fromkeys(REGEX_GROUPS, 0)
    matched = False
    for match in compiled.finditer(f"{out}\n{err}"):
        matched = True
        for name, value in match.groupdict().items():
            if value is None:
                continue
            if not value.strip().isdigit():
                return Counts(crashed=True, note=f"regex group {name!r} caught {value!r}, not a number")
            sums[name] += int(value)
    if not matched:
        return _crash(f"pattern matched nothing and exit {rc}", err, out) if rc else Counts()
    return Counts(errors=sums["errors"], failed=sums["failed"], passed=sums["passed"], total=sums["total"])


_PARSERS: dict[str, Callable[[str, str, int], Counts]] = {
    "tsc": _tsc,
    "vitest": _vitest,
    "jest": _jest,
    "pytest": _pytest,
    "eslint": _eslint,
    "ruff": _ruff,
    "mypy": _mypy,
    "exitcode": _exitcode,
}


def summary_missing(parser: str, stdout: str, returncode: int | None) -> bool:
    """Whether a test runner ended normally yet printed no summary line to count from (its output
    settings, e.g. pytest's addopts `-q` on top of ours): its JUnit report may then stand in."""
    out = strip_ansi(stdout)
    if parser == "pytest":
        return returncode in (0, 1, 2, 5) and _PYTEST_SUMMARY.search(out) is None
    if parser == "vitest":
        return returncode in (0, 1) and _VITEST_TESTS.search(out) is None and _json_report(out, _is_jest_json) is None
    return False


def parse(parser: str, stdout: str, stderr: str, returncode: int | None, *, pattern: str | None = None) -> Counts:
    """Counts from one check run; returncode None means the tool was killed at its timeout."""
    if parser not in PARSER_NAMES:
        raise UsageError(f"unknown check parser {parser!r}; choose one of: {', '.join(PARSER_NAMES)}")
    compiled = compile_pattern(pattern) if parser == "regex" else None
    if returncode is None:
        return Counts(crashed=True, note="killed at its timeout")
    out, err = strip_ansi(stdout), strip_ansi(stderr)
    if compiled is not None:
        return _regex(compiled, out, err, returncode)
    return _PARSERS[parser](out, err, returncode)
