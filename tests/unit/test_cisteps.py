"""What a repository's CI runs, read from its CI and task files (rules/cisteps.py): files in, steps out."""

from __future__ import annotations

from factoryctl.rules.cisteps import ci_steps, tool_of, unmapped

GITLAB = """test:
  image: python:3.12
  script:
    - pip install -e .
    - pytest -x tests
lint:
  script: ["ruff check src"]
"""
TOX = "[testenv]\ndeps = pytest\ncommands =\n    pytest {posargs:tests}\n    mypy src\n"
NOX = 'import nox\n\n@nox.session\ndef tests(session):\n    session.install(".")\n    session.run("pytest", "-q")\n'
MAKEFILE = "test:\n\t@uv run pytest tests\nlint:\n\truff check . && ./bin/extra-lint\nbuild:\n\tpython -m build\n"


def texts(files: dict[str, str], scripts: dict[str, str] | None = None) -> list[tuple[str, str]]:
    return [(s.source, s.text) for s in ci_steps(files, scripts or {})]


def test_gitlab_tox_and_nox_steps_are_read() -> None:
    assert texts({".gitlab-ci.yml": GITLAB}) == [
        (".gitlab-ci.yml", "pip install -e ."), (".gitlab-ci.yml", "pytest -x tests"),
        (".gitlab-ci.yml", "ruff check src"),
    ]  # fmt: skip
    assert texts({"tox.ini": TOX}) == [("tox.ini", "pytest tests"), ("tox.ini", "mypy src")]
    assert texts({"noxfile.py": NOX}) == [("noxfile.py", "pytest -q")]


def test_make_targets_and_package_scripts_are_followed_to_what_they_run() -> None:
    workflow = "jobs:\n  t:\n    steps:\n      - run: make test\n      - run: npm run lint\n"
    steps = texts({".github/workflows/ci.yml": workflow, "Makefile": MAKEFILE}, {"lint": "eslint . && tsc"})
    assert steps == [("Makefile test", "uv run pytest tests"), ("package.json scripts.lint", "eslint ."),
                     ("package.json scripts.lint", "tsc")]  # fmt: skip
    # Without a CI file, the Makefile's check targets are what people run (not `build`).
    assert [t for _, t in texts({"Makefile": MAKEFILE})] == ["uv run pytest tests", "ruff check .", "./bin/extra-lint"]


def test_a_script_that_runs_itself_is_not_followed_forever() -> None:
    assert texts({}, {"test": "npm test"}) == [("package.json scripts.test", "npm test")]


def test_tools_are_named_under_their_prefixes_and_the_rest_is_unmapped() -> None:
    assert tool_of(("uv", "run", "--frozen", "mypy", "src")) == ("mypy", ("src",))
    assert tool_of(("CI=1", "python", "-m", "pytest", "-x")) == ("pytest", ("-x",))
    assert tool_of(("pnpm", "exec", "vitest", "run")) == ("vitest", ("run",))
    assert tool_of(("node", "--test", "test/")) == ("node-test", ("--test", "test/"))
    steps = ci_steps({"Makefile": MAKEFILE}, {})
    assert [s.text for s in steps if unmapped(s)] == ["./bin/extra-lint"]
