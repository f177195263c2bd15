"""Private networks between sandboxes, like a VPS provider's: members reach each other directly.

Network NET is a bridge `br0` alone in its own network namespace `fsbnet-NET`: a switch
this machine neither routes nor filters (its nftables tables and br_netfilter never see
a frame), so members talk with their real source addresses. Each member gets a second
veth pair: `eth1` in its namespace with 10.232.K.H/24, the other end a port of the
bridge named after the member. Like eth0, eth1 is configured from outside, so it
survives the machine's reboots. The namespace goes with the last member.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from . import net, runner
from .defaults import MAX_NETWORK_INDEX, PRIVATE_PREFIX
from .errors import AddressInUse, SandboxError

BRIDGE = "br0"
GUEST_IF = "eth1"
FIRST_HOST = 2
LAST_HOST = 254


@dataclass(frozen=True)
class Membership:
    """One sandbox on one network: the names and the address, all derived from these four."""

    network: str
    member: str  # the sandbox's name
    index: int  # the network's subnet: 10.232.INDEX.0/24
    host: int  # the member's address: 10.232.INDEX.HOST

    @property
    def netns(self) -> str:
        return net.NETWORK_NETNS_PREFIX + self.network

    @property
    def subnet(self) -> str:
        return f"{PRIVATE_PREFIX}.{self.index}.0/24"

    @property
    def address(self) -> str:
        return f"{PRIVATE_PREFIX}.{self.index}.{self.host}"

    @property
    def port(self) -> str:
        # In the network's namespace, so it never meets the member's eth0 peer of the same name.
        return net.if_name(self.member)

    @property
    def member_netns(self) -> str:
        return net.NETNS_PREFIX + self.member


# Deciding: pure functions of what the other sandboxes' states and this machine say.


def choose_index(
    network: str, requested: int | None, others: Iterable[Membership], addrs: list[tuple[str, str]]
) -> int:
    """The network's subnet index: its members' if it has any, else the requested or first free one."""
    indexes = {m.network: m.index for m in others}
    if network in indexes:
        index = indexes[network]
        if requested is not None and requested != index:
            raise SandboxError(
                f"network {network} is already {PRIVATE_PREFIX}.{index}.0/24: leave out --network-index or give {index}"
            )
        holder = net.index_taken(index, addrs, PRIVATE_PREFIX)
        if holder:
            raise AddressInUse(f"network {network}'s subnet {PRIVATE_PREFIX}.{index}.0/24 is now used by {holder}")
        return index
    used = {index: name for name, index in indexes.items()}
    if requested is not None:
        if not 0 <= requested <= MAX_NETWORK_INDEX:
            raise SandboxError(f"--network-index must be between 0 and {MAX_NETWORK_INDEX}, not {requested}")
        holder = net.index_taken(requested, addrs, PRIVATE_PREFIX)
        if requested in used or holder:
            who = f"interface {holder}" if holder else f"network {used[requested]}"
            raise AddressInUse(
                f"{PRIVATE_PREFIX}.{requested}.0/24 is already used by {who}: "
                "pick another --network-index or leave it out"
            )
        return requested
    for index in range(MAX_NETWORK_INDEX + 1):
        if index not in used and not net.index_taken(index, addrs, PRIVATE_PREFIX):
            return index
    raise AddressInUse(f"every subnet {PRIVATE_PREFIX}.0-{MAX_NETWORK_INDEX}.0/24 is in use")


def choose_host(sandbox_index: int, taken: Collection[int]) -> int:
    """Sandbox N is .N+2 (as its eth0 is 10.231.N.2), or the first free from .2 if that will not do."""
    preferred = sandbox_index + FIRST_HOST
    if preferred <= LAST_HOST and preferred not in taken:
        return preferred
    for host in range(FIRST_HOST, LAST_HOST + 1):
        if host not in taken:
            return host
    raise AddressInUse(f"no address left on this network ({LAST_HOST - FIRST_HOST + 1} members)")


def plan(
    member: str,
    sandbox_index: int,
    network: str,
    requested_index: int | None,
    others: Collection[Membership],
    addrs: list[tuple[str, str]],
) -> Membership:
    """Where a new member goes: the network's subnet and a free address on it."""
    index = choose_index(network, requested_index, others, addrs)
    taken = {m.host for m in others if m.network == network}
    return Membership(network, member, index, choose_host(sandbox_index, taken))


def join_steps(m: Membership, netns_exists: bool, links: Collection[str]) -> list[list[str]]:
    """The commands that put the member on its network, given what exists (none if it is on it)."""
    inside = ["ip", "-n", m.netns]
    steps = []
    if not netns_exists:
        steps.append(["ip", "netns", "add", m.netns])
    if BRIDGE not in links:
        steps += [[*inside, "link", "add", BRIDGE, "type", "bridge"], [*inside, "link", "set", BRIDGE, "up"]]
    if m.port not in links:
        guest = ["ip", "-n", m.member_netns]
        steps += [
            [*inside, "link", "add", m.port, "type", "veth", "peer", "name", GUEST_IF, "netns", m.member_netns],
            [*inside, "link", "set", m.port, "master", BRIDGE],
            [*inside, "link", "set", m.port, "up"],
            [*guest, "addr", "add", f"{m.address}/24", "dev", GUEST_IF],
            [*guest, "link", "set", GUEST_IF, "up"],
        ]
    return steps


def ports(links: Iterable[str]) -> list[str]:
    """The members' ports among the links of a network's namespace."""
    return [name for name in links if name not in ("lo", BRIDGE)]


# Facts read from this machine.


def network_namespaces() -> list[str]:
    return [n for n in net.netns_names() if n.startswith(net.NETWORK_NETNS_PREFIX)]


def links_in(netns: str) -> list[str]:
    return net.parse_link_names(runner.run(["ip", "-n", netns, "-o", "link", "show"]).stdout)


def present(member: str, network: str | None) -> list[str]:
    """This member's port on any network, and its network if no member is left on it."""
    port = net.if_name(member)
    found = []
    for netns in network_namespaces():
        links = links_in(netns)
        if port in links:
            found.append(f"interface {port} in network namespace {netns}")
        elif netns == net.NETWORK_NETNS_PREFIX + (network or "") and not ports(links):
            found.append(f"network namespace {netns} (no member left)")
    return found


# Carrying it out. Callers hold the sandboxes' lock, so a network is never removed while
# a member is joining it.


def join(m: Membership) -> None:
    """Put the member on its network, creating the network if it is the first (idempotent)."""
    exists = m.netns in net.netns_names()
    for argv in join_steps(m, exists, links_in(m.netns) if exists else []):
        runner.run(argv)


def leave(member: str) -> None:
    """Take the member's port off every network (both ends of a veth go at once, unlike a
    namespace, whose interfaces the kernel removes some time after `ip netns delete`)."""
    port = net.if_name(member)
    for netns in network_namespaces():
        if port in links_in(netns):
            runner.run(["ip", "-n", netns, "link", "delete", port])


def release_empty() -> list[str]:
    """Remove every network no member is on any more; return their names."""
    removed = []
    for netns in network_namespaces():
        if not ports(links_in(netns)):
            runner.run(["ip", "netns", "delete", netns])
            removed.append(netns.removeprefix(net.NETWORK_NETNS_PREFIX))
    return removed
