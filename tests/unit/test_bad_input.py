"""Input from outside the runtime, read field by field: one clear error or a skipped record, never a crash."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from factoryctl.core import jsonio
from factoryctl.core.checks import MAX_PATTERN_CHARS, Counts, compile_pattern, counts_of
from factoryctl.core.config import Settings, default_heavy_slots
from factoryctl.core.configfile import load_settings, settings_from_mapping
from factoryctl.core.errors import BadRecord, ConfigError, UsageError
from factoryctl.core.records import ReviewEntry, Task
from factoryctl.rules.changes import NO_CHECKS, main_problems, no_checks_reason

# -- JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, "[" * 70 + "]" * 70, '{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}',
     '{"a": 1e400}', '{"a": ' + "9" * 5000 + "}", '{"a": '],
    ids=["bomb", "deep", "nan", "inf", "-inf", "1e400", "huge-int", "torn"],
)  # fmt: skip
def test_json_that_no_state_file_holds_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        jsonio.loads(text)


def test_json_within_bounds_reads_as_usual() -> None:
    assert jsonio.loads('{"a": [1, 2.5, {"b": null}]}') == {"a": [1, 2.5, {"b": None}]}
    assert jsonio.depth([[[]]]) == 3


# -- factory.toml -----------------------------------------------------------------------

CHECK = {"name": "t", "command": ["true"], "parser": "exitcode"}


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({"checks": [{**CHECK, "cwd": "../../.."}]}, "checks[0].cwd"),
        ({"checks": [{**CHECK, "cwd": "/etc"}]}, "relative path inside"),
        ({"repo": {"context_files": ["/etc/passwd"]}}, "repo.context_files"),
        ({"repo": {"context_files": ["../secrets.env"]}}, "relative path inside"),
        ({"repo": {"setup_inputs": ["/etc/shadow"]}}, "repo.setup_inputs"),
        ({"repo": {"dependency_dirs": [".."]}}, "repo.dependency_dirs"),
        ({"cycle": {"interval_s": 10**30}}, "cycle.interval_s"),
        ({"cycle": {"interval_s": 8 * 86400}}, "less than or equal to 604800"),
        ({"agent": {"timeout_s": 10**12}}, "agent.timeout_s"),
        ({"checks": [{**CHECK, "parser": "regex", "pattern": "(?P<errors>\\d+)" + "x" * MAX_PATTERN_CHARS}]},
         "the limit is"),
        ({"checks": [{**CHECK, "retry_on_regression": "yes"}]}, "retry_on_regression"),
        ({"review": {"allow_without_checks": 1}}, "review.allow_without_checks"),
    ],
)  # fmt: skip
def test_bad_config_values_are_one_error_naming_the_key(config: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=r"^f\.toml: ") as err:
        settings_from_mapping(config, source="f.toml")
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_5000_deep_array_in_factory_toml_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "factory.toml"
    path.write_text("[cycle]\ninterval_s = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_settings(path)


def test_retry_on_regression_defaults_by_parser_and_can_be_set() -> None:
    checks = [{**CHECK, "name": p, "parser": p} for p in ("vitest", "jest", "pytest", "tsc", "eslint", "ruff", "mypy")]
    checks.append({**CHECK, "name": "flaky-tsc", "parser": "tsc", "retry_on_regression": True})
    settings = settings_from_mapping({"checks": checks}, source="t")
    assert {c.name: c.retry_on_regression for c in settings.checks} == {
        "vitest": True, "jest": True, "pytest": True, "tsc": False, "eslint": False, "ruff": False, "mypy": False,
        "flaky-tsc": True,
    }  # fmt: skip


@pytest.mark.parametrize(("cpus", "slots"), [(None, 1), (1, 1), (2, 1), (3, 1), (4, 2), (16, 8)])
def test_heavy_slots_default_is_about_half_the_cpus(cpus: int | None, slots: int) -> None:
    assert default_heavy_slots(cpus if cpus is not None else 0) == slots


def test_a_regex_pattern_is_compiled_once() -> None:
    pattern = r"(?P<errors>\d+) errors?"
    first = compile_pattern(pattern)
    re.purge()  # `re` forgets it too: only our cache can hand back the same compiled pattern
    assert compile_pattern(pattern) is first
    with pytest.raises(UsageError, match="characters; the limit"):
        compile_pattern("x" * (MAX_PATTERN_CHARS + 1))


# -- no checks, and main's health -----------------------------------------------------------


def test_no_checks_is_said_unless_allowed() -> None:
    assert no_checks_reason(Settings()) is not None and NO_CHECKS in str(no_checks_reason(Settings()))
    assert no_checks_reason(settings_from_mapping({"review": {"allow_without_checks": True}}, source="t")) is None
    assert no_checks_reason(settings_from_mapping({"checks": [CHECK]}, source="t")) is None


GOOD = Counts(errors=1, failed=0, passed=5, total=5)


@pytest.mark.parametrize(
    ("sound", "current", "expected"),
    [
        (None, {"tsc": GOOD}, []),
        ({"tsc": GOOD}, {"tsc": GOOD}, []),
        (None, {"tsc": Counts(crashed=True, note="TS5023 bad")}, ["main's check tsc crashes: TS5023 bad"]),
        ({"t": GOOD}, {"t": Counts(errors=2, passed=5, total=5)}, ["main's check t regressed: errors 1 -> 2"]),
        ({"t": GOOD}, {"t": Counts(errors=1, failed=1, passed=4, total=5)},
         ["main's check t regressed: failed tests 0 -> 1"]),
        ({"t": GOOD}, {"t": Counts(errors=1, passed=3, total=3)}, []),  # fewer tests: a person may delete some
        ({"t": GOOD}, {"t": Counts(errors=0, passed=6, total=6)}, []),  # better
    ],
)  # fmt: skip
def test_main_is_broken_when_a_check_crashes_or_regresses(
    sound: dict[str, Counts] | None, current: dict[str, Counts], expected: list[str]
) -> None:
    assert main_problems(sound, current) == expected


# -- records --------------------------------------------------------------------------------

TASK = {"id": 1, "title": "fix it", "status": "queued", "priority": "normal", "attempts": 0, "history": []}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("x", "JSON object"),
        ({**TASK, "id": "abc"}, "'id'"),
        ({**TASK, "id": 0}, "'id'"),
        ({**TASK, "id": True}, "'id'"),
        ({**TASK, "title": ""}, "'title'"),
        ({**TASK, "title": ["a"]}, "'title'"),
        ({**TASK, "title": "x" * 100_000}, "'title'"),
        ({**TASK, "priority": "asap"}, "'priority'"),
        ({**TASK, "status": "done-ish"}, "'status'"),
        ({**TASK, "attempts": -1}, "'attempts'"),
        ({**TASK, "attempts": 1.5}, "'attempts'"),
        ({**TASK, "history": "x"}, "'history'"),
        ({**TASK, "history": [1, 2]}, "'history'"),
        ({**TASK, "session": 3}, "'session'"),
    ],
)
def test_a_bad_task_record_names_its_field(raw: object, field: str) -> None:
    with pytest.raises(BadRecord, match=field):
        Task.from_dict(raw)


ENTRY = {"branch": "brl/s1/x", "status": "pending"}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"status": "pending"}, "'branch'"),
        ({**ENTRY, "task": "abc"}, "'task'"),
        ({**ENTRY, "after": {"tsc": {"errors": "3"}}}, "'after', check 'tsc'"),
        ({**ENTRY, "after": {"tsc": {"errors": 10**12}}}, "'after'"),
        ({**ENTRY, "before": {"tsc": {"errors": math.inf}}}, "'before'"),
        ({**ENTRY, "evidence": {"tsc": "not a list"}}, "'evidence'"),
        ({**ENTRY, "evidence": {"tsc": ["x" * 5000]}}, "'evidence'"),
        ({**ENTRY, "evidence": {f"c{i}": [] for i in range(100)}}, "'evidence'"),
        ({**ENTRY, "tested": "--upload-pack=touch x"}, "'tested'"),  # a commit id, never a git option
        ({**ENTRY, "tested": "abc"}, "'tested'"),
    ],
)
def test_a_bad_review_entry_names_its_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRecord, match=field):
        ReviewEntry.from_dict(raw)


def test_evidence_round_trips_through_a_review_entry() -> None:
    entry = ReviewEntry.from_dict({**ENTRY, "evidence": {"tsc": ["src/a.ts(1,1): error TS2322: no"]}})
    assert entry.evidence == {"tsc": ("src/a.ts(1,1): error TS2322: no",)}
    assert ReviewEntry.from_dict(entry.as_dict()) == entry
    tested = ReviewEntry.from_dict({**ENTRY, "tested": "a" * 40, "tested_key": "9d027b5ad0c5"})
    assert ReviewEntry.from_dict(tested.as_dict()) == tested and tested.tested == "a" * 40


def test_counts_of_checks_every_field() -> None:
    assert counts_of({"errors": 2, "crashed": False, "note": "n"}) == Counts(errors=2, note="n")
    with pytest.raises(BadRecord):
        counts_of({"failed": -1})
    with pytest.raises(BadRecord):
        counts_of({"crashed": "yes"})
