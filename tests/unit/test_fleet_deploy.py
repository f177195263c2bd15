"""Several hosts as one factory: the fleet file, what the inventory computes per host, and what a
gate and a worker get (factory.toml, tmux layout, pg_hba, nftables, the relay, the role's SQL)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api.exceptions import InventoryError

import inventory
from inventory import DEFAULTS, DEMO, build
from provision import fleet, hostdata, layout, operations, templating

KEY = {"ANTHROPIC_API_KEY": "sk-ant-0123456789", "FACTORY_DB_PASSWORD": "correct-horse-battery"}
REPO = Path(__file__).resolve().parents[2]

THREE = """
[[host]]
ssh = "root@203.0.113.7"
role = "gate"
private_address = "10.0.0.2"

[[host]]
ssh = "deploy@203.0.113.8:2222"
role = "worker"
private_address = "10.0.0.3"
sessions = 4

[[host]]
ssh = "root@w2.example.com"
role = "worker"
name = "build2"
private_address = "fd00::4"
"""


def three() -> fleet.Fleet:
    return fleet.parse_fleet(THREE, default_sessions=8)


# -- the fleet file --------------------------------------------------------------------


def test_a_fleet_file_names_one_gate_and_its_workers_with_default_names_and_sessions() -> None:
    parsed = three()
    assert [(h.name, h.role, h.private_address, h.sessions) for h in parsed.hosts] == [
        ("gate", "gate", "10.0.0.2", 0),
        ("w1", "worker", "10.0.0.3", 4),
        ("build2", "worker", "fd00::4", 8),
    ]
    assert parsed.gate.ssh == "root@203.0.113.7" and not parsed.demo


def host(**fields: Any) -> str:
    return "[[host]]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in fields.items())


GATE = host(ssh="root@203.0.113.7", role="gate", private_address="10.0.0.2")
W1 = host(ssh="root@203.0.113.8", role="worker", private_address="10.0.0.3")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "no hosts: add one [[host]] table per host"),
        (GATE, "no workers: add a [[host]] with role 'worker'"),
        ("[[host]\n", "not valid TOML"),
        (W1, "exactly one host has role 'gate' (found 0)"),
        (GATE + GATE.replace("10.0.0.2", "10.0.0.9").replace(".7", ".9"), "exactly one host has role 'gate' (found 2)"),
        (GATE + W1.replace("10.0.0.3", "10.0.0.2"), "private_address must be unique: '10.0.0.2' is given twice"),
        (GATE + W1 + W1.replace("10.0.0.3", "10.0.0.4").replace(".8", ".9") + 'name = "w1"\n',
         "name must be unique: 'w1' is given twice"),
        (GATE + W1.replace("10.0.0.3", "10.0.0.4").replace(".8", ".7"), "ssh must be unique: 'root@203.0.113.7'"),
        (GATE + W1.replace("10.0.0.3", "10.0.0.300"), "host 'w1': private_address '10.0.0.300': not an IP address"),
        (GATE + W1.replace("10.0.0.3", "10.0.0.0/24"), "not an IP address (one address, no network or port)"),
        (GATE + W1.replace("10.0.0.3", "127.0.0.1"), "not an address other hosts can reach"),
        (GATE + W1.replace('private_address = "10.0.0.3"\n', ""), "host 'w1': private_address None: missing"),
        (GATE + W1 + 'name = "W-1"\n', "host 2: name 'W-1': lower-case letters and digits"),
        (GATE + W1 + 'name = "abcdefghijklmnopq"\n', "at most 16"),
        (GATE + W1 + "sessions = 0\n", "host 'w1': sessions 0: a whole number from 1 to 64"),
        (GATE + "sessions = 2\n" + W1, "host 'gate': sessions: the gate runs no agents"),
        (GATE + W1.replace("worker", "boss"), "host 2: role 'boss' is not 'gate' or 'worker'"),
        (GATE + W1 + 'port = 22\n', "host 'w1': unknown key 'port'"),
        (GATE + W1.replace("root@203.0.113.8", "root@bad host"), "host 'w1': ssh 'root@bad host': bad host name"),
        (GATE + W1 + 'ssh_config = "/nonexistent/ssh_config"\n', "ssh_config '/nonexistent/ssh_config': no such file"),
        ("hosts = 1\n" + GATE, "unknown key 'hosts' (allowed: demo, host)"),
    ],
)  # fmt: skip
def test_each_mistake_in_a_fleet_file_is_one_line_naming_the_host(text: str, complaint: str) -> None:
    with pytest.raises(fleet.FleetError) as caught:
        fleet.parse_fleet(text)
    assert complaint in str(caught.value) and "\n" not in str(caught.value)


def test_every_mistake_is_listed_at_once() -> None:
    with pytest.raises(fleet.FleetError) as caught:
        fleet.parse_fleet(GATE + W1.replace("10.0.0.3", "nope") + "sessions = 99\n")
    assert "private_address 'nope'" in str(caught.value) and "sessions 99" in str(caught.value)


# -- what the inventory computes per host ---------------------------------------------------


def test_the_gate_admits_the_workers_and_each_worker_reaches_the_gate() -> None:
    data = fleet.fleet_host_data(three())
    workers = {"w1": 4, "build2": 8}
    assert data["gate"] == {
        "factory_role": "gate",
        "factory_fleet_name": "gate",
        "factory_private_address": "10.0.0.2",
        "factory_fleet_workers": workers,
        "factory_db_clients": ["10.0.0.3", "fd00::4"],
    }
    assert data["w1"] == {
        "factory_role": "worker",
        "factory_fleet_name": "w1",
        "factory_private_address": "10.0.0.3",
        "factory_fleet_workers": workers,
        "factory_db_host": "10.0.0.2",
        "factory_sessions": 4,
    }
    assert data["build2"]["factory_db_host"] == "10.0.0.2" and data["build2"]["factory_sessions"] == 8


def test_the_inventory_builds_the_fleets_hosts_with_their_connections(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(THREE)
    hosts = dict(build({**KEY, "FACTORY_FLEET": str(path)}))
    assert list(hosts) == ["gate", "w1", "build2"]
    assert {k: hosts["w1"][k] for k in ("ssh_hostname", "ssh_port", "ssh_user")} == {
        "ssh_hostname": "203.0.113.8", "ssh_port": 2222, "ssh_user": "deploy"}  # fmt: skip
    assert hosts["gate"]["factory_db_clients"] == ["10.0.0.3", "fd00::4"]
    assert "factory_repo_url" not in hosts["gate"]  # not the demo: the defaults and --data decide


def test_the_inventory_refuses_a_fleet_and_hosts_at_once_and_an_unreadable_fleet(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="FACTORY_FLEET and FACTORY_HOSTS are both set"):
        build({**KEY, "FACTORY_FLEET": "fleet.toml", "FACTORY_HOSTS": "203.0.113.7"})
    with pytest.raises(InventoryError, match=r"FACTORY_FLEET=.*missing.toml: cannot read it"):
        build({**KEY, "FACTORY_FLEET": str(tmp_path / "missing.toml")})
    (tmp_path / "bad.toml").write_text(W1)
    with pytest.raises(InventoryError, match=r"bad.toml: exactly one host has role 'gate'"):
        build({**KEY, "FACTORY_FLEET": str(tmp_path / "bad.toml")})


def test_a_fleet_of_sandboxes_is_a_fleet_file_with_their_ssh_configs_and_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACTORY_SANDBOX_STATE", str(tmp_path))
    members = [("fga", "gate", "10.232.0.2", 0), ("fwa", "worker", "10.232.0.3", 2)]
    with pytest.raises(InventoryError, match="the sandbox host 'fga' is not up"):
        inventory.sandbox_fleet(members)
    for name, *_ in members:
        (tmp_path / name).mkdir()
        (tmp_path / name / "ssh_config").write_text(f"Host {name}\n")
    path = tmp_path / "fleet.toml"
    path.write_text(inventory.sandbox_fleet(members))
    hosts = dict(build({**KEY, "FACTORY_FLEET": str(path)}))
    assert hosts["w1"]["ssh_hostname"] == "fwa" and hosts["w1"]["ssh_config_file"] == str(tmp_path / "fwa/ssh_config")
    assert hosts["w1"]["factory_repo_url"] == DEMO["factory_repo_url"] and hosts["w1"]["factory_sessions"] == 2
    assert hosts["gate"]["factory_db_clients"] == ["10.232.0.3"]


def test_pyinfra_dry_stops_on_a_mistake_in_a_three_host_fleet_before_connecting(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(THREE.replace('name = "build2"', 'name = "w1"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_")} | KEY | {"FACTORY_FLEET": str(path)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "pyinfra"), "inventory.py", "deploy.py", "--dry"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode != 0
    lines = [line for line in out.splitlines() if "name must be unique" in line]
    assert len(lines) == 1 and f"FACTORY_FLEET={path}: name must be unique: 'w1' is given twice" in lines[0]
    assert "Connecting" not in out and "correct-horse" not in out


# -- what a gate and a worker get -------------------------------------------------------------


def checked_for(name: str, **overrides: Any) -> hostdata.Checked:
    data = {**DEFAULTS, "factory_repo_url": "https://example.com/app.git", **fleet.fleet_host_data(three())[name]}
    return hostdata.check({**data, **overrides}, KEY, host=name)


def toml_of(checked: hostdata.Checked) -> dict[str, Any]:
    return tomllib.loads(templating.render_all(checked)["factory.toml.j2"])


def test_factory_toml_names_the_role_the_host_the_workers_and_the_state_per_role() -> None:
    gate, worker = toml_of(checked_for("gate")), toml_of(checked_for("w1"))
    workers = {"w1": 4, "build2": 8}
    assert gate["factory"]["role"] == "gate" and gate["factory"]["host"] == "gate"
    assert worker["factory"] == {**worker["factory"], "role": "worker", "host": "w1", "sessions": 4}
    assert gate["fleet"] == worker["fleet"] == {"workers": workers}
    assert gate["state"] == {"url": "postgresql://factory@/factory?host=/run/postgresql"}
    assert worker["state"] == {"url": "postgresql://factory@/factory?host=/run/factory-db"}
    for text in (templating.render_all(checked_for(n))["factory.toml.j2"] for n in ("gate", "w1")):
        assert "correct-horse" not in text


def test_a_host_alone_renders_no_fleet_keys() -> None:
    alone = hostdata.check({**DEFAULTS, "factory_repo_url": "https://example.com/app.git"}, KEY)
    config = toml_of(alone)
    assert "role" not in config["factory"] and "host" not in config["factory"]
    assert "fleet" not in config and "state" not in config


def test_the_database_password_goes_to_the_secrets_file() -> None:
    secrets = templating.render_all(checked_for("w1"))["secrets.env.j2"]
    assert "FACTORY_DB_PASSWORD=correct-horse-battery" in secrets.splitlines()


def test_a_worker_runs_its_own_sessions_named_after_it_and_the_gate_none() -> None:
    worker = templating.context(checked_for("w1"))["sessions"]
    assert [(s["name"], s["argv"][-2:]) for s in worker] == [
        (f"factory-w1-s{i}", ["loop", f"w1-s{i}"]) for i in range(1, 5)
    ]
    tmux = templating.render_all(checked_for("w1"))["factory-tmux.sh.j2"]
    assert "WANTED='factory-w1-s1 factory-w1-s2 factory-w1-s3 factory-w1-s4'" in tmux
    gate = templating.render_all(checked_for("gate"))
    assert templating.context(checked_for("gate"))["sessions"] == [] and 'WANTED=""' in gate["factory-tmux.sh.j2"]


def test_the_tmux_step_knows_a_fleets_session_names_from_other_sessions() -> None:
    wanted = ["factory-w1-s1", "factory-w1-s2"]
    assert operations.tmux_commands(wanted, "/opt/factory/bin/factory-tmux", wanted, restart=False) == []
    assert operations.tmux_commands([*wanted, "factory-w1-s3"], "T", wanted, restart=False) != []
    assert operations.tmux_commands([*wanted, "other"], "T", wanted, restart=False) == []


def test_pg_hba_admits_the_workers_of_the_fleet_by_scram_and_nothing_else() -> None:
    text = hostdata.pg_hba(checked_for("gate").db_clients)
    hosts = [line.split() for line in text.splitlines() if line.startswith("host")]
    assert hosts == [["host", "factory", "factory", "10.0.0.3/32", "scram-sha-256"],
                     ["host", "factory", "factory", "fd00::4/128", "scram-sha-256"]]  # fmt: skip


def rules(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_gates_nftables_keep_the_factory_user_off_tcp_and_admit_only_the_workers() -> None:
    text = templating.render_fleet(checked_for("gate"))["nftables.nft.j2"]
    assert rules(text) == [
        "table inet factory",
        "delete table inet factory",
        "table inet factory {",
        "chain output {",
        "type filter hook output priority filter; policy accept;",
        'tcp dport 5432 meta skuid "factory" reject with tcp reset',
        "}",
        "chain input {",
        "type filter hook input priority filter; policy accept;",
        'tcp dport 5432 iifname "lo" accept',
        "tcp dport 5432 ip saddr 10.0.0.3/32 accept",
        "tcp dport 5432 ip6 saddr fd00::4/128 accept",
        "tcp dport 5432 drop",
        "}",
        "}",
    ]


def test_a_workers_nftables_let_only_the_relay_open_tcp_to_postgresql() -> None:
    text = templating.render_fleet(checked_for("w1"))["nftables.nft.j2"]
    assert 'tcp dport 5432 meta skuid != "factory-db" reject with tcp reset' in rules(text)
    assert "chain input" not in text


def test_a_workers_relay_runs_as_its_own_user_with_a_socket_only_the_factory_group_reaches() -> None:
    unit = templating.render_fleet(checked_for("w1"))["factory-db-relay.service.j2"]
    lines = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert lines["ExecStart"] == (
        "/usr/bin/socat UNIX-LISTEN:/run/factory-db/.s.PGSQL.5432,fork,unlink-early,mode=0660,"
        "user=factory-db,group=factory TCP:10.0.0.2:5432"
    )
    assert (lines["User"], lines["Group"], lines["RuntimeDirectory"], lines["RuntimeDirectoryMode"]) == (
        "factory-db", "factory", "factory-db", "0750")  # fmt: skip
    assert lines["Restart"] == "always" and lines["WantedBy"] == "multi-user.target"


def test_the_gates_postgresql_listens_on_localhost_and_its_private_address() -> None:
    conf = templating.render_fleet(checked_for("gate"))["postgresql-factory.conf.j2"]
    assert "listen_addresses = 'localhost,10.0.0.2'" in conf.splitlines()
    assert "max_connections = 144" in conf.splitlines()  # 100, and w1 (4 sessions) and build2 (8)
    assert set(templating.render_fleet(checked_for("gate"))) == set(templating.FLEET_FILES["gate"])
    alone = hostdata.check({**DEFAULTS, "factory_repo_url": "https://example.com/app.git"}, KEY)
    assert templating.render_fleet(alone) == {}


def test_the_gate_admits_three_connections_a_session_beside_postgresqls_default() -> None:
    assert hostdata.pg_max_connections({"w1": 2}) == 100 + 3 * 2 + 4
    assert hostdata.pg_max_connections({"w1": 12, "w2": 12, "w3": 13, "w4": 13}) == 266  # fifty agents
    assert hostdata.pg_max_connections({f"w{i}": 64 for i in range(1, 9)}) == 100 + 3 * 512 + 32


def test_the_nftables_unit_loads_the_table_at_boot_and_after_nftables_service() -> None:
    unit = templating.render_fleet(checked_for("gate"))["factory-nftables.service.j2"]
    assert "ExecStart=/usr/sbin/nft -f /etc/factory/nftables.nft" in unit
    assert "PartOf=nftables.service" in unit and "WantedBy=sysinit.target" in unit


# -- the database role: a scram verifier on stdin, only when it differs -------------------------------


def test_the_roles_password_is_sent_as_a_scram_verifier_that_matches_it_only() -> None:
    verifier = operations.scram_verifier("correct-horse-battery", b"0123456789abcdef")
    method, params, keys = verifier.split("$")
    assert method == "SCRAM-SHA-256" and params == "4096:" + base64.b64encode(b"0123456789abcdef").decode()
    assert len(base64.b64decode(keys.split(":")[0])) == 32
    assert operations.scram_matches(verifier, "correct-horse-battery")
    assert not operations.scram_matches(verifier, "correct-horse-batter")
    assert not operations.scram_matches("md5abc", "correct-horse-battery")
    assert not operations.scram_matches("SCRAM-SHA-256$x:!!$a:b", "correct-horse-battery")
    sql = operations.db_role_sql("factory", "factory", verifier)
    assert verifier in sql and "correct-horse" not in sql and "CREATE DATABASE factory OWNER factory" in sql


def test_a_postgresql_made_verifier_is_recognised() -> None:
    # What PostgreSQL 15 stored for `CREATE ROLE pencil PASSWORD 'pencil'` (its own salt).
    stored = (
        "SCRAM-SHA-256$4096:Z1Vo5k897pNsyCIlAMP2+w==$ayzqOsFY142495WJsJoW3dbPLvpA1xGomNreIZd3bMY=:"
        "BmqJX+X00Y6qqFOmNHOCT+XANg79vDBinGdFPccXMZ0="
    )
    assert operations.scram_verifier("pencil", base64.b64decode("Z1Vo5k897pNsyCIlAMP2+w==")) == stored
    assert operations.scram_matches(stored, "pencil") and not operations.scram_matches(stored, "Pencil")


@pytest.mark.parametrize(
    ("found", "runs"),
    [
        (None, True),  # PostgreSQL not there yet (planning a fresh gate)
        ({}, True),  # no role, no database
        ({"role": "", "owner": "factory"}, True),  # a role without a password
        ({"role": "WRONG", "owner": "factory"}, True),
        ({"role": "RIGHT", "owner": "postgres"}, True),  # the database is someone else's
        ({"role": "RIGHT", "owner": "factory"}, False),
    ],
)
def test_the_role_is_set_only_when_its_password_or_database_differ(found: dict[str, str] | None, runs: bool) -> None:
    right = operations.scram_verifier("correct-horse-battery", os.urandom(16))
    if found is not None:
        found = {k: right if v == "RIGHT" else v for k, v in found.items()}
    commands = operations.db_role_commands(found, "correct-horse-battery", "factory", "factory")
    assert bool(commands) == runs
    assert all("correct-horse" not in c for c in commands)


def test_the_db_role_fact_reads_the_verifier_and_the_owner() -> None:
    from provision.facts import parse_db_role

    assert parse_db_role(["NONE"]) is None and parse_db_role(["DOWN"]) is None
    assert parse_db_role([]) == {}
    assert parse_db_role(["role|SCRAM-SHA-256$4096:abc$x:y", "owner|factory"]) == {
        "role": "SCRAM-SHA-256$4096:abc$x:y", "owner": "factory"}  # fmt: skip
    assert layout.RELAY_DIR == "/run/factory-db"
