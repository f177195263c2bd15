"""The sandbox's network: a namespace, a veth pair and an nftables NAT table.

Sandbox N is 10.231.N.2/24 on `eth0` inside its namespace; the host side of the veth is
10.231.N.1, its default route. One nftables table per sandbox masquerades its traffic
out, so apt and npm inside reach the registries. Everything is named after the sandbox,
so `down` can find and remove it even without a state file.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from . import mounts, runner
from .defaults import MAX_INDEX, PRIVATE_PREFIX, SUBNET_PREFIX
from .errors import AddressInUse, SandboxError

log = logging.getLogger("sandbox")

NETNS_DIR = Path("/run/netns")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
NETNS_PREFIX = "fsb-"
# A private network's switch lives in its own namespace (privnet.py), named apart from any sandbox's.
NETWORK_NETNS_PREFIX = "fsbnet-"
FORWARD_SAVED = "ip_forward.saved"
NETNS_MARKER = "netns-dir.mounted"
TABLE_PREFIX = "factory_sandbox_"


@dataclass(frozen=True)
class NetPlan:
    """Names and addresses of one sandbox's network, all derived from (name, index)."""

    name: str
    index: int

    @property
    def netns(self) -> str:
        return NETNS_PREFIX + self.name

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns

    @property
    def host_if(self) -> str:
        return if_name(self.name)

    @property
    def subnet(self) -> str:
        return f"{SUBNET_PREFIX}.{self.index}.0/24"

    @property
    def host_addr(self) -> str:
        return f"{SUBNET_PREFIX}.{self.index}.1"

    @property
    def guest_addr(self) -> str:
        return f"{SUBNET_PREFIX}.{self.index}.2"

    @property
    def table(self) -> str:
        return TABLE_PREFIX + self.name.replace("-", "_")


def if_name(name: str) -> str:
    """An interface named after a sandbox: at most 15 characters, so a digest of the name."""
    return "fsb-" + hashlib.sha1(name.encode()).hexdigest()[:8]


def nft_script(plan: NetPlan) -> str:
    """The sandbox's nftables table: NAT out, replies back in, nothing else forwarded in.

    The private networks' range is refused at once rather than sent out to the world: a
    sandbox that is not on a network must not find its addresses somewhere else.
    """
    return f"""table ip {plan.table} {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {plan.subnet} oifname != "{plan.host_if}" masquerade
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{plan.host_if}" ip daddr {PRIVATE_PREFIX}.0.0/16 reject with icmp type net-unreachable
        iifname "{plan.host_if}" accept
        oifname "{plan.host_if}" ct state established,related accept
        oifname "{plan.host_if}" drop
    }}
}}
"""


# Pure parsers of `ip` and `nft` output.


def parse_netns_list(text: str) -> list[str]:
    """Names from `ip netns list` ("name (id: 3)" or just "name" per line)."""
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def parse_nft_tables(text: str) -> list[tuple[str, str]]:
    """(family, name) pairs from `nft list tables`."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table":
            found.append((parts[1], parts[2]))
    return found


def parse_link_names(text: str) -> list[str]:
    """Interface names from `ip -o link show` ("3: fsb-1a2b@if2: <...> ...")."""
    names = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2 and parts[1].strip():
            names.append(parts[1].strip().split("@")[0])
    return names


def parse_ipv4_addrs(text: str) -> list[tuple[str, str]]:
    """(interface, address/prefix) pairs from `ip -o -4 addr show`."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "inet":
            found.append((parts[1], parts[3]))
    return found


def index_taken(index: int, addrs: Iterable[tuple[str, str]], prefix: str = SUBNET_PREFIX) -> str | None:
    """The interface already using subnet `prefix.index.0/24` (a sandbox's, by default), if any."""
    subnet = ipaddress.ip_network(f"{prefix}.{index}.0/24")
    for ifname, cidr in addrs:
        if ipaddress.ip_interface(cidr).network.overlaps(subnet):
            return ifname
    return None


def choose_index(requested: int | None, reserved: Collection[int], addrs: list[tuple[str, str]]) -> int:
    """The subnet index for a new sandbox: the requested one if free, else the first free."""
    if requested is not None:
        if not 0 <= requested <= MAX_INDEX:
            raise SandboxError(f"--index must be between 0 and {MAX_INDEX}, not {requested}")
        holder = index_taken(requested, addrs)
        if requested in reserved or holder:
            who = f"interface {holder}" if holder else "another sandbox"
            raise AddressInUse(
                f"{SUBNET_PREFIX}.{requested}.0/24 is already used by {who}: pick another --index or leave it out"
            )
        return requested
    for index in range(MAX_INDEX + 1):
        if index not in reserved and not index_taken(index, addrs):
            return index
    raise AddressInUse(f"every subnet {SUBNET_PREFIX}.0-{MAX_INDEX}.0/24 is in use")


