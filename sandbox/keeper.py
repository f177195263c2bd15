"""Keeps one systemd-nspawn machine: starts nspawn again when the machine reboots itself.

With --keep-unit, nspawn exits 133 when the machine reboots, expecting its service
manager to start it again (systemd-nspawn@.service has RestartForceExitStatus=133).
This machine runs no service manager, so this small process does it. SIGTERM is passed
on to nspawn, which powers the machine off cleanly. Standard library only: it is run as
a script (`python3 keeper.py --cgroup DIR ... -- systemd-nspawn ...`).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

REBOOT_EXIT = 133

child: subprocess.Popen[bytes] | None = None
stopping = False


def forward(signum: int, frame: object) -> None:
    global stopping
    stopping = True
    if child is not None and child.poll() is None:
        child.send_signal(signum)


def join_cgroups(paths: list[str]) -> None:
    # Runs in the child before exec: nspawn then makes payload/ and supervisor/ below it.
    pid = str(os.getpid())
    for path in paths:
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(pid)


def main(argv: list[str] | None = None) -> int:
    global child
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cgroup", action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        child = subprocess.Popen(command, preexec_fn=lambda: join_cgroups(args.cgroup))
        code = child.wait()
        if code != REBOOT_EXIT or stopping:
            return code
        print(f"--- machine rebooted itself: starting it again at {time.ctime()}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
