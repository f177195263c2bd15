"""The trust boundary, round 2: the change's own code runs inside the checks and tries to steer their verdict.

One test per attack of issue 21 (attacks 7 and 8, the reviewer's side, live with the reviewer's
tests). Each must fail to get through: main unchanged, the branch discarded, rejected or
waiting for a person with the reason, and nothing left behind for the next branch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from factoryctl.jobs.cycle import Cycle
from factoryctl.jobs.review.gate import MergeGate
from tests.factories import NO_DEV_PLUGINS, Factory, make_factory
from tests.integration.test_trust_boundary import APPROVE, agent, python

STOCK = "inventory/stock.py"
BROKEN = ("return self._items.get(item, 0)", "return -1")
BASE_PYTHON = Path(sys.base_prefix) / "bin" / "python3"  # not a venv: user site-packages are on by default


def broken_stock(factory: Factory) -> str:
    good = (factory.home / "repo" / STOCK).read_text()
    bad = good.replace(*BROKEN)
    assert bad != good
    return bad


def strays(worktree: Path) -> list[str]:
    """Files in a worktree its commit does not have, ignored ones too (dependency folders aside)."""
    done = subprocess.run(["git", "ls-files", "--others", "--directory", "--exclude=/node_modules", "--exclude=/.venv"],
                          cwd=worktree, capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.splitlines()


def checks(*names: str, python_exe: str = sys.executable) -> str:
    argv = {
        "pytest": f'["{python_exe}", "-m", "pytest", "-q", "-p", "no:cacheprovider", {NO_DEV_PLUGINS}]',
        "mypy": f'["{sys.executable}", "-m", "mypy", "--cache-dir=/dev/null", "."]',
        "ruff": f'["{sys.executable}", "-m", "ruff", "check", "--no-cache", "."]',
    }
    return "".join(f'\n[[checks]]\nname = "{n}"\ncommand = {argv[n]}\nparser = "{n}"\ntimeout_s = 120\n' for n in names)


def only_main(factory: Factory, main: str) -> None:
    assert factory.main_sha() == main
    assert factory.show("main", STOCK) == (factory.home / "repo" / STOCK).read_text().strip()


# -- 1. test-runner configuration under a name the old list missed -------------------------------------------


def test_a_pytest_toml_that_shadows_the_package_waits_for_a_person(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    good = (factory.home / "repo" / STOCK).read_text()
    package = factory.home / "repo" / "inventory"
    shadow = [{"write": f".shadow/inventory/{name}", "content": (package / name).read_text()}
              for name in ("__init__.py", "report.py", "stock.py")]  # fmt: skip
    config = {"write": ".pytest.toml", "content": '[pytest]\npythonpath = [".shadow", "."]\ntestpaths = ["tests"]\n'}
    factory.script([agent([*shadow, config, {"write": STOCK, "content": good.replace(*BROKEN)}]),
                    {"result": APPROVE}])  # fmt: skip
    main = factory.main_sha()
    report = Cycle(factory.ctx(), "s1").run()
    assert report.verdict == "pushed", report.reason  # the shadow fools the checks: only the gate can stop it
    (decision,) = MergeGate(factory.ctx()).run()
    assert decision.verdict == "awaiting_human" and ".pytest.toml" in decision.reasons[0], decision.reasons
    assert ".shadow/inventory/stock.py" in decision.reasons[0]
    only_main(factory, main)
    assert strays(factory.home / "worktrees" / "review") == []


# -- 2. one check's files steer the next ---------------------------------------------------------------------


def test_a_test_that_writes_mypy_and_ruff_config_does_not_steer_them(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, checks=checks("pytest", "mypy", "ruff"))
    writer = (
        "import pathlib\n\n\ndef test_writes_config() -> None:\n"
        "    pathlib.Path('.mypy.ini').write_text('[mypy]\\nignore_errors = True\\n')\n"
        "    pathlib.Path('.ruff.toml').write_text('lint.select = []\\n')\n"
    )
    bad = "import os\n\nwrong: int = 'not an int'\n"
    factory.script([agent([{"write": "tests/test_writer.py", "content": writer},
                           {"write": "inventory/extra.py", "content": bad}])])  # fmt: skip
    main = factory.main_sha()
    report = Cycle(factory.ctx(), "s1").run()
    assert report.verdict == "discarded", report.reason
    assert "pytest: crashed (it left files the commit does not have (.mypy.ini, .ruff.toml)" in report.reason
    assert "mypy: errors 0 -> 1" in report.reason and "ruff: errors 0 -> 1" in report.reason
    only_main(factory, main)
    assert factory.origin_branches() == ["main"]
    assert strays(factory.home / "worktrees" / "s1") == []


# -- 3. the test process writes its own verdict -----------------------------------------------------------


def test_a_test_that_rewrites_its_report_and_prints_a_summary_crashes_the_run(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    forger = '''import atexit, os, sys

FAKE = """<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="6">%s</testsuite></testsuites>"""
CASES = ["test_add_then_count", "test_take_reduces", "test_take_too_many", "test_add_zero_refused",
         "test_report_sorted", "test_ok"]


def forge() -> None:
    for arg in sys.argv:
        if arg.startswith("--junitxml="):
            cases = "".join(f'<testcase classname="tests.test_stock" name="{case}"/>' for case in CASES)
            with open(arg.split("=", 1)[1], "w") as fh:
                fh.write(FAKE % cases)
    sys.stdout.write("6 passed in 0.01s\\n")
    sys.stdout.flush()
    os._exit(0)


atexit.register(forge)


def test_ok() -> None:
    pass
'''
    factory.script([agent([{"write": "tests/test_ok.py", "content": forger},
                           {"write": STOCK, "content": broken_stock(factory)}])])  # fmt: skip
    main = factory.main_sha()
    report = Cycle(factory.ctx(), "s1").run()
    assert report.verdict == "discarded", report.reason
    assert "pytest: crashed (pytest printed 2 different summaries" in report.reason, report.reason
    only_main(factory, main)
    assert factory.origin_branches() == ["main"]


# -- 4. bytecode left behind -----------------------------------------------------------------------------------


def plant_pyc(where: str = "") -> str:
    """Python that compiles the good stock.py into an unchecked-hash .pyc in its ignored __pycache__/."""
    guard = f"    if {where!r} not in os.getcwd():\n        return\n" if where else ""
    return (
        "import os, py_compile, sys\n\n\ndef plant() -> None:\n" + guard +
        "    py_compile.compile('inventory/stock.py', doraise=True,\n"
        "                       cfile=f'inventory/__pycache__/stock.{sys.implementation.cache_tag}.pyc',\n"
        "                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n"
    )  # fmt: skip


def test_bytecode_a_branch_leaves_never_stands_in_for_the_next_branchs_code(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    at_gate = plant_pyc("worktrees/review") + "\n\ndef test_plant() -> None:\n    plant()\n"
    factory.script([agent([{"write": "tests/test_plant.py", "content": at_gate}]), {"result": APPROVE}])
    main = factory.main_sha()
    assert Cycle(factory.ctx(), "s1").run().verdict == "pushed"  # harmless in its own worktree
    # The next agent plants the same bytecode in its own worktree (ignored: never committed), then breaks the code.
    factory.script([agent([python(plant_pyc() + "plant()\n"), {"write": STOCK, "content": broken_stock(factory)}],
                          match="You are s2,"), {"result": APPROVE}])  # fmt: skip
    second = Cycle(factory.ctx(), "s2").run()
    assert second.verdict == "discarded" and "pytest: failed tests 0 ->" in second.reason, second.reason
    (decision,) = MergeGate(factory.ctx()).run()
    assert decision.verdict == "reject", decision.reasons
    assert "left files the commit does not have (inventory/__pycache__/" in decision.reasons[0]
    only_main(factory, main)
    assert strays(factory.home / "worktrees" / "review") == [] and strays(factory.home / "worktrees" / "s2") == []


# -- 5. a persistent, writable HOME --------------------------------------------------------------------------

PLUGIN = """import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().outcome = "passed"
"""


def install_plugin() -> str:
    """Python that installs PLUGIN as a pytest11 entry point into the user site-packages of $HOME."""
    return (
        "import pathlib, site\n"
        "site_dir = pathlib.Path(site.getusersitepackages())\n"
        "(site_dir / 'evilplug-1.0.dist-info').mkdir(parents=True, exist_ok=True)\n"
        f"(site_dir / 'evilplug.py').write_text({PLUGIN!r})\n"
        "(site_dir / 'evilplug-1.0.dist-info' / 'METADATA').write_text('Metadata-Version: 2.1\\nName: evilplug\\n"
        "Version: 1.0\\n')\n"
        "(site_dir / 'evilplug-1.0.dist-info' / 'entry_points.txt').write_text('[pytest11]\\nevil = evilplug\\n')\n"
    )


def test_a_plugin_installed_into_home_never_loads_in_a_later_check(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, checks=checks("pytest", python_exe=str(BASE_PYTHON)))
    planting = "import os\n\n\ndef test_plant() -> None:\n    if 'worktrees/review' in os.getcwd():\n" + "".join(
        f"        {line}\n" for line in install_plugin().splitlines()
    )
    factory.script([agent([{"write": "tests/test_plant.py", "content": planting}]), {"result": APPROVE}])
    assert Cycle(factory.ctx(), "s1").run().verdict == "pushed"
    (first,) = MergeGate(factory.ctx()).run()  # its test "installs" the plugin into the HOME it ran with
    main = factory.main_sha()
    # The next agent installs it into its own HOME, then breaks the code: its checks must not load it.
    factory.script([agent([python(install_plugin()), {"write": STOCK, "content": broken_stock(factory)}],
                          match="You are s2,"), {"result": APPROVE}])  # fmt: skip
    second = Cycle(factory.ctx(), "s2").run()
    assert second.verdict == "discarded" and "pytest: failed tests 0 ->" in second.reason, second.reason
    assert MergeGate(factory.ctx()).run() == []
    assert factory.main_sha() == main and "return -1" not in factory.show("main", STOCK)
    leftovers = list((factory.home / "cache").rglob("evilplug.py")) if (factory.home / "cache").exists() else []
    assert first.verdict == "approve" and not [p for p in leftovers if "review" in str(p)]


# -- 6. a silently cut output ------------------------------------------------------------------------------

PAD_FILES = 12_700


def test_padding_that_pushes_the_file_list_past_the_capture_limit_hides_nothing(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    conftest = PLUGIN
    # ~710 bytes a record: 12,700 of them make `git diff --numstat -z` 9 MB, past the runner's 8 MiB,
    # and they sort before tests/conftest.py.
    pad = (
        "import pathlib\n"
        f"for i in range({PAD_FILES}):\n"
        "    folder = pathlib.Path('inventory/data') / ('d' * 236 + f'{i // 1000:02d}') / ('e' * 240)\n"
        "    folder.mkdir(parents=True, exist_ok=True)\n"
        "    (folder / ('f' * 200 + f'{i:05d}.txt')).write_text('x\\n')\n"
    )
    factory.script([agent([python(pad), {"write": "tests/conftest.py", "content": conftest},
                           {"write": STOCK, "content": broken_stock(factory)}]), {"result": APPROVE}])  # fmt: skip
    main = factory.main_sha()
    report = Cycle(factory.ctx(), "s1").run()
    assert report.verdict == "pushed", report.reason  # the conftest's lie fools the checks
    assert len(report.files) == PAD_FILES + 2  # the whole list, not what fit in 8 MiB
    (decision,) = MergeGate(factory.ctx()).run()
    assert decision.verdict == "awaiting_human" and "tests/conftest.py" in decision.reasons[0], decision.reasons
    only_main(factory, main)
