"""The network primitive: this node's part of a deployment's private WireGuard network.

A network workload gets, on this node:

* a namespace of its own (the network's router) holding ``gw0``, the subnet's first
  address, which every machine of the subnet uses as its gateway, and the WireGuard link
  to the other nodes' parts, with a route to each peer's allowed IPs through it;
* a bridge in the node's namespace, without any address, joined to ``gw0`` by a veth
  pair: machines plug into it (a container's veth, a VM's tap), so the subnet is one
  layer-2 segment that the node's own network stack never routes.

Nothing else is routed into or out of the router, so two networks on one node, even of
one twin, cannot reach each other. An update applies the new peers with ``wg syncconf``
and replaces the routes, without touching the machines' links. Each step is recorded
(a JSON file under ``root``) before it is made, and every step finds what an interrupted
earlier run left.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import ipaddress
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from zgrid.atomic import write_atomic
from zgrid.identity import wireguard_public_key
from zgrid.node.errors import NetworkFailure, ProvisionError
from zgrid.node.naming import machine_mac, unique_name
from zgrid.node.net import links, wireguard
from zgrid.node.primitives.base import Observed, Provisioning, ResultData, WorkloadRef
from zgrid.types import Network

__all__ = [
    "PRIVATE_LINK",
    "PRIVATE_MTU",
    "ROUTER_LINK",
    "MachinePort",
    "NetworkPrimitive",
    "network_netns_prefix",
]

ROUTER_LINK = "gw0"
"""The router's end of its bridge link, holding the subnet's gateway address."""
PRIVATE_LINK = "eth1"
"""A container's link to its private network, inside its own namespace."""
PRIVATE_MTU = 1420
"""A machine's MTU on a private network: what fits in one WireGuard packet."""


def network_netns_prefix(scope: str) -> str:
    """How every network namespace of the node of ``scope`` begins."""
    return "zn" + hashlib.blake2b(scope.encode(), digest_size=2).hexdigest()


@dataclass(frozen=True, slots=True)
class _Record:
    workload: str
    netns: str
    bridge: str
    bridge_link: str  # the node's end of the pair whose other end is gw0
    wireguard: str
    ip_range: str
    subnet: str
    port: int
    routes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MachinePort:
    """A machine's place on a private network: its address, and the network's facts."""

    network: str  # the network workload's name
    ip: str
    prefix: int
    gateway: str
    ip_range: str
    host_link: str  # the veth end or tap on the network's bridge
    mac: str
    mtu: int = PRIVATE_MTU


