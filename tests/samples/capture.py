"""Capture real check-tool output into tests/fixtures/checks/<parser>/<case>/.

Each case copies a sample project (ts-app or py-app) to a fixed scratch folder, breaks
it on purpose, runs one real tool there through factoryctl's own runner, and stores
what the tool printed: `stdout`, `stderr`, `rc` (the exit code, or `timeout`), `cmd`
(the argv, for the reader) and, for the regex parser, `pattern`.

    npm ci --prefix tests/samples/ts-app
    .venv/bin/python tests/samples/capture.py            # every case
    .venv/bin/python tests/samples/capture.py tsc jest   # only these parsers

The expected counts live in tests/unit/test_parsers.py, written from what each case
breaks here: keep the two in step.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from factoryctl.adapters.runner import run

SAMPLES = Path(__file__).resolve().parent
REPO = SAMPLES.parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "checks"
SCRATCH = Path(tempfile.gettempdir()) / "factory-capture"
VENV_BIN = Path(sys.executable).parent
# Environment variables that change how the tools print; each case sets its own.
NOISY_ENV = ("CI", "FORCE_COLOR", "NO_COLOR", "CLICOLOR_FORCE", "MYPY_FORCE_COLOR", "PY_COLORS")

Edit = Callable[[Path], None]


def replace(rel: str, old: str, new: str) -> Edit:
    def edit(root: Path) -> None:
        path = root / rel
        text = path.read_text()
        if old not in text:
            raise SystemExit(f"capture: {rel} no longer contains {old!r}")
        path.write_text(text.replace(old, new, 1))

    return edit


def write(rel: str, text: str) -> Edit:
    def edit(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)

    return edit


def remove(rel: str) -> Edit:
    def edit(root: Path) -> None:
        target = root / rel
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()

    return edit


@dataclass(frozen=True)
class Case:
    parser: str
    name: str
    sample: str  # "ts-app", "py-app" or "" (an empty folder)
    argv: tuple[str, ...]
    edits: tuple[Edit, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 120.0
    pattern: str | None = None


# --- what each case breaks (the unit tests' expected counts follow from these) -------

# tsc: 3 errors in 2 files (one of them a multi-line "No overload matches this call").
TSC_BREAK = (
    replace("src/money.ts", "return `${(p.cents / 100).toFixed(2)} ${p.currency}`;", "return p.cents;"),
    replace("src/cart.ts", "line.unit.cents * line.quantity", "line.unit.cents * line.name"),
    replace("src/cart.ts", "{ cents: 0, currency }", "{ cents: 0 }"),
)
# vitest: 1 of 5 tests fails ("formats cents").
VITEST_BREAK = (replace("src/money.ts", "toFixed(2)", "toFixed(1)"),)
# vitest: a second test file that cannot load: 1 failed suite, the 5 tests pass.
VITEST_SUITE = (write("src/broken.test.ts", 'import { nope } from "./nope";\nnope();\n'),)
# vitest: 6 tests pass (5 + the new one) but the new one throws after it returned (an "unhandled error").
VITEST_UNHANDLED = (
    write(
        "src/late.test.ts",
        'import { it } from "vitest";\n'
        'it("throws later", async () => {\n'
        '  setTimeout(() => { throw new Error("late"); }, 0);\n'
        "  await new Promise((r) => setTimeout(r, 20));\n"
        "});\n",
    ),
)
# vitest: one test that never ends (killed at the timeout).
VITEST_HANG = (
    write(
        "src/hang.test.ts",
        'import { it } from "vitest";\nit("waits forever", () => new Promise(() => {}), 600_000);\n',
    ),
)
# jest: 2 of 4 tests fail (both "initials" tests).
JEST_BREAK = (replace("lib/strings.js", "part[0].toUpperCase()", "part[0]"),)
# jest: a second test file that cannot load: 1 suite fails to run, the 4 tests pass.
JEST_SUITE = (write("jest/broken.test.js", 'require("../lib/nope");\n'),)
# eslint: 2 errors (no-unused-vars, no-undef) and 1 warning (no-console).
ESLINT_BREAK = (
    replace(
        "lib/strings.js",
        "function initials(name) {",
        'function initials(name) {\n  const unused = 1;\n  console.log("initials");\n  undefinedHelper(name);',
    ),
)
# eslint: one file that does not parse: 1 (fatal) error.
ESLINT_PARSE = (write("lib/broken.js", '"use strict";\nfunction (\n'),)

# pytest: 2 of 5 tests fail (take_reduces, report_sorted).
PYTEST_BREAK = (
    replace("inventory/stock.py", "have - quantity", "have - quantity - 1"),
    replace("inventory/report.py", "sorted(items)", "sorted(items, reverse=True)"),
)
# pytest: a test module that cannot be imported (collection stops the run).
PYTEST_COLLECT = (write("tests/test_broken.py", "import nope  # noqa\n"),)
# pytest: one test whose fixture raises: 5 passed, 1 error.
PYTEST_SETUP = (
    write(
        "tests/test_setup.py",
        "import pytest\n\n\n@pytest.fixture\ndef db():\n    raise RuntimeError('no db')\n\n\n"
        "def test_uses_db(db):\n    assert db\n",
    ),
)
# pytest: 5 passed, 1 skipped, 1 xfailed.
PYTEST_MIXED = (
    write(
        "tests/test_more.py",
        "import pytest\n\n\n@pytest.mark.skip(reason='later')\ndef test_later():\n    pass\n\n\n"
        "@pytest.mark.xfail(reason='known')\ndef test_known():\n    assert False\n",
    ),
)
PYTEST_HANG = (write("tests/test_hang.py", "import time\n\n\ndef test_hang():\n    time.sleep(600)\n"),)
# The ruff case: 3 errors (F401 unused import, F841 unused variable, F821 undefined name).
# RUFF_SYNTAX: ruff and mypy: both report the one broken line as 2 syntax errors.
RUFF_BREAK = (
    replace(
        "inventory/report.py", "from inventory.stock import Stock", "import os\n\nfrom inventory.stock import Stock"
    ),
    replace(
        "inventory/report.py",
        '    return f"{item}: {stock.count(item)}"',
        '    width = 10\n    return f"{item}: {stock.count(item)} {pad}"',
    ),
)
RUFF_SYNTAX = (write("inventory/broken.py", "def oops(:\n    pass\n"),)
# The mypy case: 3 errors in 2 files: arg-type in stock.py; in report.py return-value in line()
# and, because line() now returns int, misc in report()'s join.
MYPY_BREAK = (
    replace(
        "inventory/report.py", "def line(item: str, stock: Stock) -> str:", "def line(item: str, stock: Stock) -> int:"
    ),
    replace("inventory/stock.py", "return self._items.get(item, 0)", 'return self._items.get(item, "none")'),
)


def _ts(tool: str, *args: str) -> tuple[str, ...]:
    return (f"node_modules/.bin/{tool}", *args)


TSC7 = ("node", "node_modules/typescript7/bin/tsc")
PYTEST = str(VENV_BIN / "pytest")

CASES: tuple[Case, ...] = (
    # tsc (typescript 5.9; the "-ts7" cases use typescript 7, the native compiler)
    Case("tsc", "green", "ts-app", _ts("tsc", "--noEmit")),
    Case("tsc", "failing", "ts-app", _ts("tsc", "--noEmit"), TSC_BREAK),
    Case("tsc", "failing-pretty", "ts-app", _ts("tsc", "--noEmit", "--pretty"), TSC_BREAK),
    Case("tsc", "green-ts7", "ts-app", (*TSC7, "--noEmit")),
    Case("tsc", "failing-ts7", "ts-app", (*TSC7, "--noEmit"), TSC_BREAK),
    Case("tsc", "failing-pretty-ts7", "ts-app", (*TSC7, "--noEmit", "--pretty"), TSC_BREAK),
    Case(
        "tsc",
        "config-error",
        "ts-app",
        _ts("tsc", "--noEmit"),
        (replace("tsconfig.json", '"strict": true', '"strictest": true'),),
    ),
    Case(
        "tsc",
        "no-inputs",
        "ts-app",
        _ts("tsc", "--noEmit"),
        (replace("tsconfig.json", '"src/**/*.ts"', '"nowhere/**/*.ts"'),),
    ),
    Case("tsc", "missing-binary", "", ("npx", "--no", "--", "tsc", "--noEmit")),
    Case("tsc", "timeout", "ts-app", _ts("tsc", "--noEmit"), timeout=0.2),
    # vitest
    Case("vitest", "green", "ts-app", _ts("vitest", "run")),
    Case("vitest", "failing", "ts-app", _ts("vitest", "run"), VITEST_BREAK),
    Case("vitest", "failing-color", "ts-app", _ts("vitest", "run"), VITEST_BREAK, {"FORCE_COLOR": "1"}),
    Case("vitest", "suite-error", "ts-app", _ts("vitest", "run"), VITEST_SUITE),
    Case("vitest", "unhandled-error", "ts-app", _ts("vitest", "run"), VITEST_UNHANDLED),
    Case("vitest", "json-unhandled-error", "ts-app", _ts("vitest", "run", "--reporter=json"), VITEST_UNHANDLED),
    Case("vitest", "json-green", "ts-app", _ts("vitest", "run", "--reporter=json")),
    Case("vitest", "json-failing", "ts-app", _ts("vitest", "run", "--reporter=json"), VITEST_BREAK),
    Case("vitest", "json-suite-error", "ts-app", _ts("vitest", "run", "--reporter=json"), VITEST_SUITE),
    Case("vitest", "no-tests", "ts-app", _ts("vitest", "run", "no-such-test")),
    Case("vitest", "json-no-tests", "ts-app", _ts("vitest", "run", "--reporter=json", "no-such-test")),
    Case(
        "vitest",
        "config-error",
        "ts-app",
        _ts("vitest", "run"),
        (write("vitest.config.mts", "export default {\n  test: {\n"),),
    ),
    Case("vitest", "timeout", "ts-app", _ts("vitest", "run"), VITEST_HANG, timeout=4),
    # jest
    Case("jest", "green", "ts-app", _ts("jest")),
    Case("jest", "failing", "ts-app", _ts("jest"), JEST_BREAK),
    Case("jest", "failing-color", "ts-app", _ts("jest"), JEST_BREAK, {"FORCE_COLOR": "1"}),
    Case("jest", "suite-error", "ts-app", _ts("jest"), JEST_SUITE),
    Case("jest", "json-green", "ts-app", _ts("jest", "--json")),
    Case("jest", "json-failing", "ts-app", _ts("jest", "--json"), JEST_BREAK),
    Case("jest", "json-suite-error", "ts-app", _ts("jest", "--json"), JEST_SUITE),
    Case("jest", "no-tests", "ts-app", _ts("jest", "no-such-test")),
    Case("jest", "json-no-tests", "ts-app", _ts("jest", "--json", "no-such-test")),
    Case("jest", "config-error", "ts-app", _ts("jest"), (write("jest.config.js", "module.exports = {\n"),)),
    # pytest
    Case("pytest", "green", "py-app", (PYTEST,)),
    Case("pytest", "green-q", "py-app", (PYTEST, "-q")),
    Case("pytest", "failing", "py-app", (PYTEST,), PYTEST_BREAK),
    Case("pytest", "failing-q", "py-app", (PYTEST, "-q"), PYTEST_BREAK),
    Case("pytest", "failing-color", "py-app", (PYTEST, "-q", "--color=yes"), PYTEST_BREAK),
    Case("pytest", "collection-error", "py-app", (PYTEST,), PYTEST_COLLECT),
    Case("pytest", "collection-error-q", "py-app", (PYTEST, "-q"), PYTEST_COLLECT),
    Case("pytest", "setup-error-q", "py-app", (PYTEST, "-q"), PYTEST_SETUP),
    Case("pytest", "mixed-q", "py-app", (PYTEST, "-q"), PYTEST_MIXED),
    Case("pytest", "no-tests", "py-app", (PYTEST,), (remove("tests/test_stock.py"),)),
    Case("pytest", "deselected-q", "py-app", (PYTEST, "-q", "-k", "no_such_test")),
    Case("pytest", "usage-error", "py-app", (PYTEST, "-q", "--no-such-option")),
    Case("pytest", "conftest-error", "py-app", (PYTEST, "-q"), (write("tests/conftest.py", "import nope\n"),)),
    Case("pytest", "timeout", "py-app", (PYTEST, "-q"), PYTEST_HANG, timeout=4),
    # eslint
    Case("eslint", "green", "ts-app", _ts("eslint", ".")),
    Case("eslint", "failing", "ts-app", _ts("eslint", "."), ESLINT_BREAK),
    Case("eslint", "failing-color", "ts-app", _ts("eslint", "."), ESLINT_BREAK, {"FORCE_COLOR": "1"}),
    Case("eslint", "parse-error", "ts-app", _ts("eslint", "."), ESLINT_PARSE),
    Case("eslint", "json-green", "ts-app", _ts("eslint", ".", "-f", "json")),
    Case("eslint", "json-failing", "ts-app", _ts("eslint", ".", "-f", "json"), ESLINT_BREAK),
    Case(
        "eslint",
        "config-error",
        "ts-app",
        _ts("eslint", "."),
        (write("eslint.config.js", 'module.exports = [{ rules: { "no-such-rule": "error" } }];\n'),),
    ),
    Case("eslint", "no-config", "ts-app", _ts("eslint", "."), (remove("eslint.config.js"),)),
    # ruff
    Case("ruff", "green", "py-app", (str(VENV_BIN / "ruff"), "check", ".")),
    Case("ruff", "failing", "py-app", (str(VENV_BIN / "ruff"), "check", "."), RUFF_BREAK),
    Case(
        "ruff",
        "failing-concise",
        "py-app",
        (str(VENV_BIN / "ruff"), "check", "--output-format", "concise", "."),
        RUFF_BREAK,
    ),
    Case("ruff", "failing-color", "py-app", (str(VENV_BIN / "ruff"), "check", "."), RUFF_BREAK, {"FORCE_COLOR": "1"}),
    Case("ruff", "syntax-error", "py-app", (str(VENV_BIN / "ruff"), "check", "."), RUFF_SYNTAX),
    Case("ruff", "json-green", "py-app", (str(VENV_BIN / "ruff"), "check", "--output-format", "json", ".")),
    Case(
        "ruff", "json-failing", "py-app", (str(VENV_BIN / "ruff"), "check", "--output-format", "json", "."), RUFF_BREAK
    ),
    Case(
        "ruff",
        "config-error",
        "py-app",
        (str(VENV_BIN / "ruff"), "check", "."),
        (replace("pyproject.toml", 'select = ["E", "F", "I"]', 'select = ["NOPE"]'),),
    ),
    # mypy
    Case("mypy", "green", "py-app", (str(VENV_BIN / "mypy"), ".")),
    Case("mypy", "failing", "py-app", (str(VENV_BIN / "mypy"), "."), MYPY_BREAK),
    Case(
        "mypy",
        "failing-color",
        "py-app",
        (str(VENV_BIN / "mypy"), "."),
        MYPY_BREAK,
        {"MYPY_FORCE_COLOR": "1", "FORCE_COLOR": "1"},
    ),
    Case("mypy", "syntax-error", "py-app", (str(VENV_BIN / "mypy"), "."), RUFF_SYNTAX),
    Case("mypy", "missing-path", "py-app", (str(VENV_BIN / "mypy"), "nowhere")),
    # exitcode (any command: only the exit status counts)
    Case("exitcode", "green", "py-app", (str(VENV_BIN / "ruff"), "check", ".")),
    Case("exitcode", "failing", "py-app", (str(VENV_BIN / "ruff"), "check", "."), RUFF_BREAK),
    Case("exitcode", "timeout", "py-app", (PYTEST, "-q"), PYTEST_HANG, timeout=4),
    # regex (a user's own pattern over any tool's output)
    Case(
        "regex",
        "pytest-summary",
        "py-app",
        (PYTEST, "-q"),
        PYTEST_BREAK,
        pattern=r"(?P<failed>\d+) failed|(?P<passed>\d+) passed",
    ),
    Case("regex", "eslint-errors", "ts-app", _ts("eslint", "."), ESLINT_BREAK, pattern=r"\((?P<errors>\d+) errors?"),
    Case("regex", "no-match-green", "ts-app", _ts("eslint", "."), pattern=r"\((?P<errors>\d+) errors?"),
    Case(
        "regex",
        "no-match-failed",
        "ts-app",
        _ts("eslint", "."),
        (write("eslint.config.js", "module.exports = [\n"),),
        pattern=r"\((?P<errors>\d+) errors?",
    ),
)


def prepare(case: Case) -> Path:
    """A fresh copy of the case's sample (node_modules linked, not copied), broken as told."""
    root = SCRATCH / f"{case.parser}-{case.name}" / (case.sample or "empty")
    shutil.rmtree(root.parent, ignore_errors=True)
    if case.sample:
        source = SAMPLES / case.sample
        ignore = shutil.ignore_patterns("node_modules", "__pycache__", ".*_cache")
        shutil.copytree(source, root, ignore=ignore)
        if (source / "node_modules").is_dir():
            (root / "node_modules").symlink_to(source / "node_modules")
    else:
        root.mkdir(parents=True)
    for edit in case.edits:
        edit(root)
    return root


