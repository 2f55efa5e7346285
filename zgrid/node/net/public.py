"""The node's link to its farm's public network, and machines' ``pub`` links on it.

The farmer names the interface of the node that is wired to the farm's public segment
(``--public-interface``). The node makes it a port of a bridge of its own, so machines
with a public IP join that segment directly, as if they were cabled to the farm's
switch: a container gets a veth named ``pub`` in its namespace with its address and a
default route through the farm's gateway; a VM gets a tap whose card it finds by its MAC.

A gateway node also has an address of its own on that bridge (its public config). It
keeps its default route where it was (the node reaches the ledger that way) and answers
from the public address through the farm's gateway, by a rule for that source address.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from zgrid.node.errors import NetworkFailure, NodeConfigError, ProvisionError
from zgrid.node.naming import machine_mac, unique_name
from zgrid.node.net import links

__all__ = [
    "PUBLIC_LINK",
    "PublicAddress",
    "PublicNetwork",
    "PublicPort",
    "PublicSettings",
    "public_settings",
]

PUBLIC_LINK = "pub"
"""A container's link to the public network, inside its own namespace (FORMATS.md reserves
the name ``pub``)."""
_ANSWER_TABLE = "201"  # the node's own public replies leave by this routing table
_RULE_PRIORITY = 1000


@dataclass(frozen=True, slots=True)
class PublicAddress:
    """One public address with its prefix and the farm gateway it routes through."""

    cidr: str  # e.g. 203.0.113.10/24
    gateway: str

    @property
    def ip(self) -> str:
        return self.cidr.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class PublicPort:
    """A machine's link on the public bridge: the veth end or tap, and the card's MAC."""

    host_link: str
    mac: str
    addresses: tuple[PublicAddress, ...]


class PublicNetwork:
    """The public bridge of the node of ``scope``, over its ``interface`` to the farm."""

    def __init__(self, settings: PublicSettings, *, scope: str) -> None:
        self.interface = settings.interface
        self.bridge = unique_name("zb", scope, "public")
        self._scope = scope
        self._own = settings.own
        # Machines' IPv6 come from the node's own /64 on the farm's segment.
        self.ipv6_network = (
            str(ipaddress.ip_interface(settings.ipv6.cidr).network) if settings.ipv6 else ""
        )
        self.ipv6_gateway = settings.ipv6.gateway if settings.ipv6 else ""

    async def ensure(self) -> None:
        """The bridge up with the interface as its port and the node's own addresses on it."""
        try:
            if await links.get_link(self.interface) is None:
                raise NetworkFailure(f"the public interface {self.interface!r} does not exist")
            await links.add_bridge(self.bridge)
            await links.set_master(self.interface, self.bridge)
            await links.set_up(self.interface)
            await links.set_up(self.bridge)
            for address in self._own:
                await links.add_address(self.bridge, address.cidr, nodad=":" in address.cidr)
                await links.replace_route(
                    "default", via=address.gateway, dev=self.bridge, table=_ANSWER_TABLE
                )
                await links.ensure_source_rule(address.ip, _ANSWER_TABLE, priority=_RULE_PRIORITY)
        except NetworkFailure as exc:
            raise NetworkFailure(f"the node's public network cannot be set up: {exc}") from exc

    def port_name(self, machine_id: str) -> str:
        return unique_name("zq", self._scope, machine_id)

    def ipv6_for(self, machine_id: str) -> PublicAddress:
        """The machine's IPv6 in the farm's /64: its card's MAC in the host part, the same
        after every restart, so it does not move while the machine lives."""
        if not self.ipv6_network or not self.ipv6_gateway:
            raise ProvisionError(
                "this node has no public IPv6 (its farmer gave it no --public-ip6)"
            )
        network = ipaddress.IPv6Network(self.ipv6_network, strict=False)
        mac = bytes.fromhex(self.mac_for(machine_id).replace(":", ""))
        host = int.from_bytes(mac, "big") | 0x0200_0000_0000_0000
        address = network.network_address + host
        return PublicAddress(f"{address}/{network.prefixlen}", self.ipv6_gateway)

    def mac_for(self, machine_id: str) -> str:
        return machine_mac("52:54:02", machine_id, "public")

    async def plug(
        self, machine_id: str, addresses: tuple[PublicAddress, ...], *, netns: str | None
    ) -> PublicPort:
        """The machine on the public segment with ``addresses``: a veth into its namespace
        ``netns`` (a container), or with ``netns`` None a tap for its VM."""
        host_link = self.port_name(machine_id)
        mac = self.mac_for(machine_id)
        try:
            if netns is None:
                await links.add_tap(host_link)
            else:
                if await links.get_link(PUBLIC_LINK, netns=netns) is None:
                    await links.delete_link(host_link)  # half a pair is remade
                await links.add_veth(host_link, PUBLIC_LINK, peer_netns=netns)
                await links.set_link(PUBLIC_LINK, mac=mac, netns=netns)
                for address in addresses:
                    await links.add_address(
                        PUBLIC_LINK, address.cidr, netns=netns, nodad=":" in address.cidr
                    )
                await links.set_up(PUBLIC_LINK, netns=netns)
                for address in addresses:
                    await links.replace_route("default", via=address.gateway, netns=netns)
            await links.set_master(host_link, self.bridge)
            await links.set_up(host_link)
        except NetworkFailure as exc:
            raise ProvisionError(f"cannot plug the machine into the public network: {exc}") from exc
        return PublicPort(host_link=host_link, mac=mac, addresses=addresses)

    async def unplug(self, machine_id: str) -> None:
        await links.delete_link(self.port_name(machine_id))

    async def plugged(self, machine_id: str) -> bool:
        link = await links.get_link(self.port_name(machine_id))
        return link is not None and link.up and link.master == self.bridge


