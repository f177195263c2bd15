"""`pyinfra inventory.py deploy.py` on a fresh sandbox host, checked with testinfra over ssh.

One deployment for the module, in the order a user meets it: a refused deploy (missing
secret) and `--dry` change nothing; the first deploy; a second one that changes nothing.
The tests then read the host, and the last one powers it off and boots it again.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sandbox_helpers import REPO, SandboxHost, sandbox_cli

sys.path.insert(0, str(REPO / "bench"))
from day_scenarios import probe  # the hostile agent's probe: the same one the compressed day runs

from factoryctl.core.configfile import settings_as_dict
from factoryctl.core.defaults import SECRET_ENV
from factoryctl.core.jobspecs import JOBS
from factoryctl.core.paths import tmux_socket
from inventory import DEFAULTS, DEMO
from provision import hostdata, layout, templating
from provision.facts import pm2

pytestmark = pytest.mark.host

PYINFRA = str(Path(sys.executable).parent / "pyinfra")
HTTP_TOKEN = "host-test-http-token-0123456789"  # a stand-in secret: it must land in secrets.env only
HOSTILE = probe(layout.DEMO_DIR)  # the one folder the demo's sandbox may write
PROBE = "probe-logtail"  # a PM2 app of our own, to prove the boot path while no PM2 job is implemented


@dataclass(frozen=True)
class Run:
    argv: list[str]
    code: int
    out: str
    seconds: float

    def totals(self) -> dict[str, int]:
        """pyinfra's "Grand total" row: hosts, success (= changed), error, no change."""
        match = re.search(r"^\s*Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", self.out, re.M)
        assert match, self.out[-3000:]
        values = [0 if v == "-" else int(v) for v in match.groups()]
        return dict(zip(("hosts", "changed", "errors", "unchanged"), values, strict=True))


def deploy(host: SandboxHost, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> Run:
    """Run pyinfra as a user would, against the sandbox, with only the given secrets."""
    clean = {k: v for k, v in os.environ.items() if k not in SECRET_ENV and not k.startswith("FACTORY_")}
    clean |= {"FACTORY_SANDBOX_NAME": host.name, "FACTORY_HTTP_TOKEN": HTTP_TOKEN, **(env or {})}
    argv = [PYINFRA, "inventory.py", "deploy.py", *args]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, env=clean, capture_output=True, text=True, timeout=timeout)
    return Run(argv, done.returncode, done.stdout + done.stderr, time.monotonic() - started)


def as_factory(host: SandboxHost, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return host.ssh(f"runuser -u factory -- sh -c {shlex.quote(command)}", timeout=timeout)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1)


def deployed_traces(host: SandboxHost) -> list[str]:
    """What a deploy would have created, of what exists: empty on an untouched host."""
    checks = {
        "the factory user": "id -u factory",
        "/opt/factory": "test -e /opt/factory",
        "/etc/cron.d/factory": "test -e /etc/cron.d/factory",
        "tmux installed": "dpkg-query -W -f='${Status}' tmux 2>/dev/null | grep -q 'install ok installed'",
    }
    return [what for what, command in checks.items() if host.ssh(command).returncode == 0]


@dataclass(frozen=True)
class Deployment:
    refused: Run
    refused_left: list[str]
    dry: Run
    dry_left: list[str]
    first: Run
    second: Run


@pytest.fixture(scope="module")
def deployment(sandbox_host: SandboxHost) -> Iterator[Deployment]:
    host = sandbox_host
    real_agent = json.dumps(DEFAULTS["factory_agent_command"])
    refused = deploy(host, "-y", "--data", f"factory_agent_command={real_agent}")
    refused_left = deployed_traces(host)
    dry = deploy(host, "--dry")
    dry_left = deployed_traces(host)
    first = deploy(host, "-y")
    assert first.code == 0, first.out[-5000:]
    second = deploy(host, "-y")
    print(f"\nfirst deploy {first.seconds:.1f}s, no-change redeploy {second.seconds:.1f}s")
    yield Deployment(refused, refused_left, dry, dry_left, first, second)