def capture(case: Case) -> None:
    root = prepare(case)
    env = {k: v for k, v in os.environ.items() if k not in NOISY_ENV} | case.env
    done = run(case.argv, cwd=root, env=env, timeout=case.timeout)
    out = FIXTURES / case.parser / case.name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / "stdout").write_text(done.stdout)
    (out / "stderr").write_text(done.stderr)
    (out / "rc").write_text("timeout\n" if done.returncode is None else f"{done.returncode}\n")
    shown = [a.replace(str(VENV_BIN) + "/", "") for a in case.argv]
    env_shown = [f"{k}={v}" for k, v in case.env.items()]
    (out / "cmd").write_text(" ".join([*env_shown, *shown]) + f"  # in a copy of {case.sample or 'an empty folder'}\n")
    if case.pattern is not None:
        (out / "pattern").write_text(case.pattern + "\n")
    shutil.rmtree(root.parent, ignore_errors=True)
    print(
        f"{case.parser}/{case.name}: rc={done.returncode} {len(done.stdout)}+{len(done.stderr)} chars "
        f"in {done.duration_s:.1f}s"
    )


def main(argv: list[str]) -> int:
    if not (SAMPLES / "ts-app" / "node_modules").is_dir():
        print("capture: run `npm ci --prefix tests/samples/ts-app` first", file=sys.stderr)
        return 1
    wanted = set(argv)
    for case in CASES:
        if not wanted or case.parser in wanted:
            capture(case)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
