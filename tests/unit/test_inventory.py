"""FACTORY_HOSTS parsing and the checks of host data and secrets that stop a deploy before it starts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api.exceptions import InventoryError

import inventory
from factoryctl.core.jobspecs import JOBS
from inventory import DEFAULTS, DEMO, build
from provision import hostdata, layout
from provision.hosts import HostSpec, parse_host, parse_hosts

KEY = {"ANTHROPIC_API_KEY": "sk-ant-0123456789"}


def data(**overrides: Any) -> dict[str, Any]:
    return {**DEFAULTS, "factory_repo_url": "https://example.com/app.git", **overrides}


def problems(data: dict[str, Any], environ: dict[str, str]) -> str:
    with pytest.raises(hostdata.HostDataError) as caught:
        hostdata.check(data, environ, host="vps1")
    return str(caught.value)


# -- FACTORY_HOSTS ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "spec"),
    [
        ("203.0.113.7", HostSpec("203.0.113.7")),
        (" vps.example.com ", HostSpec("vps.example.com")),
        ("deploy@vps.example.com", HostSpec("vps.example.com", user="deploy")),
        ("root@10.0.0.1:2222", HostSpec("10.0.0.1", port=2222)),
        ("my-host", HostSpec("my-host")),
        ("[2001:db8::1]", HostSpec("2001:db8::1")),
        ("ops_1@[2001:db8::1]:22022", HostSpec("2001:db8::1", user="ops_1", port=22022)),
    ],
)
def test_good_host_entries(entry: str, spec: HostSpec) -> None:
    assert parse_host(entry) == spec


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ("", "empty entry"),
        ("   ", "empty entry"),
        ("user@", "bad host name"),
        ("@host", "bad user"),
        ("Bad User@host", "bad user"),
        ("host:", "empty port"),
        ("host:0", "bad port"),
        ("host:65536", "bad port"),
        ("host:22x", "bad port"),
        ("-host", "bad host name"),
        ("a..b", "bad host name"),
        ("ho$t", "bad host name"),
        ("host;reboot", "bad host name"),
        ("300.1.1.1", "bad host name"),
        ("[::1", "IPv6 address goes in brackets"),
        ("2001:db8::1", "bad port"),
    ],
)
def test_malformed_host_entries_say_what_is_wrong(entry: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_host(entry)


def test_hosts_list_names_every_bad_entry_and_repeats() -> None:
    assert [s.name for s in parse_hosts("a.example.com, b.example.com:2222")] == ["a.example.com", "b.example.com:2222"]
    with pytest.raises(ValueError) as caught:
        parse_hosts("a.example.com,,bad host,a.example.com")
    message = str(caught.value)
    assert "empty entry" in message and "'bad host'" in message and "listed twice" in message


def test_build_turns_entries_into_ssh_host_data(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("key")
    hosts = build({"FACTORY_HOSTS": "deploy@vps.example.com:2222,203.0.113.7", "FACTORY_SSH_KEY": str(key)})
    assert hosts == [
        (
            "vps.example.com:2222",
            {"ssh_hostname": "vps.example.com", "ssh_port": 2222, "ssh_user": "deploy", "ssh_key": str(key)},
        ),
        ("203.0.113.7", {"ssh_hostname": "203.0.113.7", "ssh_port": 22, "ssh_user": "root", "ssh_key": str(key)}),
    ]


def test_build_stops_on_a_malformed_entry_or_a_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"FACTORY_HOSTS: 'vps example' *: bad host name"):
        build({"FACTORY_HOSTS": "vps example"})
    with pytest.raises(InventoryError, match=r"FACTORY_SSH_KEY=.*no such file"):
        build({"FACTORY_HOSTS": "vps.example.com", "FACTORY_SSH_KEY": str(tmp_path / "missing")})


def test_without_hosts_the_target_is_the_sandbox_with_the_demo_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACTORY_SANDBOX_STATE", str(tmp_path))
    with pytest.raises(
        InventoryError, match=r"sandbox host 'demo1' is not up: run `python -m sandbox up --name demo1`"
    ):
        build({"FACTORY_SANDBOX_NAME": "demo1"})
    config = tmp_path / "demo1" / "ssh_config"
    config.parent.mkdir()
    config.write_text("Host demo1\n")
    ((name, host_data),) = build({"FACTORY_SANDBOX_NAME": "demo1"})
    assert name == "demo1"
    assert host_data["ssh_config_file"] == str(config)
    assert host_data["factory_repo_url"] == "sample"


GROUPS = """
import json, sys
import pyinfra
pyinfra.is_cli = sys.argv[1] == "cli"
import inventory
from pyinfra_cli.inventory import _is_inventory_group
print(json.dumps(sorted(k for k, v in vars(inventory).items() if _is_inventory_group(k, v))))
"""


def inventory_groups(as_cli: bool) -> list[str]:
    """The host groups pyinfra's own rule finds in the inventory module, imported plainly or by pyinfra."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, **KEY, "FACTORY_HOSTS": "root@203.0.113.7"}
    done = subprocess.run([sys.executable, "-c", GROUPS, "cli" if as_cli else "import"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return list(json.loads(done.stdout))


def test_importing_the_inventory_defines_no_hosts_only_pyinfra_loading_it_does() -> None:
    assert hasattr(inventory, "build")
    assert inventory_groups(as_cli=False) == []
    assert inventory_groups(as_cli=True) == ["factory"]


# -- host data and secrets -------------------------------------------------------------


def test_the_defaults_need_only_a_repository_and_the_agent_credential() -> None:
    checked = hostdata.check(data(), KEY)
    assert checked.secrets == KEY
    assert checked.settings.factory.sessions == 8
    assert not checked.scripted


def test_missing_agent_credential_stops_the_deploy_naming_both_variables() -> None:
    message = problems(data(), {})
    assert message.startswith("vps1: missing secret: ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN")


def test_a_blank_secret_counts_as_missing() -> None:
    assert "missing secret: ANTHROPIC_API_KEY" in problems(data(), {"ANTHROPIC_API_KEY": "  "})


def test_the_oauth_token_is_enough() -> None:
    assert hostdata.check(data(), {"CLAUDE_CODE_OAUTH_TOKEN": "oat-0123456789"}).secrets


def test_a_gateway_bedrock_or_vertex_reaches_the_env_file_from_the_environment_or_host_data() -> None:
    gateway = {"ANTHROPIC_BASE_URL": "https://llm.internal", "ANTHROPIC_AUTH_TOKEN": "tok-0123456789"}
    assert hostdata.check(data(), gateway).secrets == gateway
    bedrock = data(factory_model_env={"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "eu-west-1"})
    checked = hostdata.check(bedrock, {"AWS_BEARER_TOKEN_BEDROCK": "bedrock-token"})  # no Anthropic key needed
    assert checked.secrets == {"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "eu-west-1",
                               "AWS_BEARER_TOKEN_BEDROCK": "bedrock-token"}  # fmt: skip
    # The environment wins over host data; an unknown name is refused, naming what is allowed.
    env = {**KEY, "AWS_REGION": "us-east-1"}
    assert hostdata.check(bedrock, env).secrets["AWS_REGION"] == "us-east-1"
    assert "factory_model_env: a mapping of these names only" in problems(data(factory_model_env={"PATH": "/x"}), KEY)
    # Bedrock switched off is no credential.
    off = data(factory_model_env={"CLAUDE_CODE_USE_BEDROCK": "0"})
    assert "missing secret: ANTHROPIC_API_KEY" in problems(off, {})


def test_the_servers_certificate_and_proxy_settings_reach_the_env_file_from_host_data_only() -> None:
    certs = {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}
    checked = hostdata.check(data(factory_setup_env=certs), KEY)
    assert checked.secrets == {**KEY, **certs}
    # The deployer's own SSL_CERT_FILE is a path on its laptop: not taken from the environment.
    assert "SSL_CERT_FILE" not in hostdata.check(data(), {**KEY, "SSL_CERT_FILE": "/home/me/ca.pem"}).secrets
    assert "factory_setup_env: a mapping of these names only" in problems(data(factory_setup_env={"PATH": "x"}), KEY)


def test_the_scripted_demo_needs_no_credential() -> None:
    checked = hostdata.check({**DEFAULTS, **DEMO}, {})
    assert checked.scripted and checked.secrets == {} and checked.repo.is_sample


def test_the_opt_out_needs_both_agent_and_reviewer_scripted() -> None:
    demo_agent_only = {**DEFAULTS, **DEMO, "factory_reviewer_command": DEFAULTS["factory_reviewer_command"]}
    assert "missing secret: ANTHROPIC_API_KEY" in problems(demo_agent_only, {})


def test_telegram_chat_ids_need_the_bot_token() -> None:
    assert "missing secret: TELEGRAM_BOT_TOKEN" in problems(data(factory_telegram_chat_ids=[42]), KEY)


def test_an_ssh_repository_url_needs_a_deploy_key(tmp_path: Path) -> None:
    ssh = data(factory_repo_url="git@github.com:me/app.git")
    assert "missing secret: FACTORY_DEPLOY_KEY" in problems(ssh, KEY)
    assert "no such file" in problems(ssh, {**KEY, "FACTORY_DEPLOY_KEY": str(tmp_path / "nope")})
    key = tmp_path / "key"
    key.write_text("k")
    checked = hostdata.check(ssh, {**KEY, "FACTORY_DEPLOY_KEY": str(key)})
    assert checked.deploy_key == key and checked.repo.needs_key


def test_every_problem_is_listed_at_once() -> None:
    message = problems(data(factory_repo_url="", factory_telegram_chat_ids=[1], factory_pm2_version="latest"), {})
    for part in ("ANTHROPIC_API_KEY", "TELEGRAM_BOT_TOKEN", "factory_repo_url is empty", "factory_pm2_version"):
        assert part in message


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.git; reboot",
        "https://example.com/$(id).git",
        "https://example.com/`id`.git",
        "--upload-pack=touch /tmp/x",
        "ext::sh -c id",
        "https://example.com/a b.git",
        "https://example.com/a.git\n",
    ],
)
def test_repository_urls_with_shell_characters_are_refused(url: str) -> None:
    assert "factory_repo_url" in problems(data(factory_repo_url=url), KEY)


@pytest.mark.parametrize(
    "url", ["https://github.com/me/app.git", "ssh://git@host:2222/me/app.git", "file:///srv/app.git", "/srv/app.git"]
)
def test_ordinary_repository_urls_pass(url: str, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("k")
    assert hostdata.check(data(factory_repo_url=url), {**KEY, "FACTORY_DEPLOY_KEY": str(key)}).repo.url == url


@pytest.mark.parametrize("branch", ["main; reboot", "$(id)", "-rf", "a b", "feature/x"])
def test_branch_names_with_metacharacters_are_refused_naming_the_host_data_key(branch: str) -> None:
    message = problems(data(factory_repo_branch=branch), KEY)
    assert "repo.main" in message and "(host data: factory_repo_branch)" in message


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"factory_sessions": 0}, "factory.sessions"),
        ({"factory_sessions": "8"}, "factory.sessions"),
        ({"factory_http_bind": "8787"}, "http.bind"),
        ({"factory_agent_command": []}, "agent.command"),
        ({"factory_checks": [{"name": "x", "command": ["true"], "parser": "nope"}]}, "unknown parser 'nope'"),
        ({"factory_config": {"cycle": {"interval": 5}}}, "unknown key 'cycle.interval'"),
        ({"factory_config": {"cycles": {}}}, "unknown section 'cycles'"),
        ({"factory_config": {"factory": {"sessions": 3}}}, "set factory.sessions with factory_sessions"),
        ({"factory_config": {"checks": []}}, "set checks with factory_checks"),
        ({"factory_claude_code_version": "^2.1"}, "factory_claude_code_version: must be an exact version"),
        ({"factory_jobs": ["loop", "nightly"]}, "unknown job(s) nightly"),
    ],
)
def test_wrong_host_data_is_named(overrides: dict[str, Any], complaint: str) -> None:
    assert complaint in problems(data(**overrides), KEY)


