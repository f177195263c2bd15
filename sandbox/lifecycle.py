"""up, down, reboot, status: the sandbox's life, carried out step by step.

`up` records its state before it changes anything, so a failed `up` is undone by the
same teardown as `down`, and `down` works from names alone when the state is gone.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import cgroups, image, machine, mounts, net, privnet, procs, runner, state
from . import ssh as sshmod
from .defaults import (
    BOOT_TIMEOUT_S,
    POWEROFF_TIMEOUT_S,
    SYSTEM_RUNNING_TIMEOUT_S,
    TMPFS_SIZE,
    TOOLS_CHROOT,
    TOOLS_NET,
    TOOLS_NSPAWN,
    TOOLS_UP,
    cache_dir,
    state_base,
)
from .errors import AlreadyUp, BootFailed, LeftBehind, NotUp, SandboxError
from .net import NetPlan
from .state import Layout, State

log = logging.getLogger("sandbox")


@dataclass(frozen=True)
class Booted:
    """What `up` and `reboot` report."""

    state: State
    layout: Layout
    address: str
    system: str  # `systemctl is-system-running`, or "no-systemd" for the chroot fallback
    seconds: float
    baked: bool = False


def layout_of(name: str) -> Layout:
    return Layout(state_base(), state.check_name(name))


def plan_of(layout: Layout, st: State | None) -> NetPlan:
    # Every name in the plan comes from the sandbox name; only addresses need the index.
    return NetPlan(layout.name, st.index if st else 0)


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def choose_backend(requested: str) -> str:
    """nspawn when asked or available; the chroot fallback otherwise."""
    if requested != "auto":
        return requested
    if runner.which("systemd-nspawn"):
        return "nspawn"
    log.warning(
        "systemd-nspawn not found (apt-get install systemd-container): using the chroot fallback, which has no systemd"
    )
    return "chroot"


def tools_for(backend: str) -> tuple[str, ...]:
    return TOOLS_UP + (TOOLS_NSPAWN if backend == "nspawn" else TOOLS_CHROOT)


def up(
    name: str,
    *,
    backend: str = "auto",
    index: int | None = None,
    timeout: float = BOOT_TIMEOUT_S,
    tmpfs_size: str = TMPFS_SIZE,
    network: str | None = None,
    network_index: int | None = None,
) -> Booted:
    """Bring the sandbox up: a fresh one from the image, or a stopped one on its root.

    With `network`, it also joins that private network (created by its first member).
    """
    runner.require_root()
    layout = layout_of(name)
    if network is not None:
        state.check_name(network, "network")
    st = state.load(layout)
    if st is not None:
        if network is not None and network != st.network:
            on = f"on network {st.network}" if st.network else "on no network"
            raise SandboxError(f"sandbox {name} exists {on}: `down --name {name}` first to change its network")
        return _boot_existing(layout, st, timeout)
    chosen = choose_backend(backend)
    runner.require_tools(tools_for(chosen))
    start = time.monotonic()
    cache = cache_dir()
    image_path, baked = image.ensure_image(cache, image.default_recipe())
    with image.locked(layout.lock):
        if state.load(layout) is not None:
            raise AlreadyUp(f"sandbox {name} was brought up meanwhile")
        leftovers = present(layout, plan_of(layout, None), None)
        if leftovers:
            log.warning("sandbox %s: removing what an earlier run left: %s", name, "; ".join(leftovers))
            _teardown(layout, None, POWEROFF_TIMEOUT_S)
        addrs = net.host_addrs()
        chosen_index = net.choose_index(index, state.reserved_indexes(layout.base), addrs)
        member = None
        if network is not None:
            member = privnet.plan(name, chosen_index, network, network_index, state.memberships(layout.base), addrs)
        st = State(
            name=name,
            backend=chosen,
            index=chosen_index,
            image=str(image_path),
            key=str(image.key_path(cache)),
            created_at=now(),
            network=member.network if member else None,
            network_index=member.index if member else None,
            private_host=member.host if member else None,
        )
        # Saved first: whatever happens next, `down` knows what to undo.
        state.save(layout, st)
    plan = plan_of(layout, st)
    try:
        mounts.mount_tmpfs(layout.root, tmpfs_size)
        image.unpack(image_path, layout.root)
        machine.personalize(layout.root, name, Path(st.key), chosen)
        net.create(plan, layout.base)
        if member is not None:
            with image.locked(layout.lock):
                privnet.join(member)
        try:
            booted = _boot(layout, plan, st, timeout)
        except BootFailed as exc:
            if backend != "auto" or chosen != "nspawn":
                raise
            log.warning("nspawn could not boot the sandbox (%s): trying the chroot fallback", exc)
            st = state.load(layout) or st
            machine.poweroff(layout, plan, st, timeout=5)
            runner.require_tools(TOOLS_CHROOT)
            machine.personalize(layout.root, name, Path(st.key), "chroot")
            booted = _boot(layout, plan, st.replace(backend="chroot"), timeout)
    except BaseException:
        with image.locked(layout.lock):
            _teardown(layout, state.load(layout), timeout=5)
            _release_shared(layout)
        raise
    return Booted(booted.state, layout, booted.address, booted.system, time.monotonic() - start, baked)


def _boot_existing(layout: Layout, st: State, timeout: float) -> Booted:
    """`up` on a sandbox whose machine is off: boot it again on the same root."""
    plan = plan_of(layout, st)
    if machine.running(st):
        raise AlreadyUp(
            f"sandbox {layout.name} is already up at {plan.guest_addr}: "
            f"`ssh --name {layout.name}`, or `down --name {layout.name}` first"
        )
    runner.require_tools(tools_for(st.backend))
    if not mounts.mounts_under(layout.root) or not (layout.root / "etc").is_dir():
        raise SandboxError(f"sandbox {layout.name} has lost its root: `down --name {layout.name}` and `up` again")
    start = time.monotonic()
    with image.locked(layout.lock):
        if not plan.netns_path.exists() or not net.present(plan):
            privnet.leave(layout.name)
            net.destroy(plan)
            net.create(plan, layout.base)
        if st.membership is not None:
            privnet.join(st.membership)
    try:
        booted = _boot(layout, plan, st, timeout)
    except BaseException:
        # Leave it off, not half up: its root stays for another `up`, `down` removes all.
        machine.poweroff(layout, plan, state.load(layout) or st, timeout=5)
        raise
    return Booted(booted.state, layout, booted.address, booted.system, time.monotonic() - start)


def _boot(layout: Layout, plan: NetPlan, st: State, timeout: float) -> Booted:
    start = time.monotonic()
    st = machine.boot(layout, plan, st)
    state.save(layout, st)
    machine.wait_sshd(layout, plan, st, timeout)
    st = machine.find_init(st).replace(booted_at=now())
    state.save(layout, st)
    layout.ssh_config.write_text(sshmod.config_text(layout.name, plan.guest_addr, Path(st.key)))
    login = sshmod.run(layout.ssh_config, layout.name, ["true"], timeout=30)
    if not login.ok:
        raise BootFailed(f"sandbox {layout.name}: sshd answers but login fails: {login.tail()}")
    system = "no-systemd"
    if st.backend == "nspawn":
        # Wait for boot to finish, so that what the caller tests next has started.
        wait = sshmod.run(
            layout.ssh_config,
            layout.name,
            ["systemctl", "is-system-running", "--wait"],
            timeout=SYSTEM_RUNNING_TIMEOUT_S,
        )
        system = wait.stdout.strip() or "unknown"
    return Booted(st, layout, plan.guest_addr, system, time.monotonic() - start)


def reboot(name: str, *, timeout: float = BOOT_TIMEOUT_S) -> Booted:
    """Power the machine off and boot it again on the same root (its tmpfs is kept)."""
    runner.require_root()
    layout = layout_of(name)
    st = state.load(layout)
    if st is None or not machine.running(st):
        raise NotUp(f"sandbox {name} is not up: `up --name {name}` first")
    start = time.monotonic()
    plan = plan_of(layout, st)
    machine.poweroff(layout, plan, st, POWEROFF_TIMEOUT_S)
    booted = _boot_existing(layout, st, timeout)
    return Booted(booted.state, layout, booted.address, booted.system, time.monotonic() - start)


def poweroff(name: str, *, timeout: float = POWEROFF_TIMEOUT_S) -> bool:
    """Stop the machine but keep its root and network (`up` boots it again)."""
    runner.require_root()
    layout = layout_of(name)
    st = state.load(layout)
    if st is None or not machine.running(st):
        raise NotUp(f"sandbox {name} is not up")
    return machine.poweroff(layout, plan_of(layout, st), st, timeout)


def down(name: str, *, timeout: float = POWEROFF_TIMEOUT_S) -> bool:
    """Remove the sandbox entirely; True if there was anything to remove."""
    runner.require_root()
    runner.require_tools(TOOLS_NET)
    layout = layout_of(name)
    with image.locked(layout.lock):
        try:
            st = state.load(layout)
        except SandboxError as exc:
            log.warning("%s", exc)
            st = None
        plan = plan_of(layout, st)
        existed = st is not None or bool(present(layout, plan, st))
        _teardown(layout, st, timeout)
        _release_shared(layout)
        left = present(layout, plan, st)
    if left:
        raise LeftBehind(f"sandbox {name}: could not remove {'; '.join(left)}")
    return existed


def _teardown(layout: Layout, st: State | None, timeout: float) -> None:
    """Power off, kill stragglers, unmount, delete network and state. Idempotent."""
    plan = plan_of(layout, st)
    if st is not None:
        machine.poweroff(layout, plan, st, timeout)
    cgroups.kill(layout.name)
    procs.kill_members(machine.marks(layout, plan, st))
    cgroups.remove(layout.name)
    mounts.unmount_tree(layout.dir)
    privnet.leave(layout.name)
    net.destroy(plan)
    shutil.rmtree(machine.NSPAWN_PROPAGATE / layout.name, ignore_errors=True)
    if not mounts.mounts_under(layout.dir):
        shutil.rmtree(layout.dir, ignore_errors=True)


def _release_shared(layout: Layout) -> None:
    """What sandboxes share goes with the last of them: a private network with its last
    member; IPv4 forwarding and nspawn's tmpfs with the last sandbox."""
    for network in privnet.release_empty():
        log.info("removed private network %s: its last member is gone", network)
    net.release_shared(layout.base)
    if not state.names(layout.base):
        machine.release_nspawn_host(layout.base)


