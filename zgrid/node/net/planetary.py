"""Zmachine network namespaces and their planetary (yggdrasil) IPv6 addresses.

Each zmachine gets its own netns. One that asks for the planetary network also gets a
veth pair: ``eth0`` inside its netns carries an address of the node's yggdrasil /64,
derived from the workload id (so it is the same after any restart), and the other end
is a port of its deployment's bridge in the node's netns. The node routes that address
to the bridge and the machine routes 200::/7 to the bridge's fe80::1, so the machine
reaches the whole planetary network and any yggdrasil peer reaches the machine.

A virtual machine gets no netns: its network card is a tap device that is a port of the
deployment's bridge, and the guest gives itself the same address and route.

Every attachment is written down (a small JSON record under ``root``) before the kernel
is touched, and every step finds what an interrupted earlier run left and finishes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from zgrid.node.errors import NetworkFailure
from zgrid.node.naming import unique_name
from zgrid.node.net import links
from zgrid.node.net.yggdrasil import Yggdrasil
from zgrid.node.primitives.base import WorkloadRef

__all__ = [
    "GATEWAY",
    "MACHINE_LINK",
    "PLANETARY",
    "Attachment",
    "PlanetaryNetwork",
    "machine_address",
    "netns_prefix",
]

PLANETARY = "200::/7"
"""The whole yggdrasil address space (node addresses 200::/8, routed subnets 300::/8)."""
GATEWAY = "fe80::1"
"""The link-local address every deployment bridge has; machines route 200::/7 to it."""
MACHINE_LINK = "eth0"
"""The name of a machine's planetary link inside its netns."""


def machine_address(subnet: str, workload_id: str) -> str:
    """The machine's address in ``subnet`` (a /64): its interface id is a digest of its id.

    Interface ids 0 (the subnet-router anycast) and 1 are never given.
    """
    network = ipaddress.IPv6Network(subnet)
    if network.prefixlen != 64:
        raise NetworkFailure(f"yggdrasil subnet {subnet} is not a /64")
    counter = 0
    while True:
        digest = hashlib.blake2b(
            f"{workload_id}\0{counter}".encode(), digest_size=8, person=b"zgrid-planetary"
        ).digest()
        interface_id = int.from_bytes(digest, "big")
        if interface_id > 1:
            return str(network.network_address + interface_id)
        counter += 1


@dataclass(frozen=True, slots=True)
class Attachment:
    """What a zmachine's runtime needs: its netns (or a VM's tap) and, with planetary, its
    IPv6."""

    netns: str
    netns_path: Path
    ipv6: str | None
    tap: str | None = None


@dataclass(frozen=True, slots=True)
class _Record:
    workload: str
    netns: str
    contract_key: str
    planetary: bool
    bridge: str | None
    host_link: str | None
    ipv6: str | None
    tap: bool = False  # a VM's: host_link is its tap and there is no netns


def netns_prefix(scope: str) -> str:
    """How every machine netns of the node of ``scope`` begins, so what one node left on a
    machine can be told from what its neighbours run."""
    return "zm" + hashlib.blake2b(scope.encode(), digest_size=2).hexdigest()


