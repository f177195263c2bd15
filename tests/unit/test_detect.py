"""Check detection for `factoryctl init` and the deploy: repository files in, setup and checks out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from factoryctl.core.configfile import settings_from_mapping
from factoryctl.rules.detect import detect

PKG = json.dumps({"devDependencies": {"typescript": "5", "vitest": "3", "eslint": "9"}})
PKG_JEST = json.dumps({"dependencies": {"jest": "30"}})
UV = ["uv", "run", "--frozen", "--no-sync", "python", "-B", "-m"]  # never re-locks, builds or downloads
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
     [("pytest", [*UV, "pytest", "-p", "no:cacheprovider"]),
      ("ruff", [*UV, "ruff", "check", "--no-cache", "--output-format=json", "."]),
      ("mypy", [*UV, "mypy", "--cache-dir=/dev/null", "."])], ""),
    ({"pyproject.toml": '[project]\nname = "x"\n', "tests/": ""}, [],
     [("pytest", ["python3", "-B", "-m", "pytest", "-p", "no:cacheprovider"])], "no uv.lock"),
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


WORKFLOW = """on: push
jobs:
  test:
    steps:
      - uses: actions/checkout@v4
      - run: uv sync --frozen
      - run: uv run pytest tests --junitxml out.xml -q -p xdist
      - name: types
        run: |
          uv run mypy
          ./scripts/check-licenses.sh
"""


def test_the_repository_ci_is_the_reference_for_scope_and_flags() -> None:
    pyproject = '[project]\nname = "x"\n[tool.mypy]\nfiles = ["src"]\n'
    found = detect({"pyproject.toml": pyproject, "uv.lock": "", ".github/workflows/ci.yml": WORKFLOW})
    commands = {c["name"]: c["command"] for c in found.checks}
    assert commands["pytest"] == [*UV, "pytest", "-p", "no:cacheprovider", "tests", "-q"]  # its report flag is ours
    assert commands["mypy"] == [*UV, "mypy", "--cache-dir=/dev/null"]  # no path: its config names the files
    assert any("check-licenses.sh" in n and "not mapped" in n for n in found.notes), found.notes


def test_mypy_files_in_its_config_means_no_path_even_without_ci() -> None:
    for files in ({"pyproject.toml": '[project]\nname = "x"\n[tool.mypy]\nfiles = "src"\n'},
                  {"pyproject.toml": '[project]\nname = "x"\n', "mypy.ini": "[mypy]\nfiles = src\n"}):  # fmt: skip
        (mypy,) = [c for c in detect(files).checks if c["name"] == "mypy"]
        assert mypy["command"] == ["python3", "-B", "-m", "mypy", "--cache-dir=/dev/null"]


def test_package_scripts_give_the_flags_and_a_pinned_pnpm_runs_at_its_version() -> None:
    package = {"packageManager": "pnpm@10.28.0+sha512.abc", "scripts": {"test": "vitest --passWithNoTests",
               "lint": "eslint src && tsc -p tsconfig.json"}, "devDependencies": {"vitest": "3"}}  # fmt: skip
    found = detect({"package.json": json.dumps(package), "pnpm-lock.yaml": "", "tsconfig.json": "{}"})
    assert list(found.setup) == ["npx", "--yes", "pnpm@10.28.0", "install", "--frozen-lockfile"]
    commands = {c["name"]: c["command"] for c in found.checks}
    assert commands == {
        "tsc": ["npx", "--no-install", "tsc", "-p", "tsconfig.json", "--noEmit"],
        "vitest": ["npx", "--no-install", "vitest", "run", "--passWithNoTests"],
        "eslint": ["npx", "--no-install", "eslint", "src"],
    }


def test_node_test_and_pyright_from_ci_become_regex_checks_that_count() -> None:
    from factoryctl.adapters.parsers import parse

    workflow = "jobs:\n  t:\n    steps:\n      - run: node --test test/\n      - run: pyright src\n"
    found = detect({"package.json": "{}", "package-lock.json": "", ".github/workflows/t.yml": workflow,
                    "pyproject.toml": '[project]\nname = "x"\n'})  # fmt: skip
    checks = {c["name"]: c for c in found.checks}
    assert checks["node-test"]["command"] == ["node", "--test", "test/"]
    tap = "# tests 3\n# suites 0\n# pass 2\n# fail 1\n"
    assert parse("regex", tap, "", 1, pattern=checks["node-test"]["pattern"]).failed == 1
    assert parse("regex", "2 errors, 0 warnings, 0 informations \n", "", 1,
                 pattern=checks["pyright"]["pattern"]).errors == 2  # fmt: skip
    settings_from_mapping({"checks": [dict(c) for c in found.checks]}, source="test")


def test_the_deploy_installs_the_tools_the_setup_and_checks_start() -> None:
    from factoryctl.rules.detect import toolchain

    uv = detect({"pyproject.toml": PYPROJECT, "uv.lock": ""})
    tools = toolchain([uv.setup, *(c["command"] for c in uv.checks)])
    assert (dict(tools.npm), tools.pip) == ({}, ("uv",))
    pnpm = detect({"package.json": PKG, "pnpm-lock.yaml": "", "tsconfig.json": "{}"})
    tools = toolchain([pnpm.setup, *(c["command"] for c in pnpm.checks)], {"pyright": "1.1.400"})
    assert dict(tools.npm) == {"pnpm": "10.28.0", "pyright": "1.1.400"} and tools.pip == ()
    pinned = detect({"package.json": json.dumps({"packageManager": "pnpm@9.1.0"}), "pnpm-lock.yaml": ""})
    assert toolchain([pinned.setup]).npm == {"pnpm": "9.1.0"}  # the pinned one, installed: setup downloads none
    assert toolchain([["npx", "--no-install", "vitest", "run"]]).npm == {}  # the repository's own binaries


def test_tools_ci_runs_through_pre_commit_are_checks_and_other_hooks_are_named() -> None:
    config = "repos:\n  - repo: x\n    hooks:\n      - id: ruff\n      - id: mypy\n      - id: codespell\n"
    found = detect({"pyproject.toml": '[project]\nname = "x"\n', ".pre-commit-config.yaml": config})
    assert [c["name"] for c in found.checks] == ["ruff", "mypy"]
    assert any("codespell" in n for n in found.notes), found.notes
