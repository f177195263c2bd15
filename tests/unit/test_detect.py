"""Check detection for `factoryctl init` and the deploy: repository files in, setup and checks out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from factoryctl.core.config import settings_from_mapping
from factoryctl.rules.detect import detect

PKG = json.dumps({"devDependencies": {"typescript": "5", "vitest": "3", "eslint": "9"}})
PKG_JEST = json.dumps({"dependencies": {"jest": "30"}})
PYPROJECT = '[project]\nname = "x"\n[tool.pytest.ini_options]\n[tool.ruff]\n[tool.mypy]\nstrict = true\n'

# (files, setup, [(check name, argv)], a note that must be there or "")
CASES: list[tuple[dict[str, str], list[str], list[tuple[str, list[str]]], str]] = [
    ({"package.json": PKG, "pnpm-lock.yaml": "", "tsconfig.json": "{}"},
     ["pnpm", "install", "--frozen-lockfile"],
     [("tsc", ["pnpm", "exec", "tsc", "--noEmit"]), ("vitest", ["pnpm", "exec", "vitest", "run"]),
      ("eslint", ["pnpm", "exec", "eslint", "."])], ""),
    ({"package.json": PKG_JEST, "package-lock.json": "{}"}, ["npm", "ci", "--no-audit", "--no-fund"],
     [("jest", ["npx", "--no-install", "jest", "--ci"])], ""),
    ({"package.json": PKG_JEST, "yarn.lock": ""}, ["yarn", "install", "--frozen-lockfile"],
     [("jest", ["yarn", "run", "jest", "--ci"])], ""),
    ({"package.json": "{}", "tsconfig.json": "{}"}, ["npm", "install", "--no-audit", "--no-fund"],
     [("tsc", ["npx", "--no-install", "tsc", "--noEmit"])], "commit a lockfile"),
    ({"package.json": "not json {", "package-lock.json": ""}, ["npm", "ci", "--no-audit", "--no-fund"], [],
     "no checks detected"),
    ({"pyproject.toml": PYPROJECT, "uv.lock": ""}, ["uv", "sync", "--frozen"],
     [("pytest", ["uv", "run", "python", "-B", "-m", "pytest", "-q", "-p", "no:cacheprovider"]),
      ("ruff", ["uv", "run", "python", "-B", "-m", "ruff", "check", "--no-cache", "."]),
      ("mypy", ["uv", "run", "python", "-B", "-m", "mypy", "--cache-dir=/dev/null", "."])], ""),
    ({"pyproject.toml": '[project]\nname = "x"\n', "tests/": ""}, [],
     [("pytest", ["python3", "-B", "-m", "pytest", "-q", "-p", "no:cacheprovider"])], "no uv.lock"),
    ({"pyproject.toml": "a = " + "[" * 5000 + "]" * 5000}, [], [], "does not parse"),
    ({}, [], [], "no checks detected"),
]  # fmt: skip


@pytest.mark.parametrize(("files", "setup", "checks", "note"), CASES, ids=range(len(CASES)))
def test_detection_from_the_repository_files(
    files: dict[str, str], setup: list[str], checks: list[tuple[str, list[str]]], note: str
) -> None:
    found = detect(files)
    assert list(found.setup) == setup
    assert [(c["name"], c["command"]) for c in found.checks] == checks
    if note:
        assert any(note in n for n in found.notes), found.notes
    # What init writes is always a valid configuration.
    config: dict[str, Any] = {"checks": [dict(c) for c in found.checks], "repo": {"setup": list(found.setup)}}
    settings = settings_from_mapping(config, source="test")
    assert [c.name for c in settings.checks] == [name for name, _ in checks]


def test_test_runners_retry_regressions_and_type_checkers_do_not() -> None:
    found = detect({"package.json": PKG, "package-lock.json": "", "tsconfig.json": "{}"})
    settings = settings_from_mapping({"checks": [dict(c) for c in found.checks]}, source="test")
    assert {c.name: c.retry_on_regression for c in settings.checks} == {"tsc": False, "vitest": True, "eslint": False}
