"""The machine: preparing its root, booting it (nspawn or chroot), powering it off.

nspawn runs the image's systemd as PID 1; the chroot fallback runs our small init
(guest_init.py) with sshd and cron only. Both live in the sandbox's network namespace.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from . import cgroups, image, mounts, procs, runner
from . import ssh as sshmod
from .errors import BootFailed
from .net import NetPlan
from .state import Layout, State

log = logging.getLogger("sandbox")

GUEST_INIT = "/usr/local/sbin/factory-sandbox-init"
HOST_RESOLV = Path("/etc/resolv.conf")
SYSTEMD_RESOLV = Path("/run/systemd/resolve/resolv.conf")
GUEST_ENV = {"LANG": "C.UTF-8", "TERM": "vt220"}
# nspawn's own runtime directory on the host (created by nspawn where systemd is not PID 1).
NSPAWN_RUN = Path("/run/systemd/nspawn")
NSPAWN_PROPAGATE = NSPAWN_RUN / "propagate"
PROPAGATE_MARKER = "nspawn-propagate.mounted"


def nspawn_argv(layout: Layout, plan: NetPlan) -> list[str]:
    return [
        "systemd-nspawn",
        "--boot",
        f"--directory={layout.root}",
        f"--machine={layout.name}",
        # This machine does not run systemd: nothing to register with, no unit to create.
        "--register=no",
        "--keep-unit",
        f"--network-namespace-path={plan.netns_path}",
        # Root on a VPS manages its own firewall (the deploy's nftables table): only in its own netns.
        "--capability=CAP_NET_ADMIN",
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
        "--console=read-only",
    ]


def chroot_argv(layout: Layout, plan: NetPlan) -> list[str]:
    return [
        "nsenter",
        f"--net={plan.netns_path}",
        "--",
        "unshare",
        "--mount",
        "--pid",
        "--uts",
        "--ipc",
        "--fork",
        "--propagation",
        "private",
        "--",
        "chroot",
        str(layout.root),
        "/usr/bin/python3",
        GUEST_INIT,
    ]


def resolv_conf(host_text: str) -> str:
    """The host's resolv.conf without loopback name servers (unreachable from the guest)."""
    lines = []
    for line in host_text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and (parts[1].startswith("127.") or parts[1] == "::1"):
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def guest_resolv_conf() -> str:
    text = resolv_conf(HOST_RESOLV.read_text())
    if "nameserver" not in text and SYSTEMD_RESOLV.exists():
        text = resolv_conf(SYSTEMD_RESOLV.read_text())
    return text


def personalize(root: Path, name: str, key: Path, backend: str) -> None:
    """Make the unpacked image this sandbox: hostname, machine id, DNS, key, init."""
    image.write(root, "/etc/hostname", f"{name}\n", 0o644)
    image.write(root, "/etc/hosts", image.hosts_file(name), 0o644)
    image.write(root, "/etc/machine-id", uuid.uuid4().hex + "\n", 0o444)
    image.write(root, "/etc/resolv.conf", guest_resolv_conf(), 0o644)
    image.install_key(root, key)
    if backend == "chroot":
        source = Path(__file__).with_name("guest_init.py")
        image.write(root, GUEST_INIT, source.read_text(), 0o755)


def prepare_nspawn_host(layout: Layout) -> None:
    """Give nspawn a tmpfs for propagate/: on a disk file system it refuses to clean
    propagate/NAME up, and so cannot restart a machine that reboots itself."""
    if str(NSPAWN_PROPAGATE) in mounts.parse_mountinfo(mounts.MOUNTINFO.read_text()):
        return
    NSPAWN_PROPAGATE.mkdir(parents=True, exist_ok=True)
    runner.run(["mount", "-t", "tmpfs", "-o", "mode=755,size=16M", "tmpfs", str(NSPAWN_PROPAGATE)])
    (layout.base / PROPAGATE_MARKER).touch()


def release_nspawn_host(base: Path) -> None:
    """Once no sandbox is left: unmount our propagate/ tmpfs, drop nspawn's empty dirs."""
    marker = base / PROPAGATE_MARKER
    if marker.exists():
        mounts.unmount_tree(NSPAWN_PROPAGATE)
        marker.unlink()
    for path in (NSPAWN_PROPAGATE, NSPAWN_RUN / "locks", NSPAWN_RUN, NSPAWN_RUN.parent):
        with contextlib.suppress(OSError):
            path.rmdir()  # only if empty: never anything that is not ours