def test_missing_host_data_keys_are_named() -> None:
    incomplete = {k: v for k, v in data().items() if k != "factory_pm2_version"}
    assert "host data misses factory_pm2_version" in problems(incomplete, KEY)


def test_jobs_default_to_every_job_and_say_which_a_missing_secret_left_out() -> None:
    checked = hostdata.check(data(), KEY)
    # Jobs that need a secret (serve: FACTORY_HTTP_TOKEN) are left out without it, each named.
    assert [j.name for j in checked.jobs] == ["loop", "scheduler", "review", "standup", "doctor"]
    assert checked.left_out == (
        "not deployed: bot (TELEGRAM_BOT_TOKEN is not set)",
        "not deployed: serve (FACTORY_HTTP_TOKEN is not set)",
        "not deployed: bot-improve (TELEGRAM_BOT_TOKEN is not set)",
    )
    every = {j.needs: "4242:secret-0123456789_abcdef" for j in JOBS if j.needs}  # every shape's rule allows it
    everything = hostdata.check(data(), {**KEY, **every})
    assert [j.name for j in everything.jobs] == [j.name for j in JOBS] and everything.left_out == ()


def test_a_job_whose_secret_is_missing_is_left_out_not_failed() -> None:
    checked = hostdata.check(data(factory_jobs=["loop", "bot", "serve", "bot-improve"]), KEY)
    assert [j.name for j in checked.jobs] == ["loop"]
    assert "not deployed: bot (TELEGRAM_BOT_TOKEN is not set)" in checked.left_out
    assert "not deployed: serve (FACTORY_HTTP_TOKEN is not set)" in checked.left_out
    with_http = hostdata.check(data(factory_jobs=["serve"]), {**KEY, "FACTORY_HTTP_TOKEN": "tok-0123456789abcdef"})
    assert [j.name for j in with_http.jobs] == ["serve"]


