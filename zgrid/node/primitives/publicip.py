"""The ip primitive: a public IPv4 the contract reserved on the ledger, and/or a public IPv6.

The ledger hands a node contract as many of its farm's IPv4 addresses as it asked for
(``public_ips``), and records which. The node takes them from the contract, never from the
deployment, so a deployer cannot name an address the ledger did not give it: the ip
workloads asking for IPv4, in the order of their names, take the contract's addresses in
the ledger's order. An IPv6 comes from the node's public /64. The machine that names the
ip workload (``network.public_ip``) gets the addresses on its ``pub`` link.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from zgrid.atomic import write_atomic
from zgrid.node.errors import ProvisionError
from zgrid.node.net.public import PublicAddress, PublicNetwork
from zgrid.node.primitives.base import Observed, Provisioning, ResultData, WorkloadRef
from zgrid.types import PublicIP, WorkloadType

__all__ = ["IpPrimitive", "ReservedIps"]

ReservedIps = Callable[[int], Awaitable[list[PublicAddress]]]
"""A contract's public IPv4s as the ledger recorded them, in its order."""


class IpPrimitive:
    """Public addresses of machines, one record each under ``root``."""

    def __init__(self, root: Path, *, public: PublicNetwork, reserved: ReservedIps) -> None:
        self._root = Path(root)
        self._public = public
        self._reserved = reserved

    def _path(self, workload_id: str) -> Path:
        return self._root / f"{workload_id}.json"

    def addresses(self, ref: WorkloadRef) -> tuple[PublicAddress, ...]:
        """What the ip workload ``ref`` was given (nothing if it is not provisioned)."""
        try:
            data = json.loads(self._path(ref.id).read_text())
            return tuple(PublicAddress(str(a["cidr"]), str(a["gateway"])) for a in data)
        except (OSError, ValueError, KeyError, TypeError):
            return ()

    async def provision(self, item: Provisioning) -> ResultData:
        ip = item.workload.data
        assert isinstance(ip, PublicIP)
        given: list[PublicAddress] = []
        if ip.v4:
            given.append(await self._ipv4(item))
        if ip.v6:
            given.append(self._public.ipv6_for(item.ref.id))
        self._root.mkdir(parents=True, exist_ok=True)
        document = [{"cidr": a.cidr, "gateway": a.gateway} for a in given]
        write_atomic(self._path(item.ref.id), json.dumps(document).encode())
        return _result(given)

    async def _ipv4(self, item: Provisioning) -> PublicAddress:
        asking = sorted(
            w.name
            for w in item.deployment.workloads
            if w.type == WorkloadType.IP and isinstance(w.data, PublicIP) and w.data.v4
        )
        reserved = await self._reserved(item.ref.contract_id)
        index = asking.index(item.ref.name)
        if index >= len(reserved):
            raise ProvisionError(
                f"the contract reserved {len(reserved)} public IPv4 on the ledger, but"
                f" {len(asking)} ip workloads ask for one (create the contract with"
                f" public_ips={len(asking)})"
            )
        return reserved[index]

    async def deprovision(self, ref: WorkloadRef) -> None:
        self._path(ref.id).unlink(missing_ok=True)

    async def inspect(self, ref: WorkloadRef) -> Observed:
        exists = self._path(ref.id).exists()
        return Observed(exists=exists, detail="" if exists else "its address record is gone")

    async def present(self) -> set[str]:
        return {p.stem for p in self._root.glob("*.json")} if self._root.is_dir() else set()


def _result(given: list[PublicAddress]) -> ResultData:
    v4 = next((a for a in given if ":" not in a.cidr), None)
    v6 = next((a for a in given if ":" in a.cidr), None)
    return {
        "ip": v4.cidr if v4 else "",
        "gateway": v4.gateway if v4 else "",
        "ip6": v6.cidr if v6 else "",
        "gateway6": v6.gateway if v6 else "",
    }
