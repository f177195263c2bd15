"""The trust boundary's pure parts, table-driven: what a lying tool prints, what a report says,
which git config keys could run a program, which changes wait for a person, what the sandbox hides."""

from __future__ import annotations

from pathlib import Path

import pytest

from factoryctl.adapters.git import config_problems
from factoryctl.adapters.junit import parse_junit, report_args
from factoryctl.adapters.parsers import parse
from factoryctl.adapters.sandbox import Launch, Policy, Sandbox, allowed_env
from factoryctl.core.defaults import SENSITIVE_PATHS
from factoryctl.rules.changes import judging_config_changed, new_on_import_path, sensitive_touched
from factoryctl.rules.changes import tests_worse as lost_tests  # (not a test function)

# -- pytest's summary must come from stdout and agree with the exit code -----------------------------


@pytest.mark.parametrize(
    ("stdout", "stderr", "rc", "crashed"),
    [
        ("== 3 passed in 0.1s ==\n", "", 0, False),
        ("== 1 failed, 2 passed in 0.1s ==\n", "", 1, False),
        ("", "== 3 passed in 0.1s ==\n", 1, True),  # a summary printed on stderr is not pytest's
        ("== 3 passed in 0.1s ==\n", "", 1, True),  # "all passed" but exit 1: a conftest lying
        ("== 1 failed in 0.1s ==\n", "", 0, True),  # a failure but exit 0
        ("== no tests ran in 0.01s ==\n", "", 5, False),
        ("== 2 passed in 0.1s ==\n", "", 5, True),  # exit 5 means nothing was collected
    ],
)
def test_pytest_summary_is_believed_only_when_it_agrees(stdout: str, stderr: str, rc: int, crashed: bool) -> None:
    assert parse("pytest", stdout, stderr, rc).crashed is crashed


