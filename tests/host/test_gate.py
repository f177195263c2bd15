"""A gate of a fleet on a fresh sandbox host: `FACTORY_FLEET=fleet.toml pyinfra inventory.py deploy.py --limit gate`.

PostgreSQL listens on the gate's private address, the factory's role logs in with its password
over the unix socket, the factory user cannot open TCP to port 5432 (nftables) while root can,
and a second deploy changes nothing. The fleet names a worker that is not deployed here (the gate
first, as a user may do): the workers and the three-host factory are another test's.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sandbox_helpers import REPO, SandboxHost

import inventory
from factoryctl.core.defaults import SECRET_ENV
from provision import hostdata, layout

pytestmark = pytest.mark.host

PYINFRA = str(Path(sys.executable).parent / "pyinfra")
PASSWORD = "gate-test-db-password-0123456789"  # a stand-in secret: the secrets file and PostgreSQL only
SOCKET_URL = "postgresql://factory@/factory?host=/run/postgresql"
WORKER = '\n[[host]]\nssh = "root@203.0.113.9"\nrole = "worker"\nprivate_address = "10.231.9.9"\nsessions = 2\n'


@dataclass(frozen=True)
class Run:
    code: int
    out: str


@dataclass(frozen=True)
class Gate:
    first: Run
    second: Run
    host: SandboxHost


def deploy(fleet_file: Path) -> Run:
    clean = {k: v for k, v in os.environ.items() if k not in SECRET_ENV and not k.startswith("FACTORY_")}
    key = fleet_file.parent / "deploy_key"  # the workers would fetch the demo's origin with it
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    env = {**clean, "FACTORY_FLEET": str(fleet_file), "FACTORY_DB_PASSWORD": PASSWORD, "FACTORY_DEPLOY_KEY": str(key)}
    if "FACTORY_SANDBOX_STATE" in os.environ:
        env["FACTORY_SANDBOX_STATE"] = os.environ["FACTORY_SANDBOX_STATE"]
    started = time.monotonic()
    done = subprocess.run([PYINFRA, "inventory.py", "deploy.py", "-y", "--limit", "gate"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1200)  # fmt: skip
    print(f"\ndeploy {time.monotonic() - started:.1f}s")
    return Run(done.returncode, done.stdout + done.stderr)


@pytest.fixture(scope="module")
def gate(sandbox_host: SandboxHost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gate]:
    fleet_file = tmp_path_factory.mktemp("fleet") / "fleet.toml"
    fleet_file.write_text(inventory.sandbox_fleet([(sandbox_host.name, "gate", sandbox_host.address, 0)]) + WORKER)
    first = deploy(fleet_file)
    assert first.code == 0, first.out[-6000:]
    second = deploy(fleet_file)
    yield Gate(first, second, sandbox_host)


def sh(host: SandboxHost, command: str, user: str = "root") -> subprocess.CompletedProcess[str]:
    if user != "root":
        command = f"runuser -u {user} -- sh -c {shlex.quote(command)}"
    return host.ssh(command)


def connects(host: SandboxHost, address: str, user: str) -> bool:
    probe = f"import socket; socket.create_connection(({address!r}, 5432), timeout=5).close()"
    return sh(host, f"cd / && python3 -c {shlex.quote(probe)}", user).returncode == 0


def changed_operations(run: Run) -> list[str]:
    """The operations pyinfra's results table says changed something (its Success column)."""
    rows = re.findall(r"^\s+(.+?)\s{2,}\d+\s+(\S+)\s+\S+\s+\S+\s*$", run.out.split("--> Results:")[-1], re.M)
    return [name for name, success in rows if success not in ("-", "Success") and "Grand total" not in name]


def test_the_second_deploy_changes_nothing_and_the_password_is_never_printed(gate: Gate) -> None:
    assert gate.second.code == 0, gate.second.out[-4000:]
    assert changed_operations(gate.second) == [], gate.second.out[-4000:]
    for run in (gate.first, gate.second):
        assert PASSWORD not in run.out


