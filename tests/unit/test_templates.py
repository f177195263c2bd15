"""Every template rendered for several host-data sets and checked by what reads it: node,
cron's grammar, TOML into Settings, sh. All jobs are rendered too (not only those the
runtime implements today), so the templates are proven for the jobs still to come.
The deploy's own operations are tested here as data too: facts in, commands out."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from factoryctl.core.configfile import settings_from_mapping
from factoryctl.core.defaults import SECRET_ENV
from factoryctl.core.jobspecs import JOBS
from inventory import DEFAULTS, DEMO
from provision import facts, hostdata, layout, operations, templating

ALL_JOBS = [job.name for job in JOBS]
HOSTILE = 'it\'s a "secret" with $HOME, `id`, $(id), \\ back\\slash, ; | & * ~ # and ünïcode'


def host_data(**overrides: Any) -> dict[str, Any]:
    return {**DEFAULTS, "factory_repo_url": "https://example.com/app.git", **overrides}


def everything(tmp_path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Every job, every secret (hostile values), many checks and extra configuration."""
    key = tmp_path / "deploy_key"
    key.write_text("not really a key\n")
    data = host_data(
        factory_sessions=64,
        factory_repo_url="git@github.com:someone/app.git",
        factory_repo_branch="release-2.x",
        factory_agent_command=["claude", "-p", "--append-system-prompt", "say $(hi) `now` & 'quote' \"dq\""],
        factory_checks=[
            {"name": "tsc", "command": ["npx", "tsc", "--noEmit"], "parser": "tsc", "heavy": True},
            {"name": "unit.tests", "command": ["npm", "test", "--", "--grep", "a b;c"], "parser": "vitest"},
            {
                "name": "count",
                "command": ["sh", "-c", "grep -c TODO src || true"],
                "parser": "regex",
                "pattern": r"(?P<errors>\d+)\s*$",
                "cwd": "packages/app",
                "timeout_s": 60,
            },
        ],
        factory_budget_daily_usd=12,
        factory_telegram_chat_ids=[123456789, -100987654321],
        factory_http_bind="127.0.0.1:9000",
        factory_config={
            "cycle": {"interval_s": 1200, "backoff_max_s": 7200},
            "scheduler": {"max_ram_percent": 70, "heavy_slots": 1},
            "review": {"mode": "human"},
            "repo": {"context_files": ["CLAUDE.md", "docs/AGENTS.md"], "setup": ["npm", "ci"]},
        },
        factory_jobs=ALL_JOBS,
    )
    # Each secret as hostile as its shape allows (factoryctl.core.secrets): quotes, $(...), backticks.
    one_word = "".join(HOSTILE.split())
    environ = {name: f"{name.lower()}-{one_word}" for name in SECRET_ENV}
    environ["ANTHROPIC_API_KEY"] = environ["ANTHROPIC_API_KEY"].encode("ascii", "ignore").decode()
    environ["CLAUDE_CODE_OAUTH_TOKEN"] = environ["CLAUDE_CODE_OAUTH_TOKEN"].encode("ascii", "ignore").decode()
    environ["FACTORY_HTTP_TOKEN"] = environ["FACTORY_HTTP_TOKEN"].encode("ascii", "ignore").decode()
    environ["TELEGRAM_BOT_TOKEN"] = "123456789:AAE-hostile_but_well-formed"
    environ["FACTORY_GITHUB_SECRET"] = f"github {HOSTILE}"  # any text: GitHub takes any
    environ[hostdata.DEPLOY_KEY_ENV] = str(key)
    return data, environ