def test_the_demo_scenarios_are_the_ones_the_deploy_ships() -> None:
    for command in (DEMO["factory_agent_command"], DEMO["factory_reviewer_command"]):
        assert command[0] == layout.SCRIPTED_AGENT
        shipped = Path(__file__).resolve().parents[2] / "templates" / "demo" / Path(command[-1]).name
        assert shipped.is_file() and command[-1].startswith(layout.DEMO_DIR)


def test_pyinfra_stops_on_a_malformed_host_before_connecting() -> None:
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "FACTORY_HOSTS": "vps.example.com,root@bad host"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "pyinfra"), "inventory.py", "deploy.py", "--dry"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "FACTORY_HOSTS: 'root@bad host': bad host name 'bad host'" in out
    assert "Connecting" not in out


# -- the secrets' shapes: one rule for the deploy and the jobs that read them -------------------


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("FACTORY_HTTP_TOKEN", "short-token", "FACTORY_HTTP_TOKEN is too short: use at least 16 random characters "
                                              "(it has 11)"),
        ("FACTORY_HTTP_TOKEN", "sixteen chars but spaces", "FACTORY_HTTP_TOKEN must be printable ASCII without spaces"),
        ("TELEGRAM_BOT_TOKEN", "AAEhBOweik6ad9r_QXMENQjcrGbqCr4K", "TELEGRAM_BOT_TOKEN must look like 123456789:AAE"),
        ("TELEGRAM_BOT_TOKEN", "bot123456:AAE", "TELEGRAM_BOT_TOKEN must look like 123456789:AAE"),
        ("ANTHROPIC_API_KEY", "export ANTHROPIC_API_KEY=sk-ant-x", "ANTHROPIC_API_KEY must be one word"),
        ("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-ünï", "CLAUDE_CODE_OAUTH_TOKEN must be one word"),
        ("FACTORY_GITHUB_SECRET", "two\nlines", "FACTORY_GITHUB_SECRET contains a line break"),
    ],
)  # fmt: skip
def test_a_secret_of_the_wrong_shape_stops_the_deploy_in_one_line_naming_it_and_the_rule(
    name: str, value: str, complaint: str
) -> None:
    environ = {**KEY, name: value}
    message = problems(data(factory_jobs=["loop", "serve", "bot"]), environ)
    assert message.startswith(f"vps1: {complaint}") and "\n" not in message
    assert value not in message  # the rule, never the value
    with pytest.raises(InventoryError, match=re.escape(complaint)):  # and before connecting anywhere
        build({**environ, "FACTORY_HOSTS": "vps1.example.com"})