@pytest.fixture(scope="module")
def remote(deployment: Deployment, sandbox_host: SandboxHost) -> Any:
    return sandbox_host.testinfra()


def demo_checked() -> hostdata.Checked:
    return hostdata.check({**DEFAULTS, **DEMO}, {"FACTORY_HTTP_TOKEN": HTTP_TOKEN})


# -- before anything changes -----------------------------------------------------------


def test_a_missing_secret_stops_the_deploy_before_anything_changes(deployment: Deployment) -> None:
    assert deployment.refused.code != 0
    assert "missing secret: ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN" in deployment.refused.out
    assert "Starting operation" not in deployment.refused.out
    assert deployment.refused_left == []


def test_dry_run_prints_the_plan_and_changes_nothing(deployment: Deployment) -> None:
    assert deployment.dry.code == 0, deployment.dry.out[-3000:]
    assert "Detected changes" in deployment.dry.out
    for step in ("Ensure the system user factory", "Ensure the clone of", "Ensure the cron jobs"):
        assert step in deployment.dry.out
    assert "Starting operation" not in deployment.dry.out
    assert deployment.dry_left == []  # read again after the dry run: no user, no files, no packages


# -- the first and second deploy -------------------------------------------------------


def test_first_deploy_succeeds(deployment: Deployment) -> None:
    totals = deployment.first.totals()
    assert totals["errors"] == 0 and totals["changed"] > 20


def test_second_deploy_changes_nothing(deployment: Deployment) -> None:
    assert deployment.second.code == 0, deployment.second.out[-3000:]
    totals = deployment.second.totals()
    assert totals["changed"] == 0 and totals["errors"] == 0, deployment.second.out[-5000:]
    assert "Success" not in deployment.second.out.split("--> Results:")[0]
    assert deployment.second.seconds < 30  # target <= 10 s, see bench/deploy_bench.py


def test_secrets_never_appear_in_the_deploy_output(deployment: Deployment) -> None:
    for run in (deployment.dry, deployment.first, deployment.second):
        assert HTTP_TOKEN not in run.out


# -- what the host holds ---------------------------------------------------------------


@pytest.mark.parametrize("package", ["git", "tmux", "nodejs", "npm", "python3-venv", "cron", "logrotate", "bubblewrap"])
def test_system_packages(remote: Any, package: str) -> None:
    assert remote.package(package).is_installed


def test_node_tools_at_the_pinned_versions(remote: Any) -> None:
    installed = json.loads(remote.check_output("npm ls -g --depth=0 --json"))["dependencies"]
    assert installed["pm2"]["version"] == DEFAULTS["factory_pm2_version"]
    assert installed["@anthropic-ai/claude-code"]["version"] == DEFAULTS["factory_claude_code_version"]
    assert DEFAULTS["factory_claude_code_version"] in remote.check_output("claude --version")


def test_the_factory_user(remote: Any) -> None:
    user = remote.user("factory")
    assert user.exists and user.uid < 1000  # a system user
    assert user.home == layout.HOME and user.shell == "/bin/bash"
    assert remote.file(layout.HOME).mode == 0o750


@pytest.mark.parametrize(
    ("path", "owner", "mode"),
    [
        (layout.SECRETS_FILE, "factory", 0o600),
        (layout.CONFIG_FILE, "root", 0o644),  # read-only to everything running as the factory user
        (layout.GATE_KEY, "factory", 0o600),
        (f"{layout.SAMPLE_ORIGIN}/hooks/update", "factory", 0o755),
        (layout.ECOSYSTEM, "factory", 0o644),
        (layout.RUN, "root", 0o755),
        (layout.TMUX, "root", 0o755),
        (layout.CRON_FILE, "root", 0o644),
        (layout.LOGROTATE_FILE, "root", 0o644),
        (layout.PM2_UNIT_FILE, "root", 0o644),
        (layout.FACTORY_HOME, "factory", 0o755),
        (layout.LOGS_DIR, "factory", 0o750),  # the job logs: the factory user's alone
        (layout.VENV, "root", 0o755),
    ],
)
def test_files_owners_and_modes(remote: Any, path: str, owner: str, mode: int) -> None:
    found = remote.file(path)
    assert found.exists, path
    assert (found.user, found.mode) == (owner, mode), path