def data_set(name: str, tmp_path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    if name == "defaults":
        return host_data(), {"ANTHROPIC_API_KEY": "sk-ant-test-0123456789"}
    if name == "demo":
        return {**DEFAULTS, **DEMO}, {}
    if name == "demo-all-jobs":
        return {**DEFAULTS, **DEMO, "factory_jobs": ALL_JOBS}, {"FACTORY_HTTP_TOKEN": "t0ken-t0ken-t0ken"}
    if name == "one-session-oauth":
        return host_data(factory_sessions=1), {"CLAUDE_CODE_OAUTH_TOKEN": "oauth'tok'$x"}
    return everything(tmp_path)


SETS = ["defaults", "demo", "demo-all-jobs", "one-session-oauth", "everything"]


@pytest.fixture(params=SETS)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[hostdata.Checked, dict[str, str]]:
    data, environ = data_set(request.param, tmp_path)
    checked = hostdata.check(data, environ, host=request.param)
    return checked, templating.render_all(checked)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- the template set ------------------------------------------------------------------


def test_every_template_is_rendered_by_the_deploy() -> None:
    on_disk = {p.name for p in templating.TEMPLATES.glob("*.j2")}
    fleet = {name for files in templating.FLEET_FILES.values() for name in files}
    assert on_disk == set(templating.FILES) | fleet


def test_jobs_have_unique_names_and_only_cron_jobs_a_schedule() -> None:
    names = [job.name for job in JOBS]
    assert len(names) == len(set(names))
    assert all(job.schedule for job in JOBS if job.kind == "cron")
    assert not any(job.schedule for job in JOBS if job.kind != "cron")


# -- factory.toml ----------------------------------------------------------------------


def test_factory_toml_loads_back_into_the_same_settings(case: tuple[hostdata.Checked, dict[str, str]]) -> None:
    checked, text = case
    loaded = settings_from_mapping(tomllib.loads(text["factory.toml.j2"]), source="factory.toml")
    assert loaded == checked.settings


def test_factory_toml_keeps_hostile_strings_exactly(tmp_path: Path) -> None:
    data, environ = everything(tmp_path)
    checked = hostdata.check(data, environ)
    loaded = tomllib.loads(templating.render_all(checked)["factory.toml.j2"])
    assert loaded["agent"]["command"][-1] == "say $(hi) `now` & 'quote' \"dq\""
    assert loaded["checks"][2]["pattern"] == r"(?P<errors>\d+)\s*$"


@pytest.mark.parametrize(
    ("value", "expected"),
    [('a"b\\c\nd\te\x01', 'a"b\\c\nd\te\x01'), (1.5, 1.5), (True, True), ([1, "x"], [1, "x"])],
)
def test_toml_values_round_trip(value: Any, expected: Any) -> None:
    assert tomllib.loads(f"v = {templating.toml_value(value)}")["v"] == expected


# -- ecosystem.config.js ---------------------------------------------------------------


def node_eval(path: Path) -> Any:
    done = subprocess.run(
        ["node", "-e", "process.stdout.write(JSON.stringify(require(process.argv[1])))", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_ecosystem_is_valid_javascript_with_every_pm2_setting(
    case: tuple[hostdata.Checked, dict[str, str]], tmp_path: Path
) -> None:
    checked, text = case
    path = write(tmp_path, "ecosystem.config.js", text["ecosystem.config.js.j2"])
    subprocess.run(["node", "--check", str(path)], check=True, capture_output=True, timeout=30)
    apps = node_eval(path)["apps"]
    assert [app["name"] for app in apps] == templating.pm2_app_names(checked.jobs)
    for app, job in zip(apps, checked.jobs_of("pm2"), strict=True):
        assert app["script"] == layout.RUN
        assert app["args"] == ["factoryctl", *job.argv]
        assert app["interpreter"] == "none"
        assert app["env"] == {"FACTORY_HOME": layout.FACTORY_HOME, "PYTHONUNBUFFERED": "1"}
        for key in ("min_uptime", "max_restarts", "exp_backoff_restart_delay", "max_memory_restart", "kill_timeout"):
            assert app[key], key
        assert app["out_file"] == app["error_file"] == f"{layout.LOGS_DIR}/{job.name}.log"
        assert not any(secret in json.dumps(app) for secret in checked.secrets.values())


def test_all_long_lived_jobs_render_as_pm2_apps(tmp_path: Path) -> None:
    data, environ = everything(tmp_path)
    apps = templating.context(hostdata.check(data, environ))["pm2_apps"]
    assert [a["name"] for a in apps] == ["factory-scheduler", "factory-bot", "factory-serve"]


# -- the cron file ---------------------------------------------------------------------

_FIELD = r"(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*"
_LIMITS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def cron_entries(text: str) -> Iterator[tuple[str, str, list[str]]]:
    """(schedule, user, argv of the command) for every job line; asserts the file's grammar."""
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if re.match(r"^[A-Z_]+=", line):
            continue
        assert "\\%" not in line and "%" not in line, line
        if line.startswith("@"):
            special, user, command = line.split(None, 2)
            assert special == "@reboot", line
            yield special, user, shlex.split(command)
            continue
        fields = line.split(None, 6)
        assert len(fields) == 7, f"5 time fields, a user and a command: {line!r}"
        for field, (low, high) in zip(fields[:5], _LIMITS, strict=True):
            assert re.fullmatch(_FIELD, field), (field, line)
            for number in re.findall(r"\d+", field.split("/")[0]):
                assert low <= int(number) <= high, (field, line)
        yield " ".join(fields[:5]), fields[5], shlex.split(fields[6])


def test_cron_file_has_valid_lines_for_every_deployed_job(case: tuple[hostdata.Checked, dict[str, str]]) -> None:
    checked, text = case
    entries = list(cron_entries(text["cron.j2"]))
    assert all(user == layout.USER for _, user, _ in entries)
    jobs = [e for e in entries if e[0] != "@reboot"]
    assert len(jobs) == len(checked.jobs_of("cron"))
    for (schedule, _, argv), job in zip(jobs, checked.jobs_of("cron"), strict=True):
        assert schedule == job.schedule
        lock, log = f"{layout.LOCKS_DIR}/cron-{job.name}.lock", f"{layout.LOGS_DIR}/{job.name}.log"
        assert argv == ["umask", "027;", "flock", "-n", lock, layout.RUN, "factoryctl", *job.argv, f">>{log}", "2>&1"]
    boot = [argv for schedule, _, argv in entries if schedule == "@reboot"]
    assert boot == [["umask", "027;", layout.TMUX, f">>{layout.LOGS_DIR}/tmux.log", "2>&1"]]


def test_cron_file_brings_pm2_back_at_boot_without_systemd(tmp_path: Path) -> None:
    data, environ = everything(tmp_path)
    checked = hostdata.check(data, environ)
    with_systemd = templating.render("cron.j2", templating.context(checked, systemd=True))
    without = templating.render("cron.j2", templating.context(checked, systemd=False))
    assert "pm2 resurrect" not in with_systemd
    assert [argv[:5] for s, _, argv in cron_entries(without) if s == "@reboot"][1] == [
        "umask",
        "027;",
        "env",
        f"PM2_HOME={layout.PM2_HOME}",
        "pm2",
    ]


def test_every_cron_schedule_in_jobs_is_valid() -> None:
    line = "\n".join(f"{job.schedule} factory true" for job in JOBS if job.kind == "cron")
    assert len(list(cron_entries(line))) == 4


# -- the secrets file ------------------------------------------------------------------


def sourced(path: Path) -> dict[str, str]:
    """The environment `set -a; . FILE` gives a clean sh, minus what sh sets by itself."""

    def env_of(file: Path) -> dict[str, str]:
        done = subprocess.run(
            ["env", "-i", "/bin/sh", "-c", 'set -a; . "$1"; exec env -0', "sh", str(file)],
            capture_output=True,
            timeout=10,
            check=True,
        )
        pairs = (item.decode().split("=", 1) for item in done.stdout.split(b"\0") if item)
        return dict(pairs)  # type: ignore[arg-type]

    baseline = env_of(Path("/dev/null"))
    return {k: v for k, v in env_of(path).items() if baseline.get(k) != v}


def test_secrets_file_sources_back_exactly_and_holds_nothing_else(
    case: tuple[hostdata.Checked, dict[str, str]], tmp_path: Path
) -> None:
    checked, text = case
    path = write(tmp_path, "secrets.env", text["secrets.env.j2"])
    assert sourced(path) == checked.secrets
    keys = [line.split("=", 1)[0] for line in text["secrets.env.j2"].splitlines() if line and line[0] != "#"]
    assert keys == list(checked.secrets)
    assert set(keys) <= set(SECRET_ENV)


def test_secrets_appear_in_no_other_file(tmp_path: Path) -> None:
    data, environ = everything(tmp_path)
    checked = hostdata.check(data, environ)
    for name, text in templating.render_all(checked).items():
        if name != "secrets.env.j2":
            assert not any(v in text for v in checked.secrets.values()), name


def test_a_secret_with_a_line_break_is_refused() -> None:
    with pytest.raises(hostdata.HostDataError, match="TELEGRAM_BOT_TOKEN contains a line break"):
        hostdata.check(host_data(), {"ANTHROPIC_API_KEY": "k" * 20, "TELEGRAM_BOT_TOKEN": "a\nEVIL=1"})


# -- the scripts -----------------------------------------------------------------------


@pytest.mark.parametrize("template", ["factory-run.sh.j2", "factory-tmux.sh.j2"])
def test_scripts_are_valid_sh(case: tuple[hostdata.Checked, dict[str, str]], template: str, tmp_path: Path) -> None:
    path = write(tmp_path, "script.sh", case[1][template])
    subprocess.run(["sh", "-n", str(path)], check=True, timeout=10)


def test_tmux_layout_starts_one_loop_per_session(case: tuple[hostdata.Checked, dict[str, str]]) -> None:
    checked, text = case
    starts = [shlex.split(line)[1:] for line in text["factory-tmux.sh.j2"].splitlines() if line.startswith("start ")]
    if not any(job.name == "loop" for job in checked.jobs):
        assert starts == []
        return
    assert starts == [[f"factory-{s}", "factoryctl", "loop", s] for s in checked.settings.session_names]


def local_context(checked: hostdata.Checked, tmp_path: Path, run: str) -> dict[str, Any]:
    """The templates' context with this machine's user and tmp paths, to run the scripts here."""
    import getpass

    ctx = templating.context(checked)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    secrets = write(tmp_path, "secrets.env", templating.render("secrets.env.j2", ctx))
    return {**ctx, "user": getpass.getuser(), "factory_home": str(home), "secrets_file": str(secrets), "run": run}


def test_factory_run_gives_the_job_its_environment_and_secrets(tmp_path: Path) -> None:
    data, environ = everything(tmp_path)
    checked = hostdata.check(data, environ)
    ctx = local_context(checked, tmp_path, run="unused")
    script = write(tmp_path, "factory-run", templating.render("factory-run.sh.j2", ctx))
    done = subprocess.run(
        ["env", "-i", "/bin/sh", str(script), "env", "-0"], capture_output=True, timeout=10, check=True
    )
    env = dict(item.decode().split("=", 1) for item in done.stdout.split(b"\0") if item)
    assert env["FACTORY_HOME"] == ctx["factory_home"]
    assert env["PATH"] == layout.PATH
    assert env["PM2_HOME"] == layout.PM2_HOME
    assert env["PYTHONUNBUFFERED"] == "1"
    for name, value in checked.secrets.items():
        assert env[name] == value


def test_factory_run_refuses_another_user(tmp_path: Path) -> None:
    checked = hostdata.check({**DEFAULTS, **DEMO}, {})
    script = write(tmp_path, "factory-run", templating.render("factory-run.sh.j2", templating.context(checked)))
    done = subprocess.run(["/bin/sh", str(script), "true"], capture_output=True, text=True, timeout=10)
    if os.environ.get("USER") != layout.USER:
        assert done.returncode == 1
        assert "run me as factory" in done.stderr


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_tmux_layout_starts_missing_sessions_stops_extra_ones_and_restarts(tmp_path: Path) -> None:
    """The real script on a private tmux server; the loop is a sleeping stand-in."""
    fake_run = write(tmp_path, "fake-run", "#!/bin/sh\ntrap 'exit 0' TERM\nsleep 300 & wait\n")
    fake_run.chmod(0o755)
    env = {**os.environ, "TMUX_TMPDIR": str(tmp_path), "STOP_WAIT_S": "5"}
    env.pop("TMUX", None)

    def layout_with(sessions: int) -> Path:
        checked = hostdata.check({**DEFAULTS, **DEMO, "factory_sessions": sessions}, {})
        script = write(
            tmp_path,
            f"tmux-{sessions}.sh",
            templating.render("factory-tmux.sh.j2", local_context(checked, tmp_path, str(fake_run))),
        )
        return script

    def run(script: Path, *args: str) -> str:
        return subprocess.run(
            ["/bin/sh", str(script), *args], env=env, capture_output=True, text=True, timeout=60, check=True
        ).stdout

    socket = templating.context(hostdata.check({**DEFAULTS, **DEMO}, {}))["tmux_socket"]

    def sessions(*server: str) -> list[str]:
        done = subprocess.run(
            ["tmux", *(server or ("-L", socket)), "list-sessions", "-F", "#{session_name}"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        return sorted(done.stdout.split())

    try:
        three, one = layout_with(3), layout_with(1)
        assert run(three).count("started") == 3
        assert sessions() == ["factory-s1", "factory-s2", "factory-s3"]
        assert run(three) == ""  # nothing missing, nothing extra
        assert sessions("-L", "default") == []  # the factory's own server: a person's default one is untouched
        subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "mine", "sleep 300"], env=env, check=True)
        out = run(one)
        assert "stopped factory-s2" in out and "stopped factory-s3" in out
        assert sessions() == ["factory-s1", "mine"]  # other sessions are left alone
        started = time.monotonic()
        out = run(one, "--restart")
        assert "stopped factory-s1" in out and "started factory-s1" in out
        assert time.monotonic() - started < 5  # the stand-in ended on SIGTERM: no kill after the wait
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], env=env, capture_output=True)


# -- the other files -------------------------------------------------------------------


def test_pm2_unit_resurrects_as_the_factory_user(case: tuple[hostdata.Checked, dict[str, str]]) -> None:
    unit = case[1]["pm2-factory.service.j2"]
    lines = set(unit.splitlines())
    assert {
        "User=factory",
        f"Environment=PM2_HOME={layout.PM2_HOME}",
        "ExecStart=/usr/local/bin/pm2 resurrect",
    } <= lines
    assert "WantedBy=multi-user.target" in lines


def test_logrotate_covers_the_job_logs_as_the_factory_user(case: tuple[hostdata.Checked, dict[str, str]]) -> None:
    text = case[1]["logrotate.j2"]
    assert f"{layout.LOGS_DIR}/*.log {layout.PM2_HOME}/pm2.log {{" in text
    assert "    su factory factory" in text and "    copytruncate" in text  # a copy keeps the log's 0640


def test_what_the_jobs_write_is_not_world_readable(tmp_path: Path) -> None:
    """Through factory-run (PM2 apps, cron, tmux) a job's files are 0640 even under a lax umask."""
    checked = hostdata.check({**DEFAULTS, **DEMO}, {})
    ctx = local_context(checked, tmp_path, run="unused")
    script = write(tmp_path, "factory-run", templating.render("factory-run.sh.j2", ctx))
    log = tmp_path / "job.log"
    subprocess.run(["sh", "-c", f'umask 000 && exec /bin/sh {script} sh -c "echo hi >> {log}"'], check=True, timeout=10)
    assert log.stat().st_mode & 0o777 == 0o640


def test_pm2_creates_the_apps_logs_under_the_factory_umask(case: tuple[hostdata.Checked, dict[str, str]]) -> None:
    assert "UMask=0027" in case[1]["pm2-factory.service.j2"].splitlines()


# -- facts and operations: facts in, commands out --------------------------------------


def test_npm_ls_json_sees_scoped_packages() -> None:
    out = json.dumps(
        {"dependencies": {"pm2": {"version": "7.0.4"}, "@anthropic-ai/claude-code": {"version": "2.1.330"}}}
    )
    assert facts.parse_npm_ls(out.splitlines()) == {"pm2": "7.0.4", "@anthropic-ai/claude-code": "2.1.330"}
    assert facts.parse_npm_ls([]) == {}
    assert facts.parse_npm_ls(["npm error something"]) == {}


def test_npm_installs_only_what_differs() -> None:
    wanted = {"pm2": "7.0.4", "@anthropic-ai/claude-code": "2.1.330"}
    assert operations.npm_commands(wanted, wanted) == []
    (command,) = operations.npm_commands({"pm2": "7.0.4", "@anthropic-ai/claude-code": "2.1.1"}, wanted)
    assert shlex.split(command)[-1] == "@anthropic-ai/claude-code@2.1.330"
    assert "pm2@" not in command


def test_pm2_jlist_and_dump_parsing() -> None:
    lines = ["[PM2] noise", json.dumps([{"name": "factory-scheduler", "pm2_env": {"status": "online"}}])]
    assert facts.parse_pm2_jlist(lines) == {"factory-scheduler": "online"}
    assert facts.parse_pm2_dump([json.dumps([{"name": "b"}, {"name": "a"}])]) == ["a", "b"]
    assert facts.parse_pm2_dump([]) is None


PM2_OWNED = ["factory-scheduler", "factory-bot", "factory-serve"]


def pm2_verbs(running: dict[str, str] | None, saved: list[str] | None, apps: list[str], restart: bool) -> list[str]:
    commands = operations.pm2_commands(running, saved, "/eco.js", apps, PM2_OWNED, restart)
    return [shlex.split(c)[shlex.split(c).index("pm2") + 1] for c in commands]


@pytest.mark.parametrize(
    ("running", "saved", "apps", "restart", "verbs"),
    [
        (None, None, [], False, []),  # nothing deployed, no daemon: nothing to do
        (None, None, ["factory-scheduler"], False, ["startOrReload", "save"]),  # first deploy
        ({"factory-scheduler": "online"}, ["factory-scheduler"], ["factory-scheduler"], False, []),  # no change
        (
            {"factory-scheduler": "online"},
            ["factory-scheduler"],
            ["factory-scheduler"],
            True,
            ["startOrReload", "save"],
        ),
        (
            {"factory-scheduler": "errored"},
            ["factory-scheduler"],
            ["factory-scheduler"],
            False,
            ["startOrReload", "save"],
        ),
        ({"factory-scheduler": "online"}, None, ["factory-scheduler"], False, ["save"]),  # never saved
        ({"factory-bot": "online", "mine": "online"}, ["factory-bot", "mine"], [], False, ["delete", "save"]),
        ({"mine": "online"}, ["mine"], [], True, []),  # apps that are not the factory's are left alone
    ],
)
def test_pm2_starts_reloads_and_saves_only_when_needed(
    running: dict[str, str] | None, saved: list[str] | None, apps: list[str], restart: bool, verbs: list[str]
) -> None:
    assert pm2_verbs(running, saved, apps, restart) == verbs


def test_pm2_runs_as_factory_with_a_clean_environment() -> None:
    (command, _) = operations.pm2_commands(None, None, "/eco.js", ["factory-scheduler"], PM2_OWNED, False)
    argv = shlex.split(command)
    assert argv[:4] == ["runuser", "-u", "factory", "--"] and argv[8:10] == ["env", "-i"]
    assert f"PM2_HOME={layout.PM2_HOME}" in argv
    # The umask reaches what it starts (the PM2 daemon, which creates the apps' log files).
    done = subprocess.run([*argv[4:8], "sh", "-c", "umask"], capture_output=True, text=True, check=True, timeout=10)
    assert done.stdout.strip() == "0027"


@pytest.mark.parametrize(
    ("current", "sessions", "restart", "expected"),
    [
        ([], ["factory-s1"], False, ["/t"]),
        (["factory-s1", "other"], ["factory-s1"], False, []),
        (["factory-s1"], ["factory-s1"], True, ["/t", "--restart"]),
        (["factory-s1", "factory-s2"], ["factory-s1"], False, ["/t"]),
        ([], [], True, []),
    ],
)
def test_tmux_layout_runs_only_when_sessions_differ_or_must_restart(
    current: list[str], sessions: list[str], restart: bool, expected: list[str]
) -> None:
    commands = operations.tmux_commands(current, "/t", sessions, restart)
    assert [shlex.split(c)[4:] for c in commands] == ([expected] if expected else [])


def test_wheel_installs_only_a_new_wheel_and_marks_it_last() -> None:
    assert operations.wheel_commands("abc", "/w.whl", "abc", "/v", "/v/m") == []
    commands = operations.wheel_commands(None, "/w.whl", "abc", "/v", "/v/m")
    assert commands[-1] == "echo abc > /v/m"
    assert "--force-reinstall" in commands[1]


def test_a_host_on_postgresql_gets_the_postgres_extra_and_adding_it_installs_again() -> None:
    commands = operations.wheel_commands("abc", "/w.whl", "abc", "/v", "/v/m", ("postgres",))
    assert shlex.split(commands[0])[-1] == "/w.whl[postgres]" and commands[-1] == "echo abc+postgres > /v/m"
    assert operations.wheel_commands("abc+postgres", "/w.whl", "abc", "/v", "/v/m", ("postgres",)) == []


def test_secret_file_is_written_from_stdin_never_from_the_command_line() -> None:
    (command,) = operations.secret_file_commands(None, False, "/f/secrets.env", "factory:factory")
    assert command.startswith("umask 077 && cat > /f/secrets.env.tmp")
    info = {"user": "factory", "group": "factory", "mode": 600}
    assert operations.secret_file_commands(info, True, "/f/secrets.env", "factory:factory") == []
    # A wrong mode or owner alone: written again, by the one command that reads the secret on stdin.
    for wrong in ({**info, "mode": 644}, {**info, "user": "root"}):
        assert operations.secret_file_commands(wrong, True, "/f/secrets.env", "factory:factory") == [command]


def test_clone_quotes_the_url_and_never_pulls() -> None:
    (clone,) = operations.clone_commands(None, "https://h/a b.git", "main", "/r", None, [])
    assert shlex.split(clone)[4:] == ["git", "clone", "--quiet", "--branch", "main", "--", "https://h/a b.git", "/r"]
    assert operations.clone_commands("https://h/a.git", "https://h/a.git", "main", "/r", None, []) == []
    (seturl,) = operations.clone_commands("https://old", "https://h/a.git", "main", "/r", None, [])
    assert "set-url" in seturl


def test_host_data_can_compress_the_cron_schedules() -> None:
    """A compressed day (bench/factory_day.py) runs the review every 2 minutes: the crontab says so."""
    schedules = {"review": "*/2 * * * *", "standup": "1-59/3  * * * *", "doctor": "*/4 * * * *"}
    checked = hostdata.check({**DEFAULTS, **DEMO, "factory_schedules": schedules}, {})
    entries = {argv[7]: schedule for schedule, _, argv in cron_entries(templating.render_all(checked)["cron.j2"])
               if schedule != "@reboot"}  # fmt: skip
    assert entries == {"review": "*/2 * * * *", "standup": "1-59/3 * * * *", "doctor": "*/4 * * * *"}


@pytest.mark.parametrize(
    ("schedules", "says"),
    [
        ({"review": "every two minutes"}, "factory_schedules.review"),
        ({"review": "*/2 * * *"}, "five cron time fields"),
        ({"review": "61 * * * *"}, "digits in range"),
        ({"review": "*/0 * * * *"}, "factory_schedules.review"),
        ({"review": "*/99 * * * *"}, "factory_schedules.review"),
        ({"review": "30-10 * * * *"}, "factory_schedules.review"),
        ([], "must be a mapping"),
        ("", "must be a mapping"),
        ({"review": "* * * * * touch /tmp/x"}, "five cron time fields"),
        ({"review": "*/2 * * * *;id"}, "five cron time fields"),
        ({"loop": "* * * * *"}, "'loop' is not a cron job"),
        ({"review": ["*/2", "*", "*", "*", "*"]}, "factory_schedules.review"),
        (["review"], "must be a mapping"),
    ],
)
def test_a_bad_schedule_is_refused_in_one_line(schedules: Any, says: str) -> None:
    with pytest.raises(hostdata.HostDataError, match=re.escape(says)):
        hostdata.check({**DEFAULTS, **DEMO, "factory_schedules": schedules}, {})


def test_the_scripted_agents_scenarios_come_from_a_folder_that_has_them(tmp_path: Path) -> None:
    assert hostdata.check({**DEFAULTS, **DEMO}, {}).scenarios == hostdata.DEMO_SCENARIOS
    with pytest.raises(hostdata.HostDataError, match=r"has no agent\.json or reviewer\.json"):
        hostdata.check({**DEFAULTS, **DEMO, "factory_scenarios": str(tmp_path)}, {})
    (tmp_path / "agent.json").write_text('{"calls": [{"result": "ok"}]}')
    (tmp_path / "reviewer.json").write_text('{"calls": [{"resul": "typo"}]}')
    with pytest.raises(hostdata.HostDataError, match=r"reviewer\.json: calls\[0\]: unknown key"):
        hostdata.check({**DEFAULTS, **DEMO, "factory_scenarios": str(tmp_path)}, {})
    (tmp_path / "reviewer.json").write_text('{"calls": [{"result": "ok"}]}')
    assert hostdata.check({**DEFAULTS, **DEMO, "factory_scenarios": str(tmp_path)}, {}).scenarios == tmp_path
    with pytest.raises(hostdata.HostDataError, match="is not a folder path"):
        hostdata.check({**DEFAULTS, **DEMO, "factory_scenarios": 42}, {})