# -- JUnit reports ------------------------------------------------------------------------------------

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
<testcase classname="tests.test_a" name="test_ok" time="0.1"/>
<testcase classname="tests.test_a" name="test_bad"><failure message="x">boom</failure></testcase>
<testcase classname="tests.test_a" name="test_err"><error message="x"/></testcase>
<testcase classname="tests.test_a" name="test_skip"><skipped message="later"/></testcase>
<testcase classname="tests.test_a" name="test_xfail"><skipped type="pytest.xfail" message="xfail"/></testcase>
</testsuite></testsuites>
"""


def test_a_junit_report_gives_each_tests_outcome() -> None:
    assert parse_junit(REPORT) == {
        "tests.test_a::test_ok": "passed",
        "tests.test_a::test_bad": "failed",
        "tests.test_a::test_err": "failed",
        "tests.test_a::test_skip": "skipped",
        "tests.test_a::test_xfail": "skipped",
    }


@pytest.mark.parametrize(
    "text",
    [
        "not xml",
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>',  # entities
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',  # external
    ],
    ids=["garbage", "entity-expansion", "external-entity"],
)
def test_a_report_that_cannot_be_trusted_is_none(text: str) -> None:
    assert parse_junit(text) is None


def test_only_runners_with_a_junit_reporter_get_one(tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    assert report_args("pytest", report) == [f"--junitxml={report}"]
    assert report_args("vitest", report)[-1] == f"--outputFile.junit={report}"
    assert report_args("tsc", report) == []


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ({"t": {"a": "passed"}}, {"t": {"a": "passed", "b": "passed"}}, []),
        ({"t": {"a": "passed"}}, {"t": {"a": "skipped"}}, ["t: passed on main, not now: a (skipped)"]),
        ({"t": {"a": "passed"}}, {"t": {"b": "passed"}}, ["t: passed on main, not now: a (missing)"]),
        ({"t": {"a": "failed"}}, {"t": {}}, []),  # it did not pass on main: nothing is lost
        ({"t": {"a": "passed"}}, {"t": None}, ["t: wrote no test report (main's run did)"]),
        ({"t": None}, {"t": None}, []),  # no reports on either side: the counts decide
        ({"t": {f"x{i}": "passed" for i in range(8)}}, {"t": {}},
         ["t: passed on main, not now: x0 (missing), x1 (missing), x2 (missing), x3 (missing), x4 (missing)"
          " and 3 more"]),
    ],
)  # fmt: skip
def test_tests_are_compared_by_name(
    before: dict[str, dict[str, str] | None], after: dict[str, dict[str, str] | None], expected: list[str]
) -> None:
    assert lost_tests(before, after) == expected


# -- the clone's config -----------------------------------------------------------------------------------


def listing(*pairs: tuple[str, str]) -> str:
    return "".join(f"{k}\n{v}\0" for k, v in pairs)


def test_the_plain_keys_of_a_clone_pass() -> None:
    plain = listing(
        ("core.repositoryformatversion", "0"), ("core.filemode", "true"), ("core.bare", "false"),
        ("core.logallrefupdates", "true"), ("remote.origin.url", "git@github.com:me/app.git"),
        ("remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"), ("branch.main.remote", "origin"),
        ("branch.main.merge", "refs/heads/main"),
        ("core.sshcommand", "ssh -i /home/factory/.ssh/factory_deploy -o IdentitiesOnly=yes"),
    )  # fmt: skip
    assert config_problems(plain) == []


@pytest.mark.parametrize(
    "key",
    ["core.fsmonitor", "core.pager", "core.editor", "diff.external", "filter.evil.smudge", "alias.st",
     "remote.origin.uploadpack", "remote.origin.receivepack", "url.https://evil/.insteadof", "include.path",
     "credential.helper", "core.hookspath", "remote.origin.pushurl", "protocol.ext.allow"],
)  # fmt: skip
def test_keys_that_could_run_or_redirect_are_problems(key: str) -> None:
    assert config_problems(listing((key, "touch /tmp/x"))) == [f"{key} = 'touch /tmp/x'"]


def test_an_ssh_command_with_shell_in_it_is_a_problem() -> None:
    assert config_problems(listing(("core.sshcommand", "ssh; touch /tmp/x"))) != []


# -- sensitive paths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "sensitive"),
    [
        ("conftest.py", True), ("tests/unit/conftest.py", True), ("tsconfig.build.json", True),
        ("vitest.config.ts", True), ("pnpm-lock.yaml", True), ("requirements-dev.txt", True),
        (".circleci/config.yml", True), ("src/app.ts", False), ("tests/test_a.py", False), ("docs/setup.md", False),
        ("pytest.toml", True), (".pytest.toml", True), (".pytest.ini", True), ("lib/sitecustomize.py", True),
        ("usercustomize.py", True), ("x/evil.pth", True), ("sub/.mypy.ini", True), (".ruff.toml", True),
        ("vite.config.ts", True), (".pnpmfile.cjs", True), (".yarnrc.yml", True), (".yarn/releases/y.cjs", True),
        ("tsconfig.json", True), (".eslintrc.json", True),
    ],
)  # fmt: skip
def test_sensitive_paths(path: str, sensitive: bool) -> None:
    assert bool(sensitive_touched([path], SENSITIVE_PATHS)) is sensitive


PYPROJECT = '[project]\nname = "x"\ndependencies = []\n\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'


@pytest.mark.parametrize(
    ("path", "before", "after", "changed"),
    [
        ("pyproject.toml", PYPROJECT, PYPROJECT.replace("[]", '["rich"]'), False),  # a dependency: not judging
        ("pyproject.toml", PYPROJECT, PYPROJECT.replace('"tests"', '"nowhere"'), True),  # testpaths moved
        ("pyproject.toml", PYPROJECT, PYPROJECT + "[tool.mypy]\nignore_errors = true\n", True),
        ("pyproject.toml", PYPROJECT, "not toml [", True),
        ("package.json", '{"dependencies": {}}', '{"dependencies": {"a": "1"}}', False),
        ("package.json", '{"scripts": {"test": "vitest"}}', '{"scripts": {"test": "true"}}', True),
        ("package.json", "{}", None, True),  # deleted
        ("conftest.py", "", "x = 1", True),
        ("pyproject.toml", PYPROJECT, PYPROJECT + '[project.entry-points.pytest11]\nevil = "evil"\n', True),
        ("pyproject.toml", PYPROJECT, PYPROJECT.replace("dependencies = []", 'scripts = {pytest = "e:m"}'), True),
        ("package.json", "{}", '{"packageManager": "pnpm@9.0.0"}', True),
    ],
)  # fmt: skip
def test_which_changes_to_config_files_judge(path: str, before: str, after: str | None, changed: bool) -> None:
    assert judging_config_changed(path, before, after) is changed


# -- the sandbox's mounts and environment -------------------------------------------------------------------


def test_the_sandbox_hides_the_home_and_binds_back_only_the_call(tmp_path: Path) -> None:
    home, factory = tmp_path / "home", tmp_path / "home" / "factory"
    worktree, cache, git_dir = factory / "worktrees" / "s1", factory / "cache" / "s1", factory / "repo" / ".git"
    for path in (worktree, cache, git_dir):
        path.mkdir(parents=True)
    sandbox = Sandbox(True, hide=(home, factory))
    argv = sandbox.wrap(["agent"], Policy(workdir=worktree, home=cache, read_only=(git_dir,)))
    text = " ".join(argv)
    assert argv[:6] == [
        "bwrap",
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
    ]
    assert "--unshare-net" in argv  # no network unless asked
    assert (
        text.index(f"--tmpfs {home}")
        < text.index(f"--ro-bind {git_dir} {git_dir}")
        < text.index(f"--bind {worktree} {worktree}")
    )  # hidden first, then what the call needs
    assert argv[-2:] == ["--", "agent"] and argv[argv.index("--chdir") + 1] == str(worktree)
    reviewer = sandbox.wrap(["r"], Policy(workdir=worktree, writable=False, network=True))
    assert f"--ro-bind {worktree} {worktree}" in " ".join(reviewer) and "--unshare-net" not in reviewer
    assert Sandbox(False, hide=(home,)).wrap(["agent"], Policy(workdir=worktree)) == ["agent"]


def test_a_launch_moves_into_a_subfolder_and_asks_for_network_per_command(tmp_path: Path) -> None:
    launch = Launch(Sandbox(True, hide=()), Policy(workdir=tmp_path), {})
    argv = launch.argv(["tsc"], cwd=tmp_path / "packages" / "a", network=True)
    assert argv[argv.index("--chdir") + 1] == str(tmp_path / "packages" / "a") and "--unshare-net" not in argv


def test_the_environment_is_an_allow_list(tmp_path: Path) -> None:
    source = {"PATH": "/usr/bin", "LANG": "C.UTF-8", "TELEGRAM_BOT_TOKEN": "t", "FACTORY_HTTP_TOKEN": "h",
              "ANTHROPIC_API_KEY": "k", "AWS_SECRET_ACCESS_KEY": "a", "HOME": "/root"}  # fmt: skip
    checks = allowed_env(source, tmp_path)
    assert checks == {"PATH": "/usr/bin", "LANG": "C.UTF-8", "HOME": str(tmp_path), "PYTHONNOUSERSITE": "1"}
    agent = allowed_env(source, tmp_path, extra=("ANTHROPIC_API_KEY",))
    assert agent["ANTHROPIC_API_KEY"] == "k" and "TELEGRAM_BOT_TOKEN" not in agent


@pytest.mark.parametrize(
    ("added", "shadows"),
    [
        (".shadow/inventory/stock.py", True),  # a new top-level folder: pythonpath = [".shadow", "."]
        ("shadow.py", True), ("evil.pth", True),
        ("tests/inventory/__init__.py", True), ("tests/inventory.py", True),  # named like the project's package
        ("tests/test_stock_more.py", False), ("inventory/extra.py", False), ("NOTES.md", False),
        ("notes/s1-1.md", False), ("data/prices.csv", False),  # a new folder of notes or data imports nothing
        (".shadow/inventory/stock.cpython-311.pyc", True), ("vendored/fast.so", True),
    ],
)  # fmt: skip
def test_new_files_that_change_what_an_import_finds(added: str, shadows: bool) -> None:
    top = ["inventory", "tests", "pyproject.toml", ".gitignore"]
    assert bool(new_on_import_path([added], top)) is shadows


def test_a_check_run_gets_its_own_home_and_a_read_only_report_folder(tmp_path: Path) -> None:
    worktree, cache, run_home, verdict = (tmp_path / n for n in ("wt", "cache", "run-home", "verdict"))
    for path in (worktree, cache, run_home, verdict):
        path.mkdir()
    launch = Launch(
        Sandbox(True, hide=()), Policy(workdir=worktree, home=cache), {"PATH": "/usr/bin", "HOME": str(cache)}
    )
    own = launch.fresh(run_home, verdict)
    argv = own.argv(["true"])
    assert ["--bind", str(run_home), str(run_home)] == argv[
        argv.index(str(run_home)) - 1 : argv.index(str(run_home)) + 2
    ]
    assert ["--ro-bind", str(verdict), str(verdict)] == argv[
        argv.index(str(verdict)) - 1 : argv.index(str(verdict)) + 2
    ]
    assert str(cache) not in argv and own.env["HOME"] == str(run_home)
    assert own.env["PYTHONNOUSERSITE"] == own.env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert own.env["PYTHONPYCACHEPREFIX"].startswith(str(run_home))


def test_setup_gets_an_empty_home_inside_the_sandbox(tmp_path: Path) -> None:
    launch = Launch(Sandbox(True, hide=()), Policy(workdir=tmp_path, home=tmp_path / "cache"), {"HOME": "x"})
    scratch = launch.scratch()
    argv = scratch.argv(["true"])
    assert "--dir" in argv and argv[argv.index("--dir") + 1] == "/tmp/home" and str(tmp_path / "cache") not in argv
    assert scratch.env["HOME"] == "/tmp/home"
    off = Launch(Sandbox(False, hide=()), launch.policy, launch.env)
    assert off.scratch() is off  # development only: nothing to make a room in


@pytest.mark.parametrize(
    ("command", "guarded"),
    [
        (["python3", "-m", "pytest", "-q"], True),
        (["/venv/bin/python3", "-X", "pycache_prefix=/c", "-B", "-m", "pytest"], True),
        (["python3", "-W", "ignore", "-m", "pytest"], True),
        (["python3", "-P", "-m", "pytest"], True),
        (["python3", "-m", "unittest"], False),
        (["python3", "tests/run.py", "-m", "pytest"], False),
        (["pytest", "-q"], False),
    ],
)
def test_python_m_pytest_runs_without_the_worktree_on_its_path(command: list[str], guarded: bool) -> None:
    from factoryctl.adapters.checks import check_argv
    from factoryctl.core.config import CheckSpec

    argv = check_argv(CheckSpec(name="t", command=command, parser="pytest"))
    assert (argv[1] == "-P") is guarded and argv[0] == command[0]
