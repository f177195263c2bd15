"""The real check tools, run on fresh copies of the sample projects, read by the parsers.

The samples are broken the same way tests/samples/capture.py breaks them for the
fixtures, so the live counts here are the ones recorded in tests/unit/test_parsers.py.
The TypeScript tools need `npm ci --prefix tests/samples/ts-app` (skipped without it).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import pytest

from factoryctl.adapters.parsers import parse
from factoryctl.adapters.runner import run
from factoryctl.core.checks import Counts

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
NODE_MODULES = SAMPLES / "ts-app" / "node_modules"
VENV_BIN = Path(sys.executable).parent


def _load_capture() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sample_capture", SAMPLES / "capture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


capture = _load_capture()
Edit = Callable[[Path], None]


def _ts(tool: str, *args: str) -> tuple[str, ...]:
    return (f"node_modules/.bin/{tool}", *args)


def _py(tool: str, *args: str) -> tuple[str, ...]:
    return (str(VENV_BIN / tool), *args)


# (parser, case, sample, argv, edits, expected)
CASES: list[tuple[str, str, str, tuple[str, ...], tuple[Edit, ...], Counts]] = [
    ("tsc", "green", "ts-app", _ts("tsc", "--noEmit"), (), Counts()),
    ("tsc", "failing", "ts-app", _ts("tsc", "--noEmit"), capture.TSC_BREAK, Counts(errors=3)),
    ("vitest", "green", "ts-app", _ts("vitest", "run"), (), Counts(passed=5, total=5)),
    ("vitest", "failing", "ts-app", _ts("vitest", "run"), capture.VITEST_BREAK,
     Counts(failed=1, passed=4, total=5)),
    ("vitest", "json-failing", "ts-app", _ts("vitest", "run", "--reporter=json"),
     capture.VITEST_BREAK, Counts(failed=1, passed=4, total=5)),
    ("jest", "green", "ts-app", _ts("jest"), (), Counts(passed=4, total=4)),
    ("jest", "failing", "ts-app", _ts("jest"), capture.JEST_BREAK,
     Counts(failed=2, passed=2, total=4)),
    ("eslint", "green", "ts-app", _ts("eslint", "."), (), Counts()),
    ("eslint", "failing", "ts-app", _ts("eslint", "."), capture.ESLINT_BREAK, Counts(errors=2)),
    ("pytest", "green", "py-app", _py("pytest", "-q"), (), Counts(passed=5, total=5)),
    ("pytest", "failing", "py-app", _py("pytest"), capture.PYTEST_BREAK,
     Counts(failed=2, passed=3, total=5)),
    ("pytest", "collection-error", "py-app", _py("pytest", "-q"), capture.PYTEST_COLLECT,
     Counts(failed=1, total=1)),
    ("ruff", "green", "py-app", _py("ruff", "check", "."), (), Counts()),
    ("ruff", "failing", "py-app", _py("ruff", "check", "."), capture.RUFF_BREAK, Counts(errors=3)),
    ("mypy", "green", "py-app", _py("mypy", "."), (), Counts()),
    ("mypy", "failing", "py-app", _py("mypy", "."), capture.MYPY_BREAK, Counts(errors=3)),
]  # fmt: skip


def _copy_sample(sample: str, dest: Path) -> Path:
    """A fresh copy of a sample; node_modules is linked, not copied (it is large)."""
    source = SAMPLES / sample
    root = dest / sample
    ignore = shutil.ignore_patterns("node_modules", "__pycache__", ".*_cache")
    shutil.copytree(source, root, ignore=ignore)
    if sample == "ts-app":
        if not NODE_MODULES.is_dir():
            pytest.skip("the TypeScript sample is not installed: run `npm ci --prefix tests/samples/ts-app`")
        (root / "node_modules").symlink_to(NODE_MODULES)
    return root


@pytest.mark.parametrize(
    ("parser", "case", "sample", "argv", "edits", "expected"),
    CASES,
    ids=[f"{c[0]}/{c[1]}" for c in CASES],
)
def test_real_tool_output_is_counted(
    tmp_path: Path,
    parser: str,
    case: str,
    sample: str,
    argv: Sequence[str],
    edits: tuple[Edit, ...],
    expected: Counts,
) -> None:
    root = _copy_sample(sample, tmp_path)
    for edit in edits:
        edit(root)
    done = run(argv, cwd=root, timeout=120)
    got = parse(parser, done.stdout, done.stderr, done.returncode)
    assert got == expected, f"{parser}/{case}: rc={done.returncode}\n{done.tail(2000)}"