@dataclass(frozen=True, slots=True)
class PublicSettings:
    """What the farmer told a node of its public network (`zgrid node run --public-*`)."""

    interface: str
    ipv4: PublicAddress | None = None  # the node's own (a gateway node's)
    ipv6: PublicAddress | None = None  # the node's own; its /64 also gives machines theirs
    domain: str = ""

    @property
    def own(self) -> tuple[PublicAddress, ...]:
        return tuple(a for a in (self.ipv4, self.ipv6) if a is not None)


_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _address(cidr: str, gateway: str, *, version: int, flag: str) -> PublicAddress | None:
    if not cidr and not gateway:
        return None
    if not cidr or not gateway:
        raise NodeConfigError(f"--public-{flag} and its gateway go together; give both or neither")
    try:
        interface = ipaddress.ip_interface(cidr)
        via = ipaddress.ip_address(gateway)
    except ValueError as exc:
        raise NodeConfigError(f"--public-{flag}: {exc}") from None
    if interface.version != version or via.version != version:
        raise NodeConfigError(f"--public-{flag} {cidr} via {gateway} must be IPv{version}")
    if interface.network.prefixlen == interface.max_prefixlen:
        raise NodeConfigError(f"--public-{flag} {cidr} needs the prefix of its network (/24 …)")
    if via not in interface.network or via == interface.ip:
        raise NodeConfigError(
            f"the public gateway {gateway} is not another address of {interface.network}"
        )
    return PublicAddress(str(interface), str(via))


def public_settings(
    interface: str,
    *,
    ip: str = "",
    gateway: str = "",
    ip6: str = "",
    gateway6: str = "",
    domain: str = "",
) -> PublicSettings:
    """The node's public settings from its flags, or NodeConfigError naming the bad one."""
    if not interface:
        raise NodeConfigError("public addresses need --public-interface (the farm's segment)")
    ipv4 = _address(ip, gateway, version=4, flag="ip")
    ipv6 = _address(ip6, gateway6, version=6, flag="ip6")
    domain = domain.strip().lower().rstrip(".")
    if domain and not _DOMAIN.fullmatch(domain):
        raise NodeConfigError(f"--domain {domain!r} is not a domain name")
    if domain and ipv4 is None and ipv6 is None:
        raise NodeConfigError("--domain is for gateway nodes: give the node --public-ip too")
    return PublicSettings(interface=interface, ipv4=ipv4, ipv6=ipv6, domain=domain)