def test_postgresql_listens_on_the_private_address_admits_the_fleet_and_runs_no_loops(gate: Gate) -> None:
    listen = sh(gate.host, "cd / && runuser -u postgres -- psql -XAtc 'show listen_addresses'")
    assert listen.stdout.strip() == f"localhost,{gate.host.address}", listen.stderr
    most = sh(gate.host, "cd / && runuser -u postgres -- psql -XAtc 'show max_connections'").stdout.strip()
    assert most == "110", most  # room for w1's two sessions beside the gate's 100 (hostdata.pg_max_connections)
    assert connects(gate.host, gate.host.address, "root") and connects(gate.host, "127.0.0.1", "root")
    config = tomllib.loads(sh(gate.host, f"cat {layout.CONFIG_FILE}").stdout)
    assert config["factory"]["role"] == "gate" and config["factory"]["host"] == "gate"
    assert config["state"]["url"] == SOCKET_URL and config["fleet"] == {"workers": {"w1": 2}}
    assert "factory-s" not in sh(gate.host, f"cat {layout.TMUX}").stdout.split("WANTED=")[1].splitlines()[0]
    # It starts after the network (the private address may come up late in a VPS's boot).
    after = sh(gate.host, "systemctl show -p After,Wants 'postgresql@*-main.service'").stdout
    assert after.count("network-online.target") == 2, after


def test_the_factory_role_logs_in_with_its_password_over_the_socket_only(gate: Gate) -> None:
    query = f"psql {shlex.quote(SOCKET_URL)} -XAtc 'select current_user, current_database()'"
    good = sh(gate.host, f"cd / && PGPASSWORD={shlex.quote(PASSWORD)} {query}", "factory")
    assert good.stdout.strip() == "factory|factory", good.stderr
    bad = sh(gate.host, f"cd / && PGPASSWORD=wrong {query}", "factory")
    assert bad.returncode != 0 and "password authentication failed" in bad.stderr
    # Over TCP from the host itself: pg_hba.conf has no line for it (root may connect, not log in).
    tcp = sh(gate.host, f"cd / && PGPASSWORD={shlex.quote(PASSWORD)} psql 'postgresql://factory@127.0.0.1/factory' "
                        "-XAtc 'select 1'")  # fmt: skip
    assert tcp.returncode != 0 and "no pg_hba.conf entry" in tcp.stderr
    hba = sh(gate.host, "cat /etc/postgresql/15/main/pg_hba.conf").stdout
    assert hba == hostdata.pg_hba(["10.231.9.9/32"])
    keys = sh(gate.host, f"cat {layout.AUTHORIZED_KEYS}").stdout
    assert keys.startswith('from="10.231.9.9/32",restrict,command="git-shell -c') and keys.count("\n") == 1
    secrets = sh(gate.host, f"stat -c '%U %a' {layout.SECRETS_FILE} && cat {layout.SECRETS_FILE}").stdout
    assert secrets.startswith("factory 600") and f"FACTORY_DB_PASSWORD={PASSWORD}" in secrets


def test_the_factory_user_cannot_open_tcp_to_postgresql_while_root_can(gate: Gate) -> None:
    assert not connects(gate.host, "127.0.0.1", "factory")
    assert not connects(gate.host, gate.host.address, "factory")
    assert connects(gate.host, "127.0.0.1", "root")
    uid = sh(gate.host, "id -u factory").stdout.strip()
    table = sh(gate.host, "nft list table inet factory").stdout
    assert f"tcp dport 5432 meta skuid {uid} reject" in table and "ip saddr 10.231.9.9 accept" in table
    enabled = sh(gate.host, f"systemctl is-enabled {layout.NFT_UNIT} postgresql").stdout.split()
    assert enabled == ["enabled", "enabled"]


def test_factoryctl_reads_the_state_on_postgresql(gate: Gate) -> None:
    shown = sh(gate.host, f"{layout.RUN} factoryctl state show", "factory")
    assert shown.returncode == 0 and "postgresql" in shown.stdout, shown.stdout + shown.stderr
