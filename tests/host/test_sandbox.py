"""The sandbox host tool, proven on this machine: a Debian 12 host with systemd as PID 1,
its own address, sshd on port 22, registries reachable, reboots that keep its root, and a
`down` that leaves nothing behind."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sandbox_helpers import SandboxHost, missing_reason, run_name, sandbox_cli, sandbox_up, sandboxes_up

pytestmark = [
    pytest.mark.host,
    pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or ""),
]


def test_machine_boots_systemd_to_running(sandbox_host: SandboxHost) -> None:
    done = sandbox_host.ssh("systemctl is-system-running --wait", timeout=90)
    assert done.stdout.strip() in ("running", "degraded"), done.stdout + done.stderr


def test_testinfra_over_ssh_sees_sshd_on_22_and_systemd_as_pid_1(sandbox_host: SandboxHost) -> None:
    host = sandbox_host.testinfra()
    assert host.socket("tcp://0.0.0.0:22").is_listening
    assert host.process.get(pid=1).comm == "systemd"
    assert host.system_info.distribution == "debian"
    assert host.system_info.release.startswith("12")
    assert host.check_output("hostname") == sandbox_host.name
    assert f"127.0.1.1\t{sandbox_host.name}\n" in host.file("/etc/hosts").content_string
    assert not host.file("/usr/sbin/policy-rc.d").exists
    for package in ("openssh-server", "python3", "sudo", "cron", "curl", "iproute2", "procps"):
        assert host.package(package).is_installed, package


def test_machine_has_its_own_address_in_its_own_namespace(sandbox_host: SandboxHost) -> None:
    inside = sandbox_host.ssh("ip -o -4 addr show dev eth0").stdout
    assert f"inet {sandbox_host.address}/24" in inside
    outside = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True)
    assert f"inet {sandbox_host.address}/" not in outside.stdout


def test_apt_inside_reaches_the_registry(sandbox_host: SandboxHost) -> None:
    done = sandbox_host.ssh("apt-get update -q", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "bookworm-security" in done.stdout and "bookworm-updates" in done.stdout


def test_https_inside_trusts_this_machines_ca_also_under_sudo(sandbox_host: SandboxHost) -> None:
    done = sandbox_host.ssh("curl -sS -o /dev/null -w '%{http_code}' https://registry.npmjs.org/pm2", timeout=120)
    assert done.stdout.strip() == "200", done.stderr
    env = sandbox_host.ssh("sudo -H -n env").stdout
    assert "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt" in env


PROBE_UNIT = """[Unit]
Description=sandbox test probe
[Service]
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
"""


def wait_for_boot(host: SandboxHost, timeout: float = 90) -> str:
    """Poll until the machine answers over ssh after a reboot; return its system state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = host.ssh("systemctl is-system-running --wait", timeout=60)
        if done.returncode in (0, 1) and done.stdout.strip():
            return done.stdout.strip()
        time.sleep(0.5)
    raise AssertionError(f"{host.name} did not come back within {timeout}s")


def test_reboot_keeps_the_root_and_brings_services_back(sandbox_host: SandboxHost) -> None:
    setup = sandbox_host.ssh(
        f"printf '{PROBE_UNIT}' > /etc/systemd/system/sandbox-probe.service"
        " && systemctl enable --now sandbox-probe.service && touch /root/kept /run/gone"
    )
    assert setup.returncode == 0, setup.stderr
    boots = sandbox_host.status()["boots"]
    try:
        sandbox_cli("reboot", "--name", sandbox_host.name, timeout=180)
        assert sandbox_host.status()["boots"] == boots + 1
        assert wait_for_boot(sandbox_host) in ("running", "degraded")
        after = sandbox_host.ssh("systemctl is-active sandbox-probe.service; ls /root/kept; ls /run/gone")
        assert after.stdout.split("\n")[:2] == ["active", "/root/kept"], after.stdout + after.stderr
        assert "No such file" in after.stderr  # /run is a fresh tmpfs after a boot

        # The machine reboots itself (as `pyinfra server.reboot` makes it): it comes back too.
        sandbox_host.ssh("touch /run/gone; systemctl reboot")
        time.sleep(1)
        assert wait_for_boot(sandbox_host) in ("running", "degraded")
        again = sandbox_host.ssh("systemctl is-active sandbox-probe.service; test ! -e /run/gone && echo rebooted")
        assert again.stdout.split() == ["active", "rebooted"], again.stdout + again.stderr
        assert sandbox_host.status()["state"] == "running"
    finally:
        sandbox_host.ssh(
            "systemctl disable --now sandbox-probe.service; rm -f /etc/systemd/system/sandbox-probe.service /root/kept"
        )


