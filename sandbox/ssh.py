"""SSH into a sandbox: its client config, the argv, and readiness checks."""

from __future__ import annotations

import socket
from pathlib import Path

from . import runner
from .defaults import SSH_PORT


def config_text(alias: str, address: str, key: Path, port: int = SSH_PORT) -> str:
    """An ssh_config block that ssh, pyinfra and testinfra (--ssh-config) all read."""
    return (
        f"Host {alias}\n"
        f"    HostName {address}\n"
        f"    Port {port}\n"
        "    User root\n"
        f"    IdentityFile {key}\n"
        "    IdentitiesOnly yes\n"
        # A throwaway host with a new address on every `up`: never pin its key.
        "    StrictHostKeyChecking no\n"
        "    UserKnownHostsFile /dev/null\n"
        "    LogLevel ERROR\n"
        "    ConnectTimeout 10\n"
        "    ServerAliveInterval 15\n"
    )


def argv(config: Path, alias: str, command: list[str] | None = None) -> list[str]:
    return ["ssh", "-F", str(config), alias, *(command or [])]


def banner(address: str, port: int = SSH_PORT, timeout: float = 1.0) -> bool:
    """True when an SSH server answers with its banner at address:port."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def run(config: Path, alias: str, command: list[str], timeout: float = 30.0) -> runner.Completed:
    """Run a command on the sandbox over ssh (not checked: the caller reads the result)."""
    return runner.run(
        ["ssh", "-F", str(config), "-o", "BatchMode=yes", alias, *command],
        timeout=timeout,
        check=False,
    )