# Facts read from this machine.


def netns_names() -> list[str]:
    return parse_netns_list(runner.run(["ip", "netns", "list"]).stdout)


def nft_tables() -> list[tuple[str, str]]:
    return parse_nft_tables(runner.run(["nft", "list", "tables"]).stdout)


def link_names() -> list[str]:
    return parse_link_names(runner.run(["ip", "-o", "link", "show"]).stdout)


def host_addrs() -> list[tuple[str, str]]:
    return parse_ipv4_addrs(runner.run(["ip", "-o", "-4", "addr", "show"]).stdout)


def present(plan: NetPlan) -> list[str]:
    """What of this sandbox's network exists now (empty once it is torn down)."""
    found = []
    if plan.netns in netns_names():
        found.append(f"network namespace {plan.netns}")
    if plan.host_if in link_names():
        found.append(f"interface {plan.host_if}")
    if ("ip", plan.table) in nft_tables():
        found.append(f"nftables table ip {plan.table}")
    return found


# Carrying it out.


def create(plan: NetPlan, shared: Path) -> None:
    """Create namespace, veth, addresses, default route and NAT; enable forwarding.

    `shared` is the state base, where what all sandboxes share is remembered.
    """
    if not is_mount_point(NETNS_DIR):
        # `ip netns add` bind-mounts /run/netns onto itself the first time: ours to undo.
        (shared / NETNS_MARKER).touch()
    ns = ["ip", "-n", plan.netns]
    runner.run(["ip", "netns", "add", plan.netns])
    runner.run(["ip", "link", "add", plan.host_if, "type", "veth", "peer", "name", "eth0", "netns", plan.netns])
    runner.run(["ip", "addr", "add", f"{plan.host_addr}/24", "dev", plan.host_if])
    runner.run(["ip", "link", "set", plan.host_if, "up"])
    runner.run([*ns, "link", "set", "lo", "up"])
    runner.run([*ns, "addr", "add", f"{plan.guest_addr}/24", "dev", "eth0"])
    runner.run([*ns, "link", "set", "eth0", "up"])
    runner.run([*ns, "route", "add", "default", "via", plan.host_addr])
    runner.run(["nft", "-f", "-"], input=nft_script(plan))
    enable_forwarding(shared / FORWARD_SAVED)


def destroy(plan: NetPlan) -> None:
    """Remove whatever of this sandbox's network exists; doing it twice is harmless."""
    if ("ip", plan.table) in nft_tables():
        runner.run(["nft", "delete", "table", "ip", plan.table])
    if plan.host_if in link_names():
        runner.run(["ip", "link", "delete", plan.host_if])
    if plan.netns in netns_names():
        runner.run(["ip", "netns", "delete", plan.netns])


def enable_forwarding(saved: Path) -> None:
    """Turn on IPv4 forwarding, remembering that it was off so the last `down` restores it."""
    if IP_FORWARD.read_text().strip() != "1":
        saved.write_text("0\n")
        IP_FORWARD.write_text("1\n")
        log.info("enabled net.ipv4.ip_forward (restored when the last sandbox is down)")


def release_shared(shared: Path) -> None:
    """Once no sandbox or network namespace is left: forwarding as we found it, /run/netns unmounted."""
    if any(n.startswith((NETNS_PREFIX, NETWORK_NETNS_PREFIX)) for n in netns_names()):
        return
    saved = shared / FORWARD_SAVED
    if saved.exists():
        IP_FORWARD.write_text(saved.read_text())
        saved.unlink()
        log.info("restored net.ipv4.ip_forward")
    marker = shared / NETNS_MARKER
    if marker.exists():
        if is_mount_point(NETNS_DIR) and not any(NETNS_DIR.iterdir()):
            runner.run(["umount", str(NETNS_DIR)], check=False)
            with contextlib.suppress(OSError):
                NETNS_DIR.rmdir()
        marker.unlink()


def is_mount_point(path: Path) -> bool:
    return str(path) in mounts.parse_mountinfo(mounts.MOUNTINFO.read_text())