class NetworkPrimitive:
    """Private networks: a router namespace, a bridge and a WireGuard link each."""

    def __init__(self, root: Path, *, scope: str) -> None:
        self._root = Path(root)
        self._scope = scope
        self._lock = asyncio.Lock()

    # --- names and records --------------------------------------------------------------

    def netns_name(self, ref: WorkloadRef) -> str:
        return unique_name(network_netns_prefix(self._scope), self._scope, ref.id)

    def _names(self, ref: WorkloadRef) -> tuple[str, str, str]:
        return (
            unique_name("zx", self._scope, ref.id),
            unique_name("zy", self._scope, ref.id),
            unique_name("zw", self._scope, ref.id),
        )

    def _path(self, workload_id: str) -> Path:
        return self._root / f"{workload_id}.json"

    def _record(self, workload_id: str) -> _Record | None:
        try:
            data = json.loads(self._path(workload_id).read_text())
            data["routes"] = tuple(data["routes"])
            return _Record(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError):
            return None  # torn by a crash: the names alone find what to remove

    def _write(self, record: _Record) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        document = json.dumps(asdict(record)) + "\n"
        write_atomic(self._path(record.workload), document.encode(), sync=False)

    # --- the Primitive interface -----------------------------------------------------------

    async def provision(self, item: Provisioning) -> ResultData:
        network = item.workload.data
        assert isinstance(network, Network)
        ref = item.ref
        async with self._lock:
            await self._check_port(ref, network.wireguard_listen_port)
            bridge, bridge_link, wg = self._names(ref)
            wanted = tuple(
                sorted({allowed for peer in network.peers for allowed in peer.allowed_ips})
            )
            old = self._record(ref.id)
            record = _Record(
                workload=ref.id,
                netns=self.netns_name(ref),
                bridge=bridge,
                bridge_link=bridge_link,
                wireguard=wg,
                ip_range=network.ip_range,
                subnet=network.subnet,
                port=network.wireguard_listen_port,
                routes=tuple(sorted(set(wanted) | set(old.routes if old else ()))),
            )
            self._write(record)  # intent first: a crash from here on is found by present()
            try:
                await self._router(record)
                await wireguard.ensure_interface(wg, record.netns)
                await wireguard.configure(
                    wg,
                    private_key=network.wireguard_private_key,
                    port=network.wireguard_listen_port,
                    peers=[
                        wireguard.WireguardPeer(
                            peer.wireguard_public_key, tuple(peer.allowed_ips), peer.endpoint
                        )
                        for peer in network.peers
                    ],
                )
                for route in wanted:
                    await links.replace_route(route, dev=wg, netns=record.netns)
                for route in set(record.routes) - set(wanted):
                    await links.delete_route(route, dev=wg, netns=record.netns)
            except NetworkFailure as exc:
                raise ProvisionError(f"network {ref.name}: {exc}") from exc
            self._write(dataclasses.replace(record, routes=wanted))
        gateway = _gateway(network.subnet)
        return {
            "subnet": network.subnet,
            "gateway": gateway,
            "wireguard_public_key": wireguard_public_key(network.wireguard_private_key),
            "wireguard_listen_port": network.wireguard_listen_port,
        }

    async def update(self, item: Provisioning) -> ResultData:
        """New peers or routes, applied in place: the machines keep their links."""
        return await self.provision(item)

    async def deprovision(self, ref: WorkloadRef) -> None:
        async with self._lock:
            bridge, bridge_link, wg = self._names(ref)
            netns = self.netns_name(ref)
            await wireguard.delete_interface(wg, netns)
            await links.delete_link(bridge_link)
            await links.delete_link(bridge)
            await links.delete_netns(netns)
            self._path(ref.id).unlink(missing_ok=True)

    async def inspect(self, ref: WorkloadRef) -> Observed:
        record = self._record(ref.id)
        if record is None:
            return Observed(exists=False)
        if not await links.netns_exists(record.netns):
            return Observed(exists=False)
        if not await wireguard.interface_alive(record.wireguard, record.netns):
            return Observed(exists=True, healthy=False, detail="its WireGuard link is gone")
        bridge = await links.get_link(record.bridge)
        router = await links.get_link(ROUTER_LINK, netns=record.netns)
        if bridge is None or not bridge.up or router is None or not router.up:
            return Observed(exists=True, healthy=False, detail="its bridge is gone or down")
        return Observed(exists=True)

    async def present(self) -> set[str]:
        if not self._root.is_dir():
            return set()
        return {path.stem for path in self._root.glob("*.json")}

    # --- machines ---------------------------------------------------------------------------

    async def plug(
        self, network: WorkloadRef, machine: WorkloadRef, ip: str, *, netns: str | None
    ) -> MachinePort:
        """Give ``machine`` the address ``ip`` on ``network``: a veth into its namespace
        ``netns`` (a container), or with ``netns`` None a tap for its VM."""
        record = self._record(network.id)
        if record is None or not await links.netns_exists(record.netns):
            raise ProvisionError(
                f"network {network.name!r} is not on this node (a machine's network must be a"
                " network workload of its own deployment)"
            )
        subnet = ipaddress.IPv4Network(record.subnet)
        address = ipaddress.IPv4Address(ip)
        gateway = _gateway(record.subnet)
        if address not in subnet or address in (
            subnet.network_address,
            subnet.broadcast_address,
            ipaddress.IPv4Address(gateway),
        ):
            raise ProvisionError(
                f"ip {ip} is not a machine address of network {network.name!r}'s subnet"
                f" {record.subnet} (its .0, gateway {gateway} and broadcast are not)"
            )
        host_link = self.port_name(network, machine)
        mac = machine_mac("52:54:01", machine.id, network.id)
        try:
            if netns is None:
                await links.add_tap(host_link)
            else:
                if await links.get_link(PRIVATE_LINK, netns=netns) is None:
                    await links.delete_link(host_link)  # half a pair is remade
                await links.add_veth(host_link, PRIVATE_LINK, peer_netns=netns)
                await links.set_link(PRIVATE_LINK, mac=mac, mtu=PRIVATE_MTU, netns=netns)
                await links.add_address(PRIVATE_LINK, f"{ip}/{subnet.prefixlen}", netns=netns)
                await links.set_up(PRIVATE_LINK, netns=netns)
                await links.replace_route(record.ip_range, via=gateway, netns=netns)
            await links.set_master(host_link, record.bridge)
            await links.set_up(host_link)
        except NetworkFailure as exc:
            raise ProvisionError(f"cannot plug the machine into {network.name!r}: {exc}") from exc
        return MachinePort(
            network=network.name,
            ip=ip,
            prefix=subnet.prefixlen,
            gateway=gateway,
            ip_range=record.ip_range,
            host_link=host_link,
            mac=mac,
        )

    def ip_range(self, network: WorkloadRef) -> str | None:
        """The whole range (/16) of ``network``'s part on this node, or None if it has none."""
        record = self._record(network.id)
        return None if record is None else record.ip_range

    def port_name(self, network: WorkloadRef, machine: WorkloadRef) -> str:
        """The machine's link on the network's bridge (a veth end or a tap)."""
        return unique_name("zp", self._scope, machine.id, network.id)

    async def unplug(self, host_links: list[str]) -> None:
        for name in host_links:
            await links.delete_link(name)

    async def plugged(self, host_links: list[str]) -> bool:
        """Whether each of these machine links is up on a bridge."""
        for name in host_links:
            link = await links.get_link(name)
            if link is None or not link.up or not link.master:
                return False
        return True

    # --- the router -------------------------------------------------------------------------

    async def _router(self, record: _Record) -> None:
        netns = record.netns
        await links.add_netns(netns)
        await links.set_sysctl("net.ipv4.ip_forward", 1, netns=netns)
        if await links.get_link(ROUTER_LINK, netns=netns) is None:
            await links.delete_link(record.bridge_link)  # half a pair is remade
        await links.add_bridge(record.bridge)
        await links.add_veth(record.bridge_link, ROUTER_LINK, peer_netns=netns)
        await links.set_master(record.bridge_link, record.bridge)
        await links.set_up(record.bridge_link)
        await links.set_up(record.bridge)
        subnet = ipaddress.IPv4Network(record.subnet)
        await links.add_address(
            ROUTER_LINK, f"{_gateway(record.subnet)}/{subnet.prefixlen}", netns=netns
        )
        await links.set_up(ROUTER_LINK, netns=netns)

    async def _check_port(self, ref: WorkloadRef, port: int) -> None:
        for path in self._root.glob("*.json") if self._root.is_dir() else ():
            other = self._record(path.stem)
            if other is not None and other.workload != ref.id and other.port == port:
                raise ProvisionError(
                    f"the WireGuard listen port {port} is already used on this node by another"
                    " network; pick another port"
                )


def _gateway(subnet: str) -> str:
    return str(ipaddress.IPv4Network(subnet).network_address + 1)