def test_no_log_of_the_factory_is_world_readable(remote: Any) -> None:
    dirs = f"{layout.LOGS_DIR} {layout.PM2_HOME} {layout.STATE_DIR}"
    found = remote.run(f"find {dirs} -type f \\( -name '*.log*' -o -name '*.jsonl' \\) -perm /o+r").stdout
    assert found.strip() == ""


def test_rendered_files_are_what_the_templates_give(remote: Any) -> None:
    text = templating.render_all(demo_checked(), systemd=True)
    for template, dest in templating.FILES.items():
        assert remote.file(dest).content_string == text[template], dest


def test_secrets_file_feeds_the_jobs_and_nothing_else(remote: Any, sandbox_host: SandboxHost) -> None:
    assert remote.file(layout.SECRETS_FILE).contains(HTTP_TOKEN)
    shown = as_factory(sandbox_host, f"{layout.RUN} sh -c 'echo $FACTORY_HTTP_TOKEN'")
    assert shown.stdout.strip() == HTTP_TOKEN
    leaked = sandbox_host.ssh(f"grep -rlF {HTTP_TOKEN} /etc /opt/factory {layout.HOME} 2>/dev/null")
    assert leaked.stdout.split() == [layout.SECRETS_FILE]


def test_factoryctl_runs_as_factory_with_the_deployed_configuration(sandbox_host: SandboxHost) -> None:
    version = as_factory(sandbox_host, "factoryctl --version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("factoryctl ")
    shown = as_factory(sandbox_host, "factoryctl config show --json")
    assert json.loads(shown.stdout) == settings_as_dict(demo_checked().settings)


def test_the_target_repository_is_cloned_for_factory(remote: Any, sandbox_host: SandboxHost) -> None:
    repo = str(layout.PATHS.repo_dir("repo"))
    assert remote.file(f"{repo}/.git").user == "factory"
    origin = as_factory(sandbox_host, f"git -C {repo} remote get-url origin").stdout.strip()
    assert origin == layout.SAMPLE_ORIGIN


def test_cron_entries(remote: Any) -> None:
    assert remote.service("cron").is_running
    cron = remote.file(layout.CRON_FILE).content_string
    assert f"@reboot factory umask {layout.UMASK}; {layout.TMUX} " in cron
    for job in JOBS:
        if job.kind == "cron":
            line = f"{job.schedule} factory umask {layout.UMASK}; flock -n {layout.LOCKS_DIR}/cron-{job.name}.lock"
            assert (line in cron) == (job in demo_checked().jobs), job.name  # bot-improve needs its token


def test_log_rotation_is_valid(remote: Any) -> None:
    assert remote.run(f"logrotate -d {layout.LOGROTATE_FILE}").rc == 0


def pm2_state(host: SandboxHost) -> tuple[dict[str, str], list[str]]:
    """(app -> status, saved app names) as the factory user's PM2 sees them."""
    apps = json.loads(host.ssh(pm2("jlist")).stdout.splitlines()[-1])
    dump = host.ssh(f"cat {layout.PM2_HOME}/dump.pm2 2>/dev/null || echo []").stdout
    return {a["name"]: a["pm2_env"]["status"] for a in apps}, sorted(a["name"] for a in json.loads(dump))


def test_pm2_runs_the_implemented_jobs_online_and_saved(remote: Any, sandbox_host: SandboxHost) -> None:
    unit = remote.service(layout.PM2_UNIT)
    assert unit.is_enabled and unit.is_running
    running, saved = pm2_state(sandbox_host)
    expected = templating.pm2_app_names(demo_checked().jobs)  # empty until scheduler, bot or serve land
    assert {name: running[name] for name in expected} == dict.fromkeys(expected, "online")
    assert set(expected) <= set(saved)
    assert not any(name.startswith("factory-") and name not in expected for name in running)


def tmux_sessions(host: SandboxHost) -> list[str]:
    """The sessions on the factory's own tmux server (its socket is named after FACTORY_HOME)."""
    socket = tmux_socket(Path(layout.FACTORY_HOME))
    listed = as_factory(host, f"tmux -L {socket} list-sessions -F '#{{session_name}}' 2>/dev/null || true")
    return sorted(listed.stdout.split())


def test_tmux_sessions_run_the_agents(remote: Any, sandbox_host: SandboxHost) -> None:
    assert remote.file(layout.TMUX).exists
    expected = [f"factory-s{i}" for i in range(1, DEMO["factory_sessions"] + 1)]
    assert tmux_sessions(sandbox_host) == expected


def test_the_agents_work_through_the_scripted_demo(sandbox_host: SandboxHost) -> None:
    """Each agent's cycle pushed its change: a failed cycle (agent missing, sandbox broken) is no proof."""

    def cycles() -> list[dict[str, Any]]:
        out = as_factory(sandbox_host, "factoryctl log tail --json -n 50 --type ralph_cycle").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def pushed() -> set[str]:
        return {c["session"] for c in cycles() if c["data"]["verdict"] == "pushed"}

    wait_for(lambda: pushed() >= {"s1", "s2"}, 90, "a pushed work cycle in each session")
    failed = [(c["session"], c["data"]["reason"]) for c in cycles() if c["data"]["verdict"] == "failed"]
    assert failed == [], failed


def test_the_factory_user_runs_the_sandbox(sandbox_host: SandboxHost) -> None:
    """Not root: bubblewrap with its own PID namespace works for the factory user on the host."""
    probe = "bwrap --ro-bind / / --dev /dev --proc /proc --unshare-pid --die-with-parent -- sh -c 'echo $$'"
    done = as_factory(sandbox_host, probe)
    assert done.returncode == 0 and done.stdout.strip() == "2", done.stderr  # PID 2: its own namespace
    assert as_factory(sandbox_host, "id -u").stdout.strip() != "0"
    status = as_factory(sandbox_host, "factoryctl status").stdout
    assert "sandbox: on (bubblewrap" in status, status


def test_a_hostile_agent_gets_nowhere_on_the_host(sandbox_host: SandboxHost) -> None:
    """The trust boundary with the deploy's real user, modes and secrets: one hostile cycle, as the loops run."""
    host = sandbox_host
    scenario = f"{layout.DEMO_DIR}/agent.json"
    hostile = {"calls": [{"actions": [{"run": ["python3", "-c", HOSTILE]}], "result": "hostile"}]}
    guarded = f"sha256sum {layout.CONFIG_FILE} {layout.SECRETS_FILE} {layout.STATE_DIR}/tasks.json 2>/dev/null"
    main = f"git -C {layout.SAMPLE_ORIGIN} rev-parse refs/heads/main"
    assert as_factory(host, "factoryctl pause --reason 'host test'").returncode == 0
    try:
        wait_for(lambda: as_factory(host, "factoryctl status --json").stdout.count('"state": "cycle"') == 0, 120,
                 "running cycles to end")  # fmt: skip
        before = (host.ssh(guarded).stdout, host.ssh(main).stdout)
        assert (
            host.ssh(
                f"cp {scenario} {scenario}.orig && cat > {scenario} <<'EOF'\n{json.dumps(hostile)}\nEOF"
            ).returncode
            == 0
        )
        host.ssh(f"rm -f {layout.DEMO_DIR}/agent.json.state {layout.DEMO_DIR}/leak-*.txt")
        cycle = as_factory(host, f"{layout.RUN} factoryctl cycle s1 --json", timeout=300)
        assert cycle.returncode in (0, 1), cycle.stderr
        leak = host.ssh(f"cat {layout.DEMO_DIR}/leak-*.txt").stdout
        assert leak, f"the hostile agent did not run: {cycle.stdout[-2000:]} {cycle.stderr[-2000:]}"
        # What it "wrote" went to its own empty tmpfs: the real files are compared below.
        assert HTTP_TOKEN not in leak and "push exit 0" not in leak and "refused state/tasks.json" in leak
        assert (host.ssh(guarded).stdout, host.ssh(main).stdout) == before
        assert host.ssh("pgrep -f factory-day-daemon").returncode == 1  # nothing outlived the call
    finally:
        host.ssh(
            f"test -f {scenario}.orig && mv -f {scenario}.orig {scenario}; rm -f {layout.DEMO_DIR}/agent.json.state"
        )
        as_factory(host, "factoryctl resume")


def test_nothing_listens_on_all_interfaces_at_the_http_port(remote: Any) -> None:
    port = demo_checked().settings.http.bind.rsplit(":", 1)[1]
    listening = remote.check_output("ss -ltnH")
    assert not re.search(rf"(0\.0\.0\.0|\*|\[::\]):{port}\b", listening), listening


def http_code(host: SandboxHost, *curl: str) -> str:
    done = host.ssh("curl -s -o /dev/null -w '%{http_code}' " + " ".join(shlex.quote(a) for a in curl))
    return done.stdout.strip()


def test_serve_runs_under_pm2_on_loopback_only_and_wants_the_token(remote: Any, sandbox_host: SandboxHost) -> None:
    bind = demo_checked().settings.http.bind
    assert bind == "127.0.0.1:8787"
    wait_for(lambda: http_code(sandbox_host, f"http://{bind}/healthz") == "200", 60, "factory-serve on /healthz")
    assert pm2_state(sandbox_host)[0].get("factory-serve") == "online"
    listening = [line.split()[3] for line in remote.check_output("ss -ltnH").splitlines() if ":8787" in line]
    assert listening == ["127.0.0.1:8787"], listening
    assert http_code(sandbox_host, "-X", "POST", f"http://{bind}/trigger/review") == "401"
    assert http_code(sandbox_host, f"http://{bind}/api/status") == "401"
    wrong, right = "Authorization: Bearer wrong-token-0123456789", f"Authorization: Bearer {HTTP_TOKEN}"
    assert http_code(sandbox_host, "-H", wrong, f"http://{bind}/api/tasks") == "401"
    assert http_code(sandbox_host, "-H", right, f"http://{bind}/api/status") == "200"
    # The token is in the 0600 secrets file only, never on a command line.
    assert HTTP_TOKEN not in sandbox_host.ssh("ps -eo args").stdout


# -- reboot (last: it powers the host off) ---------------------------------------------


def test_after_a_reboot_pm2_apps_and_tmux_sessions_come_back(deployment: Deployment, sandbox_host: SandboxHost) -> None:
    # No PM2 job may be implemented yet: a probe app of our own proves the boot path (unit + dump).
    start = pm2("start", layout.RUN, "--name", PROBE, "--interpreter", "none", "--", "factoryctl", "log", "tail", "-f")
    assert sandbox_host.ssh(f"{start} && {pm2('save', '--force')}").returncode == 0
    expected_apps = [*templating.pm2_app_names(demo_checked().jobs), PROBE]
    expected_sessions = tmux_sessions(sandbox_host)
    sandbox_cli("reboot", "--name", sandbox_host.name, timeout=300)

    def apps_online() -> bool:
        done = sandbox_host.ssh(pm2("jlist"))
        if done.returncode != 0 or not done.stdout.strip():
            return False
        apps = {a["name"]: a["pm2_env"]["status"] for a in json.loads(done.stdout.splitlines()[-1])}
        return all(apps.get(name) == "online" for name in expected_apps)

    wait_for(apps_online, 60, f"PM2 apps {expected_apps} online after the reboot")
    wait_for(lambda: tmux_sessions(sandbox_host) == expected_sessions, 60, f"tmux sessions {expected_sessions}")
    assert sandbox_host.ssh(pm2("delete", PROBE) + " && " + pm2("save", "--force")).returncode == 0
