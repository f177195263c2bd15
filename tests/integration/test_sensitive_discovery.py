"""The sensitive-path table follows the tools' own discovery rules: each tool, run for real, reads each name.

One case per (tool, file name): a tiny project with only that file, written so that the tool
shows it read it (a header line, a changed verdict, a printed marker). A name in the table
that no tool here reads is listed in `NOT_RUN_HERE` with why; a name a tool reads that is
missing from the table fails `test_every_proven_name_is_in_the_table`.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from factoryctl.adapters.runner import Completed, run
from factoryctl.core.defaults import SENSITIVE_BY_TOOL, SENSITIVE_PATHS
from factoryctl.rules.changes import sensitive_touched

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
NODE_MODULES = SAMPLES / "ts-app" / "node_modules"
BIN = Path(sys.executable).parent
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "PYTHON"))}
MYPY_BAD = "x: int = 'not an int'\n"

Proof = Callable[[Path], bool]  # runs the tool in the project, True when it showed it read the file


def tool(argv: list[str], cwd: Path, **env: str) -> Completed:
    return run(argv, cwd=cwd, timeout=120, env={**ENV, **env})


def pytest_header(name: str) -> Proof:
    return lambda root: (
        f"configfile: {name}" in tool([str(BIN / "pytest"), "--co", "-p", "no:cacheprovider"], root).stdout
    )


def mypy_silenced(root: Path) -> bool:
    (root / "bad.py").write_text(MYPY_BAD)
    return tool([str(BIN / "mypy"), "--cache-dir=/dev/null", "bad.py"], root).returncode == 0


def ruff_silenced(root: Path) -> bool:
    (root / "bad.py").write_text("import os\n")
    return tool([str(BIN / "ruff"), "check", "--no-cache", "bad.py"], root).returncode == 0


def prints(argv: list[str], marker: str = "READ-IT", **env: str) -> Proof:
    return lambda root: marker in (lambda d: d.stdout + d.stderr)(tool(argv, root, **env))


def node(name: str) -> list[str]:
    return [str(NODE_MODULES / ".bin" / name)]


def vitest_finds_nothing(root: Path) -> bool:
    (root / "a.test.ts").write_text('import { it } from "vitest";\nit("x", () => {});\n')
    return "No test files found" in (lambda d: d.stdout + d.stderr)(tool([*node("vitest"), "run"], root))


MARK = "print('READ-IT')\n"
VITE_CONFIG = 'export default { test: { include: ["nothing/**"] } };\n'
# (tool, file name as the table has it, path written, its text, the proof)
CASES: list[tuple[str, str, str, str, Proof]] = [
    ("pytest", "pytest.toml", "pytest.toml", "[pytest]\n", pytest_header("pytest.toml")),
    ("pytest", ".pytest.toml", ".pytest.toml", "[pytest]\n", pytest_header(".pytest.toml")),
    ("pytest", "pytest.ini", "pytest.ini", "[pytest]\n", pytest_header("pytest.ini")),
    ("pytest", ".pytest.ini", ".pytest.ini", "[pytest]\n", pytest_header(".pytest.ini")),
    ("pytest", "pyproject.toml", "pyproject.toml", "[tool.pytest.ini_options]\n", pytest_header("pyproject.toml")),
    ("pytest", "tox.ini", "tox.ini", "[pytest]\n", pytest_header("tox.ini")),
    ("pytest", "setup.cfg", "setup.cfg", "[tool:pytest]\n", pytest_header("setup.cfg")),
    ("pytest", "conftest.py", "deep/down/conftest.py", MARK,
     prints([str(BIN / "pytest"), "-s", "--co", "-p", "no:cacheprovider", "deep/down"])),
    ("python", "sitecustomize.py", "lib/sitecustomize.py", MARK, prints(["python3", "-c", "pass"], PYTHONPATH="lib")),
    ("python", "usercustomize.py", "lib/usercustomize.py", MARK, prints(["python3", "-c", "pass"], PYTHONPATH="lib")),
    ("python", "*.pth", "lib/evil.pth", "import sys; print('READ-IT')\n",
     prints(["python3", "-S", "-c", "import site; site.addsitedir('lib')"])),
    ("mypy", "mypy.ini", "mypy.ini", "[mypy]\nignore_errors = True\n", mypy_silenced),
    ("mypy", ".mypy.ini", ".mypy.ini", "[mypy]\nignore_errors = True\n", mypy_silenced),
    ("mypy", "pyproject.toml", "pyproject.toml", "[tool.mypy]\nignore_errors = true\n", mypy_silenced),
    ("mypy", "setup.cfg", "setup.cfg", "[mypy]\nignore_errors = True\n", mypy_silenced),
    ("ruff", "ruff.toml", "ruff.toml", "lint.select = []\n", ruff_silenced),
    ("ruff", ".ruff.toml", ".ruff.toml", "lint.select = []\n", ruff_silenced),
    ("ruff", "pyproject.toml", "pyproject.toml", "[tool.ruff.lint]\nselect = []\n", ruff_silenced),
    ("tsc", "tsconfig*.json", "tsconfig.json", '{"extends": "./tsconfig.base.json"}\n',
     prints([*node("tsc"), "--showConfig"], marker='"strict": true')),
    ("vitest", "vitest.config.*", "vitest.config.mts", VITE_CONFIG, vitest_finds_nothing),
    ("vitest", "vite.config.*", "vite.config.mts", VITE_CONFIG, vitest_finds_nothing),
    ("jest", "jest.config.*", "jest.config.js", "console.log('READ-IT');\nmodule.exports = {};\n",
     prints([*node("jest"), "--listTests"])),
    ("eslint", "eslint.config.*", "eslint.config.mjs", "console.log('READ-IT');\nexport default [];\n",
     prints([*node("eslint"), "--no-warn-ignored", "x.js"])),
    ("npm/pnpm/yarn", ".npmrc", ".npmrc", "factory-probe=READ-IT\n", prints(["npm", "config", "get", "factory-probe"])),
    ("npm/pnpm/yarn", ".pnpmfile.cjs", ".pnpmfile.cjs", "console.log('READ-IT');\nmodule.exports = {hooks: {}};\n",
     prints(["pnpm", "install", "--offline", "--ignore-scripts"])),
]  # fmt: skip
# Names in the table whose tool does not run here, or only through another step (setup), with why.
NOT_RUN_HERE = {
    "setup.py": "run by setup's pip/uv build, not by a check",
    "jsconfig*.json": "read by tsc only with -p, like tsconfig.*.json (proved through extends)",
    ".eslintrc*": "eslint 9 reads it only with ESLINT_USE_FLAT_CONFIG=false",
}
NEEDS_NODE = {"tsc", "vitest", "jest", "eslint"}


@pytest.mark.parametrize(("tool_name", "name", "path", "text", "proof"), CASES,
                         ids=[f"{c[0]}:{c[2]}" for c in CASES])  # fmt: skip
def test_the_tool_reads_the_name(tmp_path: Path, tool_name: str, name: str, path: str, text: str, proof: Proof) -> None:
    if tool_name in NEEDS_NODE and not NODE_MODULES.is_dir():
        pytest.skip("the TypeScript sample is not installed: run `npm ci --prefix tests/samples/ts-app`")
    if tool_name == "npm/pnpm/yarn" and not shutil.which((path.startswith(".pnpm") and "pnpm") or "npm"):
        pytest.skip("npm/pnpm not installed")
    root = tmp_path / "project"
    root.mkdir()
    if tool_name in NEEDS_NODE:
        (root / "node_modules").symlink_to(NODE_MODULES)
        (root / "package.json").write_text('{"name": "probe", "private": true}\n')
        (root / "tsconfig.base.json").write_text('{"compilerOptions": {"strict": true}}\n')
        (root / "a.ts").write_text("export const a = 1;\n")
        (root / "x.js").write_text("var a = 1;\n")
    if tool_name == "npm/pnpm/yarn":
        (root / "package.json").write_text('{"name": "probe", "private": true}\n')
    (root / "test_probe.py").write_text("def test_x() -> None:\n    pass\n")
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)
    assert name in SENSITIVE_BY_TOOL[tool_name]
    assert sensitive_touched([path], SENSITIVE_PATHS) == [path], f"{path} is not matched by the table"
    assert proof(root), f"{tool_name} did not show it read {path}"
    (root / path).unlink()  # and without the file the tool shows nothing of it: the proof is the file's doing
    assert not proof(root), f"{tool_name} showed the same without {path}"


def test_every_table_name_is_proved_or_says_why_not() -> None:
    proved = {name for _, name, *_ in CASES}
    unproved = {name for name in SENSITIVE_PATHS if name not in proved}
    tools_only = {n for t in ("tox/nox", "pip/uv/poetry", "coverage", "ci", "agent", "jest", "vitest", "eslint",
                              "npm/pnpm/yarn") for n in SENSITIVE_BY_TOOL[t]}  # fmt: skip
    # Read by setup's package manager or by tools no check here runs: listed, not proved by running.
    assert unproved - tools_only - set(NOT_RUN_HERE) == set()
