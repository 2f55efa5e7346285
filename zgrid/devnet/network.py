"""The devnet's hosts: a bridge in this machine's namespace and one network namespace per node.

The root side of the bridge is ``.1`` of the devnet's /24, so the ledger, the hub and the
host's yggdrasil bound there are reachable from every node; node N is host ``.N+1``
with a default route through ``.1``. Every step checks what exists first, so `up` can
run again over a half-made network.

The farm's public segment is a second bridge, without any address of this machine's:
each node's ``eth1`` is a port of it (``--public-interface eth1``), and so is the
"internet", a namespace that is the farm's gateway (``.1`` of the public /24 and ::1 of
its /64) and the host ``.254`` of the devnet's bridge. The public /24 and /64 are
documentation ranges this machine's routes do not touch (chosen at the first `up`). The
host routes them to the "internet" through the devnet's bridge, so the devnet's "public"
addresses answer from this machine's shell while no such address, nor any packet to one,
leaves the machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import re
import socket
import subprocess
from pathlib import Path

from zgrid.devnet.errors import DevnetError
from zgrid.devnet.layout import DevnetState
from zgrid.node import links, unique_name

__all__ = [
    "GATEWAY_DOMAIN",
    "HostNetns",
    "Internet",
    "ensure_network",
    "free_prefix",
    "free_public_prefixes",
    "host_netns",
    "internet",
    "plug_host",
    "public_ranges",
    "remove_network",
]


class HostNetns:
    """The names of one node host: its netns and the root side of its veth."""

    def __init__(self, state: DevnetState, name: str, number: int) -> None:
        self.name = name
        self.number = number
        self.netns = unique_name("zgdh", state.bridge, name)
        self.veth = unique_name("zgdv", state.bridge, name)
        self.public_veth = unique_name("zgdq", state.bridge, name)  # on the public bridge
        self.address = state.node_address(number)

    @property
    def path(self) -> Path:
        return links.netns_path(self.netns)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this host's netns (nothing else of the process changed)."""
        return ["nsenter", f"--net={self.path}", *argv]


def host_netns(state: DevnetState, number: int) -> HostNetns:
    return HostNetns(state, f"node-{number}", number)


GATEWAY_DOMAIN = "devnet.test"  # RFC 2606: a name that is nowhere else
_INTERNET_HOST = 254
_INTERNET_LINK_LOCAL = "fe80::254"
_PUBLIC_LINK = "eth1"  # a node's link to the farm's segment, in its namespace
_PUBLIC_PREFIXES = ("203.0.113", "198.51.100", "192.0.2")
_PUBLIC_PREFIXES6 = ("2001:db8:113::", "2001:db8:5100::")


def public_ranges(state: DevnetState) -> list[str]:
    """The devnet's "public" networks: its farm segment's /24 and /64."""
    ranges = [f"{state.public_prefix}.0/24"]
    if state.public_prefix6:
        ranges.append(f"{state.public_prefix6}/64")
    return ranges


_ASKED_HOSTS = ("deb.debian.org", "security.debian.org", "pypi.org", "files.pythonhosted.org")


def _apt_hosts() -> set[str]:
    """The hosts this machine's package sources name."""
    found: set[str] = set()
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for source in sources:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            found.update(re.findall(r"https?://([A-Za-z0-9.-]+)", source.read_text()))
    return found


def _talked_to() -> list[ipaddress.IPv4Network]:
    """Addresses this machine reaches through its own way out: its name servers, the hosts
    its packages come from (a proxy may sit on a documentation address), its connections."""
    addresses: set[str] = set()
    with contextlib.suppress(OSError):
        addresses.update(
            re.findall(r"^nameserver\s+(\S+)", Path("/etc/resolv.conf").read_text(), re.M)
        )
    for host in sorted(_apt_hosts() | set(_ASKED_HOSTS)):
        with contextlib.suppress(OSError, UnicodeError):
            for info in socket.getaddrinfo(host, None, family=socket.AF_INET):
                addresses.add(str(info[4][0]))
    done = subprocess.run(
        ["ss", "-H", "-t", "-n", "-4"], capture_output=True, text=True, check=False
    )
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 5:
            addresses.add(fields[4].rsplit(":", 1)[0])
    found = []
    for address in addresses:
        with contextlib.suppress(ValueError):
            found.append(ipaddress.IPv4Network(address))
    return found


def free_public_prefixes() -> tuple[str, str]:
    """A documentation /24 and /64 that no route of this machine touches and holding no
    address it talks to (the machine may itself sit on one, or reach its package proxy at
    one: those are left alone), as ``(203.0.113, 2001:db8:113::)``; the /64 is "" when both
    are taken (the devnet then has no IPv6)."""
    used4 = _used_networks(4) + _talked_to()
    prefix = next(
        (
            p
            for p in _PUBLIC_PREFIXES
            if not any(ipaddress.IPv4Network(f"{p}.0/24").overlaps(n) for n in used4)
        ),
        None,
    )
    if prefix is None:
        raise DevnetError(
            "every documentation /24 (203.0.113, 198.51.100, 192.0.2) is in this machine's"
            " routes or holds an address it talks to: the devnet has none left for its farm's"
            " public addresses"
        )
    used6 = [n for n in _used_networks(6) if n.prefixlen > 0]
    prefix6 = next(
        (
            p
            for p in _PUBLIC_PREFIXES6
            if not any(ipaddress.IPv6Network(f"{p}/64").overlaps(n) for n in used6)
        ),
        "",
    )
    return prefix, prefix6


