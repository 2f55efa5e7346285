"""The closed vocabularies: workload types, result states, and the install order."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["INSTALL_ORDER", "RESERVED_NETWORK_NAMES", "ResultState", "WorkloadType"]


class WorkloadType(StrEnum):
    ZMACHINE = "zmachine"
    ZMOUNT = "zmount"
    VOLUME = "volume"
    ZDB = "zdb"
    NETWORK = "network"
    IP = "ip"
    GATEWAY_NAME_PROXY = "gateway-name-proxy"
    GATEWAY_FQDN_PROXY = "gateway-fqdn-proxy"


class ResultState(StrEnum):
    """What a node says about one workload."""

    INIT = "init"
    OK = "ok"
    ERROR = "error"
    PAUSED = "paused"
    DELETED = "deleted"
    UNCHANGED = "unchanged"


# Disks and networks must exist before the machines that use them, and gateways
# point at machines; removal runs this order backwards.
INSTALL_ORDER: tuple[WorkloadType, ...] = (
    WorkloadType.ZMOUNT,
    WorkloadType.VOLUME,
    WorkloadType.NETWORK,
    WorkloadType.IP,
    WorkloadType.ZDB,
    WorkloadType.ZMACHINE,
    WorkloadType.GATEWAY_NAME_PROXY,
    WorkloadType.GATEWAY_FQDN_PROXY,
)

RESERVED_NETWORK_NAMES = frozenset({"ygg", "pub"})
