"""Helpers for host tests: bring a sandbox host up and down through its CLI, reach it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

# Debian packages CI installs for these tests: which program comes from which.
NEEDED = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "nft": "nftables",
    "ip": "iproute2",
    "zstd": "zstd",
    "ssh": "openssh-client",
}
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])


def missing_reason() -> str | None:
    """Why host tests cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "host tests need root (mounts, network namespaces, nftables)"
    missing = sorted({pkg for tool, pkg in NEEDED.items() if not shutil.which(tool, path=SBIN_PATH)})
    if missing:
        return f"host tests need: apt-get install {' '.join(missing)}"
    return None


def sandbox_cli(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `python -m sandbox ARGS` from the repository root, as a user would."""
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"sandbox {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done


@dataclass(frozen=True)
class SandboxHost:
    """A running sandbox: what pyinfra and testinfra need to reach it."""

    name: str  # also the ssh alias and the hostname
    ssh_config: Path
    address: str
    private_address: str | None = None  # on its private network (eth1), if it is on one

    @property
    def hostspec(self) -> str:
        return f"ssh://{self.name}"

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(sandbox_cli("status", "--name", self.name, "--json").stdout)
        return data

    def ssh(self, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a shell command line on the machine as root (not checked)."""
        return subprocess.run(
            ["ssh", "-F", str(self.ssh_config), "-o", "BatchMode=yes", self.name, command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def testinfra(self) -> Any:
        import testinfra

        return testinfra.get_host(self.hostspec, ssh_config=str(self.ssh_config))


def run_name(prefix: str) -> str:
    """A sandbox name unique to this test run (and short: it is also a hostname)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return f"{prefix}{os.getpid()}{worker.replace('gw', 'w')}"


@contextlib.contextmanager
def sandbox_up(name: str, *extra: str, keep: bool = False) -> Iterator[SandboxHost]:
    """Bring a sandbox up for the duration of the block; take it down after (unless `keep`)."""
    try:
        sandbox_cli("up", "--name", name, *extra)
        yield host_of(name)
    finally:
        if not keep:
            sandbox_cli("down", "--name", name, timeout=120)


def host_of(name: str) -> SandboxHost:
    """The running sandbox `name`, as `status --json` describes it."""
    info = json.loads(sandbox_cli("status", "--name", name, "--json").stdout)
    return SandboxHost(
        name=name,
        ssh_config=Path(info["ssh_config"]),
        address=info["address"],
        private_address=info.get("private_address"),
    )


@contextlib.contextmanager
def sandboxes_up(names: Sequence[str], network: str | None, *extra: str) -> Iterator[list[SandboxHost]]:
    """Bring several sandboxes up, all on one private network (none if `network` is None),
    for the duration of the block; take every one down after, even if an `up` failed."""
    on = ["--network", network] if network else []
    try:
        for name in names:
            sandbox_cli("up", "--name", name, *on, *extra)
        yield [host_of(name) for name in names]
    finally:
        failures = []
        for name in reversed(names):
            done = sandbox_cli("down", "--name", name, timeout=120, check=False)
            if done.returncode != 0:
                failures.append(f"down --name {name}: {done.stderr.strip()}")
        if failures:
            raise AssertionError("; ".join(failures))