def test_serve_and_the_deploy_apply_the_same_token_rule() -> None:
    from factoryctl.core.errors import ConfigError
    from factoryctl.jobs.serve.auth import check_token

    for token in ("0123456789abcde", "0123456789abcdef"):  # 15 and 16 characters
        deploy_ok = "FACTORY_HTTP_TOKEN" not in problems_or_none(data(factory_jobs=["serve"]), {**KEY,
                                                                  "FACTORY_HTTP_TOKEN": token})  # fmt: skip
        try:
            serve_ok = bool(check_token(token))
        except ConfigError:
            serve_ok = False
        assert deploy_ok == serve_ok == (len(token) >= 16)


def problems_or_none(host_data: dict[str, Any], environ: dict[str, str]) -> str:
    try:
        hostdata.check(host_data, environ, host="vps1")
    except hostdata.HostDataError as exc:
        return str(exc)
    return ""


def test_well_formed_secrets_pass() -> None:
    environ = {
        **KEY,
        "CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-abc_DEF-123",
        "FACTORY_HTTP_TOKEN": "x" * 16,
        "TELEGRAM_BOT_TOKEN": "123456789:AAEhBOweik6ad9r_QX-bo",
        "FACTORY_GITHUB_SECRET": "any text",
    }
    assert set(hostdata.check(data(factory_telegram_chat_ids=[42]), environ).secrets) == set(environ)