# Leaving nothing behind, checked from outside the tool.


def namespace_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def live_processes_of(netns: int | None, pidns: int | None, root: str) -> list[str]:
    """Running (not zombie) processes in these namespaces or naming this root."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            nets = os.readlink(entry / "ns" / "net")
            pids = os.readlink(entry / "ns" / "pid")
        except OSError:
            continue
        if state == "Z":
            continue
        if (netns and nets == f"net:[{netns}]") or (pidns and pids == f"pid:[{pidns}]") or root in cmdline:
            found.append(f"{entry.name} {cmdline[:80]}")
    return found


def leftovers(info: dict[str, Any], netns: int | None, pidns: int | None) -> list[str]:
    found = []
    mounts = Path("/proc/self/mountinfo").read_text()
    if info["state_dir"] in mounts:
        found.append("a mount under the state directory")
    if info["netns"] in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split():
        found.append(f"network namespace {info['netns']}")
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    if info["nft_table"].split()[1] in tables:
        found.append(f"nftables table {info['nft_table']}")
    if info["host_if"] in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout:
        found.append(f"interface {info['host_if']}")
    if Path(info["state_dir"]).exists():
        found.append(f"directory {info['state_dir']}")
    for hierarchy in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup"):
        if Path(hierarchy, "factory-sandbox", info["name"]).exists():
            found.append(f"cgroup {hierarchy}/factory-sandbox/{info['name']}")
    found += live_processes_of(netns, pidns, info["root"])
    return found


def test_poweroff_then_up_boots_the_same_root_and_down_leaves_nothing() -> None:
    name = run_name("life")
    try:
        sandbox_cli("up", "--name", name)
        info = json.loads(sandbox_cli("status", "--name", name, "--json").stdout)
        assert info["state"] == "running" and info["system"] in ("running", "degraded")
        host = SandboxHost(name, Path(info["ssh_config"]), info["address"])
        assert host.ssh("touch /root/kept").returncode == 0

        sandbox_cli("poweroff", "--name", name)
        assert json.loads(sandbox_cli("status", "--name", name, "--json").stdout)["state"] == "stopped"
        sandbox_cli("up", "--name", name)
        assert host.ssh("ls /root/kept").returncode == 0

        info = json.loads(sandbox_cli("status", "--name", name, "--json").stdout)
        netns = namespace_inode(f"/run/netns/{info['netns']}")
        pidns = namespace_inode(f"/proc/{info['init_pid']}/ns/pid")
        assert netns and pidns
    finally:
        down = sandbox_cli("down", "--name", name, timeout=120)
    assert down.stdout.strip() == f"sandbox {name} is down"
    assert leftovers(info, netns, pidns) == []
    again = sandbox_cli("down", "--name", name)
    assert again.stdout.strip() == f"sandbox {name} was not up"


def test_chroot_fallback_runs_sshd_without_systemd_and_leaves_nothing() -> None:
    name = run_name("chr")
    with sandbox_up(name, "--backend", "chroot") as host:
        info = host.status()
        assert info["backend"] == "chroot" and info["systemd"] is False
        assert "no systemd" in info["note"]
        done = host.ssh("ps -o comm= -p 1; hostname; test -t 0 || echo notty")
        assert done.stdout.split() == ["python3", name, "notty"], done.stdout + done.stderr
        assert host.testinfra().socket("tcp://0.0.0.0:22").is_listening
        netns = namespace_inode(f"/run/netns/{info['netns']}")
        pidns = namespace_inode(f"/proc/{info['init_pid']}/ns/pid")
    assert leftovers(info, netns, pidns) == []


def error_of(*args: str) -> str:
    done = sandbox_cli(*args, check=False)
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return lines[0]


def test_mistakes_get_one_line_errors(sandbox_host: SandboxHost) -> None:
    assert "is already up" in error_of("up", "--name", sandbox_host.name)
    assert "is not up" in error_of("ssh", "--name", "nosuchbox", "--", "true")
    assert "is not up" in error_of("reboot", "--name", "nosuchbox")
    assert "bad sandbox name" in error_of("up", "--name", "Bad_Name")
    index = int(sandbox_host.address.split(".")[2])
    name = run_name("idx")
    assert "already used" in error_of("up", "--name", name, "--index", str(index))
    assert sandbox_cli("down", "--name", name).stdout.strip() == f"sandbox {name} was not up"


# Private networks: members reach each other directly, nobody else reaches them.

# Connects, prints "open" and the first line the server sends, or "failed" and why.
PROBE = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as s:
        print("open", s.recv(64).decode(errors="replace").strip())
except OSError as exc:
    print("failed", type(exc).__name__)
"""
# Answers every connection on ADDRESS:8765 with the address it came from.
ECHO_PEER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8765))
s.listen()
while True:
    c, peer = s.accept()
    c.sendall(peer[0].encode() + b"\\n")
    c.close()