def keeper_argv(layout: Layout, plan: NetPlan) -> list[str]:
    """nspawn under our keeper, which starts it again when the machine reboots itself."""
    keeper = Path(__file__).with_name("keeper.py")
    cgroup_args = [arg for d in cgroups.create(layout.name) for arg in ("--cgroup", str(d))]
    return [sys.executable, str(keeper), *cgroup_args, "--", *nspawn_argv(layout, plan)]


def boot(layout: Layout, plan: NetPlan, state: State) -> State:
    """Start the machine in the background; return the state with its launcher."""
    if state.backend == "nspawn":
        prepare_nspawn_host(layout)
        argv = keeper_argv(layout, plan)
    else:
        argv = chroot_argv(layout, plan)
    with open(layout.console_log, "a") as console:
        console.write(f"--- boot {state.boots + 1} ({state.backend}) at {time.ctime()}\n")
    proc = runner.spawn(argv, layout.console_log, GUEST_ENV)
    return state.replace(
        launcher_pid=proc.pid,
        launcher_start=procs.start_time(proc.pid),
        init_pid=None,
        init_start=None,
        pidns=None,
        boots=state.boots + 1,
    )


def running(state: State) -> bool:
    return procs.alive(state.launcher_pid, state.launcher_start)


def console_tail(layout: Layout, lines: int = 6) -> str:
    try:
        text = layout.console_log.read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())


def wait_sshd(
    layout: Layout,
    plan: NetPlan,
    state: State,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Wait until sshd answers on the machine's port 22, or fail saying why."""
    deadline = clock() + timeout
    while not sshmod.banner(plan.guest_addr):
        if not running(state):
            raise BootFailed(f"sandbox {layout.name}: the machine stopped while booting: {console_tail(layout)}")
        if clock() > deadline:
            raise BootFailed(
                f"sandbox {layout.name}: sshd on {plan.guest_addr}:22 did not answer within "
                f"{timeout:.0f}s (console: {layout.console_log}): {console_tail(layout)}"
            )
        time.sleep(0.2)


def find_init(state: State) -> State:
    """Record the machine's PID 1: the first process below the launcher in a new pid namespace."""
    launcher = state.launcher_pid
    if launcher is None:
        return state
    own = procs.ns_inode(launcher, "pid")
    queue = procs.children(launcher)
    while queue:
        pid = queue.pop(0)
        pidns = procs.ns_inode(pid, "pid")
        if pidns is not None and pidns != own:
            return state.replace(init_pid=pid, init_start=procs.start_time(pid), pidns=pidns)
        queue += procs.children(pid)
    return state


def marks(layout: Layout, plan: NetPlan, state: State | None) -> procs.Marks:
    """How to recognise every process of this sandbox, launcher or not.

    Only live facts count: the kernel reuses a dead namespace's inode number for the
    next new namespace, which may well be another sandbox's.
    """
    netns = plan.netns_path.stat().st_ino if plan.netns_path.exists() else None
    launcher = pidns = None
    if state is not None:
        if running(state):
            launcher = state.launcher_pid
        if procs.alive(state.init_pid, state.init_start):
            pidns = state.pidns  # its PID 1 lives, so this namespace is still ours
    return procs.Marks(launcher=launcher, pidns=pidns, netns=netns, root=str(layout.root))


def poweroff(layout: Layout, plan: NetPlan, state: State, timeout: float) -> bool:
    """Shut the machine down cleanly if it will, else kill it; True if it went cleanly."""
    clean = True
    if running(state):
        assert state.launcher_pid is not None
        if state.backend == "nspawn":
            # The keeper passes SIGTERM on to nspawn, which turns it into SIGRTMIN+3 for
            # systemd: an orderly poweroff.
            procs.signal_all([state.launcher_pid], signal.SIGTERM)
        elif state.init_pid is not None and procs.alive(state.init_pid, state.init_start):
            # `unshare --fork` ignores SIGTERM itself: signal the namespace's PID 1.
            procs.signal_all([state.init_pid], signal.SIGTERM)
        clean = procs.wait_gone(state.launcher_pid, state.launcher_start, timeout)
        if not clean:
            log.warning("sandbox %s did not power off within %.0fs: killing it", layout.name, timeout)
    cgroups.kill(layout.name)
    left = procs.kill_members(marks(layout, plan, state))
    if left:
        log.warning("sandbox %s: processes survived SIGKILL: %s", layout.name, left)
    if state.launcher_pid:
        procs.reap(state.launcher_pid)
    shutil.rmtree(NSPAWN_PROPAGATE / layout.name, ignore_errors=True)
    cgroups.remove(layout.name)
    return clean