def test_pyinfra_dry_stops_on_a_short_http_token_before_connecting() -> None:
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "FACTORY_HOSTS": "vps.example.com", "FACTORY_HTTP_TOKEN": "too-short", **KEY}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "pyinfra"), "inventory.py", "deploy.py", "--dry"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "FACTORY_HTTP_TOKEN is too short: use at least 16 random characters (it has 9)" in out
    assert "too-short" not in out and "Connecting" not in out


# -- several hosts: factory_role and factory_db_clients -------------------------------------------

STATE = {"state": {"url": "postgresql://factory@10.0.0.2:5432/factory"}}
DB = {**KEY, "FACTORY_DB_PASSWORD": "correct-horse-battery"}
# What the inventory gives a gate and a worker from a fleet file (provision/fleet.py).
GATE = {"factory_role": "gate", "factory_fleet_name": "gate", "factory_private_address": "10.0.0.2",
        "factory_fleet_workers": {"w1": 2}, "factory_db_clients": ["10.0.0.3"]}  # fmt: skip
WORKER = {"factory_role": "worker", "factory_fleet_name": "w1", "factory_private_address": "10.0.0.3",
          "factory_fleet_workers": {"w1": 2}, "factory_db_host": "10.0.0.2", "factory_sessions": 2}  # fmt: skip


def test_a_host_runs_the_whole_factory_by_default() -> None:
    checked = hostdata.check(data(), KEY)
    assert checked.role == "all" and {j.name for j in checked.jobs} >= {"loop", "scheduler", "review"}


def test_a_gate_runs_everything_but_the_loops_and_a_worker_the_loops_and_its_scheduler() -> None:
    gate = hostdata.check(data(**GATE), DB)
    worker = hostdata.check(data(**WORKER), DB)
    assert "loop" not in {j.name for j in gate.jobs} and "review" in {j.name for j in gate.jobs}
    assert {j.name for j in worker.jobs} == {"loop", "scheduler"}
    assert any("not on a worker host: " in line and "review" in line for line in worker.left_out)
    assert gate.config["state"]["url"].startswith("postgresql://") and gate.db_clients == ("10.0.0.3/32",)


@pytest.mark.parametrize(
    ("overrides", "environ", "complaint"),
    [
        ({"factory_role": "boss"}, KEY, "factory_role: 'boss' is not one of all, gate, worker"),
        ({"factory_role": "worker"}, DB, "a gate or worker is deployed from a fleet file (FACTORY_FLEET"),
        (WORKER, KEY, "missing secret: FACTORY_DB_PASSWORD"),
        ({**GATE, "factory_db_clients": ["10.0.0.300"]}, DB, "'10.0.0.300' is not an IP address or network"),
        ({**GATE, "factory_db_clients": ["0.0.0.0/0"]}, DB, "admits too much"),
        ({"factory_db_clients": ["10.0.0.3"]}, KEY, "only the gate"),
        ({"factory_config": {"state": {"url": "postgresql://factory:pw@10.0.0.2/factory"}}}, KEY,
         "must not carry a password"),
        ({**WORKER, "factory_config": STATE}, DB, "[state] url is set by the deploy on a gate or worker"),
        ({**WORKER, "factory_sessions": 5}, DB, "factory_sessions: 5 on worker 'w1', but the fleet says 2"),
        ({**WORKER, "factory_db_host": "127.0.0.1"}, DB, "factory_db_host '127.0.0.1': not an address other hosts"),
        ({**GATE, "factory_fleet_name": "Gate-1"}, DB, "factory_fleet_name 'Gate-1': lower-case letters"),
        ({**WORKER, "factory_repo_url": "sample"}, DB, "missing secret: FACTORY_DEPLOY_KEY (in a fleet the demo's"),
    ],
)  # fmt: skip
def test_roles_and_the_database_clients_are_checked(overrides: dict[str, Any], environ: dict[str, str],
                                                    complaint: str) -> None:  # fmt: skip
    message = problems(data(**overrides), environ)
    assert complaint in message and "correct-horse" not in message and ":pw@" not in message


def test_the_gates_pg_hba_admits_the_workers_by_scram_and_nothing_else() -> None:
    text = hostdata.pg_hba(["10.0.0.3/32", "10.0.1.0/24"])
    rules = [line.split() for line in text.splitlines() if line and not line.startswith("#")]
    assert rules == [
        ["local", "all", "postgres", "peer"],
        ["local", "factory", "factory", "scram-sha-256"],
        ["host", "factory", "factory", "10.0.0.3/32", "scram-sha-256"],
        ["host", "factory", "factory", "10.0.1.0/24", "scram-sha-256"],
    ]
    assert "trust" not in text and "0.0.0.0" not in text and "md5" not in text
