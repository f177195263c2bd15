"""`python -m sandbox`: wires the commands to lifecycle functions and prints results."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence

from . import image, lifecycle, runner
from .defaults import BACKENDS, BOOT_TIMEOUT_S, POWEROFF_TIMEOUT_S, TMPFS_SIZE, cache_dir
from .defaults import default_name as _default_name
from .errors import SandboxError

log = logging.getLogger("sandbox")


def cmd_bake(args: argparse.Namespace) -> int:
    """Bake the Debian image (only if its recipe changed, unless --force)."""
    runner.require_root()
    start = time.monotonic()
    path, baked = image.ensure_image(cache_dir(), image.default_recipe(), force=args.force)
    verb = "baked" if baked else "cached"
    print(f"{verb}: {path} ({path.stat().st_size / 1e6:.0f} MB, {time.monotonic() - start:.1f}s)")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Bring a sandbox up (bakes the image first if needed); boots a stopped one again."""
    booted = lifecycle.up(
        args.name,
        backend=args.backend,
        index=args.index,
        timeout=args.timeout,
        tmpfs_size=args.tmpfs_size,
        network=args.network,
        network_index=args.network_index,
    )
    print_booted(booted, "up")
    return 0


def cmd_reboot(args: argparse.Namespace) -> int:
    """Power the machine off and boot it again on the same root."""
    print_booted(lifecycle.reboot(args.name, timeout=args.timeout), "rebooted")
    return 0


def cmd_poweroff(args: argparse.Namespace) -> int:
    """Stop the machine, keeping its root and network; `up` boots it again."""
    clean = lifecycle.poweroff(args.name, timeout=args.timeout)
    print(f"sandbox {args.name} is off" + ("" if clean else " (killed: no clean poweroff)"))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Remove the sandbox: machine, tmpfs, namespace, veth, nftables table, state."""
    existed = lifecycle.down(args.name, timeout=args.timeout)
    print(f"sandbox {args.name} is down" if existed else f"sandbox {args.name} was not up")
    return 0


def cmd_ssh(args: argparse.Namespace) -> int:
    """Open a shell on the sandbox, or run a command: `ssh -- CMD...`."""
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    argv = lifecycle.ssh_argv(args.name, command)
    log.debug("exec %s", " ".join(argv))
    sys.stdout.flush()
    os.execvp(argv[0], argv)
    return 0  # not reached


def cmd_status(args: argparse.Namespace) -> int:
    """Show whether the sandbox is up, its address and how to reach it."""
    names = lifecycle.names() if args.all else [args.name]
    infos = [lifecycle.status(name) for name in names]
    if args.json:
        print(json.dumps(infos if args.all else infos[0], indent=2))
        return 0
    if not infos:
        print("no sandbox")
    for info in infos:
        print_status(info)
    return 0


def print_booted(booted: lifecycle.Booted, verb: str) -> None:
    st, layout = booted.state, booted.layout
    kind = "systemd (nspawn)" if st.backend == "nspawn" else "chroot fallback, no systemd"
    baked = ", image baked" if booted.baked else ""
    member = st.membership
    private = f", {member.address} on network {member.network}" if member else ""
    print(
        f"sandbox {st.name} is {verb}: Debian 12, {kind}, {booted.address}{private}, "
        f"system {booted.system}, {booted.seconds:.1f}s{baked}"
    )
    py = "python -m sandbox"
    print(f"  ssh:       {py} ssh --name {st.name}   (or: ssh -F {layout.ssh_config} {st.name})")
    print(f"  testinfra: pytest --hosts=ssh://{st.name} --ssh-config={layout.ssh_config}")
    print(f"  pyinfra:   hosts = [({st.name!r}, {{'ssh_config_file': '{layout.ssh_config}'}})]")
    print(f"  down:      {py} down --name {st.name}")


def print_status(info: dict[str, object]) -> None:
    if info["state"] == "absent":
        print(f"{info['name']}: not up")
        return
    print(f"{info['name']}: {info['state']} ({info['backend']})")
    keys = ("system", "address", "network", "private_address", "ssh_config", "root", "netns", "nft_table")
    for key in (*keys, "pid", "booted_at", "boots", "note"):
        if info.get(key) is not None:
            print(f"  {key + ':':17} {info[key]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="A throwaway Debian 12 host on this machine that behaves like the VPS.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    sub = parser.add_subparsers(dest="command_name", required=True, metavar="COMMAND")

    def add(name: str, func: object) -> argparse.ArgumentParser:
        doc = (func.__doc__ or "").strip().splitlines()[0]
        p = sub.add_parser(name, help=doc, description=doc)
        p.set_defaults(func=func)
        return p

    def named(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--name",
            default=_default_name(),
            help="sandbox name, also its hostname and ssh alias (default: %(default)s)",
        )

    p = add("bake", cmd_bake)
    p.add_argument("--force", action="store_true", help="bake even if the image is cached")

    p = add("up", cmd_up)
    named(p)
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="nspawn (systemd) or chroot (no systemd); auto prefers nspawn",
    )
    p.add_argument("--index", type=int, default=None, help="use subnet 10.231.INDEX.0/24 (default: the first free one)")
    p.add_argument(
        "--timeout", type=float, default=BOOT_TIMEOUT_S, help="seconds to wait for sshd (default: %(default)s)"
    )
    p.add_argument("--tmpfs-size", default=TMPFS_SIZE, help="size of the root tmpfs")
    p.add_argument(
        "--network",
        default=None,
        help="also join this private network (eth1, 10.232.K.0/24): members reach each other directly",
    )
    p.add_argument(
        "--network-index",
        type=int,
        default=None,
        help="a new network's subnet 10.232.INDEX.0/24 (default: the first free one)",
    )

    for name, func, default in (
        ("down", cmd_down, POWEROFF_TIMEOUT_S),
        ("poweroff", cmd_poweroff, POWEROFF_TIMEOUT_S),
        ("reboot", cmd_reboot, BOOT_TIMEOUT_S),
    ):
        p = add(name, func)
        named(p)
        p.add_argument(
            "--timeout", type=float, default=default, help="seconds before giving up waiting (default: %(default)s)"
        )

    p = add("ssh", cmd_ssh)
    named(p)
    p.add_argument("command", nargs=argparse.REMAINDER, help="command to run (after --)")

    p = add("status", cmd_status)
    named(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--all", action="store_true", help="every sandbox on this machine")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="sandbox: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.func(args)
    except SandboxError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Our reader (e.g. `| head`) went away: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code