def present(layout: Layout, plan: NetPlan, st: State | None) -> list[str]:
    """What of this sandbox exists on the machine: mounts, network, processes, files."""
    found = [f"mount {m}" for m in mounts.mounts_under(layout.dir)]
    found += net.present(plan)
    found += privnet.present(layout.name, st.network if st else None)
    found += cgroups.present(layout.name)
    found += [f"process {pid}" for pid in procs.members(machine.marks(layout, plan, st))]
    if layout.dir.exists():
        found.append(f"directory {layout.dir}")
    return found


def ssh_argv(name: str, command: list[str]) -> list[str]:
    """The ssh command line that reaches a running sandbox."""
    layout = layout_of(name)
    st = state.load(layout)
    if st is None or not machine.running(st):
        raise NotUp(f"sandbox {name} is not up: `up --name {name}` first")
    return sshmod.argv(layout.ssh_config, name, command)


def status(name: str) -> dict[str, Any]:
    """What the sandbox is and how to reach it, as data (read-only)."""
    layout = layout_of(name)
    st = state.load(layout)
    if st is None:
        return {"name": name, "state": "absent"}
    plan = plan_of(layout, st)
    member = st.membership
    up_now = machine.running(st)
    info: dict[str, Any] = {
        "name": name,
        "state": "running" if up_now else "stopped",
        "backend": st.backend,
        "systemd": st.backend == "nspawn",
        "address": plan.guest_addr,
        "port": 22,
        "user": "root",
        "ssh_config": str(layout.ssh_config),
        "key": st.key,
        "root": str(layout.root),
        "state_dir": str(layout.dir),
        "netns": plan.netns,
        "host_if": plan.host_if,
        "nft_table": f"ip {plan.table}",
        "network": member.network if member else None,
        "private_address": member.address if member else None,
        "network_netns": member.netns if member else None,
        "image": st.image,
        "pid": st.launcher_pid if up_now else None,
        "init_pid": st.init_pid if up_now else None,
        "created_at": st.created_at,
        "booted_at": st.booted_at,
        "boots": st.boots,
    }
    if st.backend == "chroot":
        info["note"] = "chroot fallback: no systemd, so systemctl and services cannot be tested"
    if up_now and st.backend == "nspawn":
        done = sshmod.run(layout.ssh_config, name, ["systemctl", "is-system-running"], 15)
        info["system"] = done.stdout.strip() or "unreachable"
    return info


def names() -> list[str]:
    return state.names(state_base())