class PlanetaryNetwork:
    """Namespaces for zmachines, planetary addresses for those that ask."""

    def __init__(self, ygg: Yggdrasil, root: Path, *, scope: str) -> None:
        self._ygg = ygg
        self._root = Path(root)
        self._scope = scope
        self._lock = asyncio.Lock()

    # --- names and records --------------------------------------------------------------

    def netns_name(self, ref: WorkloadRef) -> str:
        return unique_name(netns_prefix(self._scope), self._scope, ref.id)

    def bridge_name(self, contract_key: str) -> str:
        return unique_name("zb", self._scope, contract_key)

    def _host_link(self, ref: WorkloadRef) -> str:
        return unique_name("zv", self._scope, ref.id)

    def _record_path(self, netns: str) -> Path:
        return self._root / f"{netns}.json"

    def _records(self) -> list[_Record]:
        found = []
        for path in sorted(self._root.glob("zm*.json")):
            with contextlib.suppress(OSError, ValueError, TypeError):
                found.append(_Record(**json.loads(path.read_text())))
        return found

    def _record(self, ref: WorkloadRef) -> _Record | None:
        path = self._record_path(self.netns_name(ref))
        with contextlib.suppress(FileNotFoundError):
            try:
                return _Record(**json.loads(path.read_text()))
            except (ValueError, TypeError):
                return None  # torn by a crash: the attachment is redone
        return None

    def _write(self, record: _Record) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        path = self._record_path(record.netns)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(record)) + "\n")
        os.replace(tmp, path)

    # --- attach -------------------------------------------------------------------------

    def tap_name(self, ref: WorkloadRef) -> str:
        return unique_name("zt", self._scope, ref.id)

    async def attach(
        self, ref: WorkloadRef, *, contract_key: str, planetary: bool, tap: bool = False
    ) -> Attachment:
        """Make the machine's netns (and planetary link), or with ``tap`` a VM's tap on the
        deployment's bridge; a repeat finds and finishes it."""
        async with self._lock:
            netns = self.netns_name(ref)
            ipv6 = None
            if planetary:
                await self._ygg.ensure_running()
                ipv6 = machine_address(self._ygg.subnet, ref.id)
            record = _Record(
                workload=ref.id,
                netns=netns,
                contract_key=contract_key,
                planetary=planetary,
                bridge=self.bridge_name(contract_key) if planetary else None,
                host_link=(self.tap_name(ref) if tap else self._host_link(ref))
                if planetary
                else None,
                ipv6=ipv6,
                tap=tap,
            )
            old = self._record(ref)
            if old is not None and old != record:
                await self._unplug(old)
            self._write(record)  # intent first: a crash from here on is found by present()
            if tap:
                if planetary:
                    await self._plug_tap(record)
                return Attachment(netns="", netns_path=Path(), ipv6=ipv6, tap=record.host_link)
            await links.add_netns(netns)
            if planetary:
                await self._plug(record)
            return Attachment(netns=netns, netns_path=links.netns_path(netns), ipv6=ipv6)

    async def _bridge(self, record: _Record) -> None:
        assert record.bridge
        await links.set_sysctl("net.ipv6.conf.all.forwarding", 1)
        # Addresses of the subnet that no machine has must not bounce back into yggdrasil.
        await links.replace_route(self._ygg.subnet, unreachable=True)
        await links.add_bridge(record.bridge)
        await links.add_address(record.bridge, f"{GATEWAY}/64", nodad=True)
        await links.set_up(record.bridge)

    async def _plug_tap(self, record: _Record) -> None:
        assert record.bridge and record.host_link and record.ipv6
        await self._bridge(record)
        await links.add_tap(record.host_link)
        await links.set_master(record.host_link, record.bridge)
        await links.set_up(record.host_link)
        await links.replace_route(f"{record.ipv6}/128", dev=record.bridge)

    async def _plug(self, record: _Record) -> None:
        assert record.bridge and record.host_link and record.ipv6
        netns, bridge, host_link = record.netns, record.bridge, record.host_link
        await self._bridge(record)
        # Set before the veth exists, so its inside end starts with DAD off.
        await links.set_sysctl("net.ipv6.conf.default.accept_dad", 0, netns=netns)
        await links.set_sysctl("net.ipv6.conf.all.accept_dad", 0, netns=netns)
        inside = await links.get_link(MACHINE_LINK, netns=netns)
        if inside is None or await links.get_link(host_link) is None:
            await links.delete_link(host_link)  # one end without the other is remade
            await links.delete_link(MACHINE_LINK, netns=netns)
        await links.add_veth(host_link, MACHINE_LINK, peer_netns=netns)
        await links.set_master(host_link, bridge)
        await links.set_up(host_link)
        await links.add_address(MACHINE_LINK, f"{record.ipv6}/128", netns=netns, nodad=True)
        await links.set_up(MACHINE_LINK, netns=netns)
        await links.replace_route(PLANETARY, via=GATEWAY, dev=MACHINE_LINK, netns=netns)
        await links.replace_route(f"{record.ipv6}/128", dev=bridge)

    # --- detach -------------------------------------------------------------------------

    async def detach(self, ref: WorkloadRef) -> None:
        """Remove the machine's netns, link, route, its record, and the bridge if it was last."""
        async with self._lock:
            record = self._record(ref)
            if record is not None:
                await self._unplug(record)
            else:  # no (readable) record: remove what the names alone find
                host_link = self._host_link(ref)
                link = await links.get_link(host_link)
                await links.delete_link(host_link)
                if link is not None and link.master:
                    await self._drop_bridge_if_unused(link.master, self.netns_name(ref))
            await links.delete_netns(self.netns_name(ref))
            path = self._record_path(self.netns_name(ref))
            for leftover in (path.with_name(path.name + ".tmp"), path):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()

    async def _unplug(self, record: _Record) -> None:
        """Remove the planetary side of an attachment (the netns itself stays)."""
        if record.host_link:
            await links.delete_link(record.host_link)
        if record.bridge and record.ipv6:
            if await links.get_link(record.bridge) is not None:
                await links.delete_route(f"{record.ipv6}/128", dev=record.bridge)
            await self._drop_bridge_if_unused(record.bridge, record.netns)

    async def _drop_bridge_if_unused(self, bridge: str, leaving: str) -> None:
        if any(r.bridge == bridge and r.netns != leaving for r in self._records()):
            return
        await links.delete_link(bridge)

    # --- observe ------------------------------------------------------------------------

    def host_links(self) -> dict[str, str]:
        """Each planetary machine's workload id and the host end of its veth (its traffic)."""
        return {r.workload: r.host_link for r in self._records() if r.host_link is not None}

    async def present(self) -> set[str]:
        """The ids of every workload with an attachment (also one a crash left half made)."""
        return {record.workload for record in self._records()}

    async def inspect(self, ref: WorkloadRef) -> bool:
        """Whether the machine's netns, links, address and routes are all as they should be."""
        record = self._record(ref)
        if record is not None and record.tap:
            return await self._inspect_tap(record)
        if record is None or not await links.netns_exists(record.netns):
            return False
        lo = await links.get_link("lo", netns=record.netns)
        if lo is None or not lo.up:
            return False
        if not record.planetary:
            return True
        if not await self._bridge_side(record):
            return False
        inside = await links.get_link(MACHINE_LINK, netns=record.netns)
        if inside is None or not inside.up:
            return False
        if f"{record.ipv6}/128" not in await links.addresses(MACHINE_LINK, netns=record.netns):
            return False
        inside_routes = await links.routes(netns=record.netns)
        return any(r.dst == PLANETARY and r.gateway == GATEWAY for r in inside_routes)

    async def _inspect_tap(self, record: _Record) -> bool:
        """A VM's side is inside its guest: only the node's side can be checked."""
        return not record.planetary or await self._bridge_side(record)

    async def _bridge_side(self, record: _Record) -> bool:
        """Forwarding on, the host link (veth end or tap) up on the up bridge, and the
        machine's address routed to the bridge."""
        assert record.bridge and record.host_link and record.ipv6
        if await links.get_sysctl("net.ipv6.conf.all.forwarding") != "1":
            return False
        host_end = await links.get_link(record.host_link)
        bridge = await links.get_link(record.bridge)
        if not (host_end and bridge and host_end.up and bridge.up):
            return False
        if host_end.master != record.bridge:
            return False
        return any(r.dst == record.ipv6 and r.dev == record.bridge for r in await links.routes())