"""


def probe(host: SandboxHost, address: str | None, port: int) -> str:
    done = host.ssh(f"python3 -c {shlex.quote(PROBE)} {address} {port}", timeout=30)
    return done.stdout.strip() or done.stderr.strip()


def test_private_network_members_reach_each_other_by_their_own_address_and_nobody_else_does() -> None:
    network = run_name("net")
    with sandboxes_up([run_name("pa"), run_name("pb")], network) as (a, b), sandbox_up(run_name("pc")) as c:
        infos = [host.status() for host in (a, b, c)]
        assert [(i["network"], i["private_address"]) for i in infos] == [
            (network, a.private_address),
            (network, b.private_address),
            (None, None),
        ]
        assert a.private_address and b.private_address and a.private_address != b.private_address
        assert a.private_address.rsplit(".", 1)[0] == b.private_address.rsplit(".", 1)[0]
        assert f"inet {a.private_address}/24" in a.ssh("ip -o -4 addr show dev eth1").stdout

        listen = f"nohup timeout 120 python3 -c {shlex.quote(ECHO_PEER)} {b.private_address} >/dev/null 2>&1 &"
        assert b.ssh(listen).returncode == 0
        deadline = time.monotonic() + 10
        while (seen := probe(a, b.private_address, 8765)).startswith("failed") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert seen == f"open {a.private_address}"  # no NAT between members: pg_hba can trust it
        assert probe(b, a.private_address, 22).startswith("open SSH-2.0")

        # Not a member: neither member's private address is there (not even out in the world).
        assert probe(c, b.private_address, 8765).startswith("failed")
        assert probe(c, a.private_address, 22).startswith("failed")
        assert probe(c, b.private_address, 22).startswith("failed")

        # eth1 is configured from outside, like eth0: a reboot keeps it.
        sandbox_cli("reboot", "--name", a.name, timeout=180)
        assert f"inet {a.private_address}/24" in a.ssh("ip -o -4 addr show dev eth1").stdout
        assert probe(a, b.private_address, 22).startswith("open SSH-2.0")

    for info in infos:
        assert leftovers(info, None, None) == [], info["name"]
    assert f"fsbnet-{network}" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
