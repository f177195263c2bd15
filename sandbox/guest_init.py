#!/usr/bin/python3
"""PID 1 of a chroot-fallback sandbox (no systemd): mounts, hostname, sshd, cron, reaping.

Copied into the guest as /usr/local/sbin/factory-sandbox-init and run by the guest's
own python3 inside `unshare --pid --mount --uts --ipc --fork` + chroot. Standard
library only. SIGTERM stops every process of the namespace and exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

SSHD = ["/usr/sbin/sshd", "-D", "-e"]
CRON = ["/usr/sbin/cron", "-f"]
STOP_GRACE_S = 5.0

MOUNTS = [
    # (type, source, target, options)
    ("proc", "proc", "/proc", "nosuid,nodev,noexec"),
    ("sysfs", "sysfs", "/sys", "ro,nosuid,nodev,noexec"),
    ("devtmpfs", "devtmpfs", "/dev", "nosuid"),
    ("devpts", "devpts", "/dev/pts", "newinstance,ptmxmode=0666,mode=620,gid=5"),
    ("tmpfs", "tmpfs", "/dev/shm", "nosuid,nodev,mode=1777"),
    ("tmpfs", "tmpfs", "/run", "nosuid,nodev,mode=755"),
]


class StopRequested(Exception):
    """Raised by the SIGTERM handler: a blocked waitpid() would otherwise just resume."""


def say(text: str) -> None:
    print(f"factory-sandbox-init: {text}", file=sys.stderr, flush=True)


def setup() -> None:
    for fstype, source, target, options in MOUNTS:
        os.makedirs(target, exist_ok=True)
        subprocess.run(["mount", "-t", fstype, "-o", options, source, target], check=True)
    # A new devpts instance needs /dev/ptmx to point into it, or ssh gets no terminal.
    subprocess.run(["mount", "--bind", "/dev/pts/ptmx", "/dev/ptmx"], check=True)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    with open("/etc/hostname") as f:
        hostname = f.read().strip()
    with open("/proc/sys/kernel/hostname", "w") as f:
        f.write(hostname)


def on_term(signum: int, frame: object) -> None:
    raise StopRequested


def stop_all() -> None:
    """TERM everything in the namespace, then KILL what is left."""
    say("stopping")
    os.kill(-1, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline:
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        time.sleep(0.1)
    os.kill(-1, signal.SIGKILL)


def main() -> int:
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    setup()
    services = {"sshd": SSHD, "cron": CRON}
    running: dict[int, str] = {}
    for service, argv in services.items():
        if os.path.exists(argv[0]):
            running[subprocess.Popen(argv).pid] = service
    say("up (sshd, cron; no systemd)")
    try:
        while True:
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                time.sleep(0.5)
                continue
            # Orphans of ssh sessions are reaped here too; only our services restart.
            exited = running.pop(pid, None)
            if exited:
                say(f"{exited} exited; starting it again")
                time.sleep(1)
                running[subprocess.Popen(services[exited]).pid] = exited
    except StopRequested:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
