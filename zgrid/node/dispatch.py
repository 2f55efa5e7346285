"""The node's dispatch table: which primitive makes each workload type (built in one place)."""

from __future__ import annotations

from collections.abc import Callable

from zgrid.node.primitives.base import Primitive
from zgrid.node.primitives.gateway import GatewayPrimitive
from zgrid.node.primitives.network import NetworkPrimitive
from zgrid.node.primitives.publicip import IpPrimitive
from zgrid.node.primitives.volume import VolumePrimitive
from zgrid.node.primitives.zdb import ZdbPrimitive
from zgrid.node.primitives.zmachine import ZMachinePrimitive
from zgrid.node.primitives.zmount import ZMountPrimitive
from zgrid.node.zdbserver import ZdbServer
from zgrid.types import WorkloadType

__all__ = ["build_primitives"]


def build_primitives(
    *,
    machines: ZMachinePrimitive,
    zdb: ZdbServer,
    addresses: Callable[[], list[str]],
    networks: NetworkPrimitive | None = None,
    ips: IpPrimitive | None = None,
    gateways: GatewayPrimitive | None = None,
) -> dict[WorkloadType, Primitive]:
    """Workload type → primitive; types missing here are refused with a clear message."""
    table: dict[WorkloadType, Primitive] = {
        WorkloadType.ZMOUNT: ZMountPrimitive(machines.disks),
        WorkloadType.VOLUME: VolumePrimitive(machines.disks),
        WorkloadType.ZDB: ZdbPrimitive(zdb, addresses=addresses),
        WorkloadType.ZMACHINE: machines,
    }
    if networks is not None:
        table[WorkloadType.NETWORK] = networks
    if ips is not None:
        table[WorkloadType.IP] = ips
    if gateways is not None:
        table[WorkloadType.GATEWAY_NAME_PROXY] = gateways
        table[WorkloadType.GATEWAY_FQDN_PROXY] = gateways
    return table