class Internet:
    """The namespace that is both the farm's gateway and the rest of the world."""

    def __init__(self, state: DevnetState) -> None:
        self.netns = unique_name("zgdi", state.bridge, "internet")
        self.veth = unique_name("zgdw", state.bridge, "internet")  # on the devnet's bridge
        self.public_veth = unique_name("zgdx", state.bridge, "internet")  # on the public one
        self.public_bridge = unique_name("zgdp", state.bridge)
        self.address = f"{state.prefix}.{_INTERNET_HOST}"

    def command(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--net={links.netns_path(self.netns)}", *argv]


def internet(state: DevnetState) -> Internet:
    return Internet(state)


async def _ensure_internet(state: DevnetState) -> None:
    world = internet(state)
    if await links.get_link(world.public_bridge) is None:
        await links.add_bridge(world.public_bridge)
    await links.set_up(world.public_bridge)
    await links.add_netns(world.netns)
    if await links.get_link(world.veth) is None:
        await links.add_veth(world.veth, "eth0", peer_netns=world.netns)
    await links.set_master(world.veth, state.bridge)
    await links.set_up(world.veth)
    await links.add_address("eth0", f"{world.address}/24", netns=world.netns)
    await links.add_address("eth0", f"{_INTERNET_LINK_LOCAL}/64", netns=world.netns, nodad=True)
    await links.set_up("eth0", netns=world.netns)
    if await links.get_link(world.public_veth) is None:
        await links.add_veth(world.public_veth, "pub0", peer_netns=world.netns)
    await links.set_master(world.public_veth, world.public_bridge)
    await links.set_up(world.public_veth)
    await links.add_address("pub0", f"{state.farm_gateway}/24", netns=world.netns)
    if state.farm_gateway6:
        await links.add_address("pub0", f"{state.farm_gateway6}/64", netns=world.netns, nodad=True)
    await links.set_up("pub0", netns=world.netns)
    await links.set_sysctl("net.ipv4.ip_forward", 1, netns=world.netns)
    await links.set_sysctl("net.ipv6.conf.all.forwarding", 1, netns=world.netns)
    for prefix in public_ranges(state):
        via = _INTERNET_LINK_LOCAL if ":" in prefix else world.address
        await links.replace_route(prefix, via=via, dev=state.bridge)


def _used_networks(family: int) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The destinations of this machine's IPv``family`` routes, in every table."""
    done = subprocess.run(
        ["ip", f"-{family}", "-j", "route", "show", "table", "all"],
        capture_output=True,
        text=True,
        check=False,
    )
    used: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    with contextlib.suppress(ValueError):
        for route in json.loads(done.stdout or "[]"):
            destination = route.get("dst", "default")
            if destination != "default":
                with contextlib.suppress(ValueError):
                    used.append(ipaddress.ip_network(destination, strict=False))
    return used


def free_prefix() -> str:
    """A 10.x.y.0/24 that no route of this machine touches, as ``10.x.y``."""
    used = _used_networks(4)
    for _ in range(2000):
        prefix = f"10.{random.randint(100, 254)}.{random.randint(0, 255)}"
        candidate = ipaddress.IPv4Network(f"{prefix}.0/24")
        if not any(candidate.overlaps(network) for network in used):
            return prefix
    raise DevnetError("no free 10.x.y.0/24 on this machine for the devnet's bridge")


async def ensure_network(state: DevnetState) -> list[HostNetns]:
    """The bridge and every node host, made where missing; returns the hosts."""
    if await links.get_link(state.bridge) is None:
        await links.add_bridge(state.bridge)
    if f"{state.gateway}/24" not in await links.addresses(state.bridge):
        await links.add_address(state.bridge, f"{state.gateway}/24")
    await links.set_up(state.bridge)
    await _ensure_internet(state)
    hosts = [host_netns(state, number) for number in range(1, state.nodes + 1)]
    for host in hosts:
        await _plug(state, host)
    return hosts


async def _plug(state: DevnetState, host: HostNetns) -> None:
    await plug_host(
        host.netns, host.veth, bridge=state.bridge, address=f"{host.address}/24",
        gateway=state.gateway,
    )  # fmt: skip
    # The node's cable to the farm's public segment: no address, the node bridges it.
    if await links.get_link(_PUBLIC_LINK, netns=host.netns) is None:
        await links.delete_link(host.public_veth)  # half a pair is remade
        await links.add_veth(host.public_veth, _PUBLIC_LINK, peer_netns=host.netns)
    await links.set_master(host.public_veth, internet(state).public_bridge)
    await links.set_up(host.public_veth)


async def plug_host(netns: str, veth: str, *, bridge: str, address: str, gateway: str) -> None:
    """A "machine" on ``bridge``: netns ``netns`` whose eth0 (the far end of ``veth``) has
    ``address`` (CIDR) and a default route via ``gateway``. Made where missing, so a repeat
    finishes a half-made one."""
    await links.add_netns(netns)  # also finds an existing one, loopback up
    if await links.get_link(veth) is None:
        await links.add_veth(veth, "eth0", peer_netns=netns)
    await links.set_master(veth, bridge)
    await links.set_up(veth)
    await links.add_address("eth0", address, netns=netns)  # `ip addr replace`: repeatable
    await links.set_up("eth0", netns=netns)
    await links.replace_route("default", via=gateway, netns=netns)


async def remove_network(state: DevnetState, *, nodes: int) -> None:
    """Delete every node host (``nodes`` of them, or more if some were added) and the bridge."""
    for number in range(1, max(nodes, state.nodes) + 1):
        host = host_netns(state, number)
        await links.delete_link(host.veth)
        await links.delete_link(host.public_veth)
        await links.delete_netns(host.netns)
    world = internet(state)
    await links.delete_link(world.veth)
    await links.delete_link(world.public_veth)
    await links.delete_netns(world.netns)
    await links.delete_link(world.public_bridge)
    await links.delete_link(state.bridge)  # its routes, the documentation ranges', go with it
