"""What `zgrid devnet status` reports: each part, where it answers, whether it runs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ComponentStatus", "DevnetStatus", "NodeStatus"]


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    url: str
    pid: int | None
    log: str

    @property
    def running(self) -> bool:
        return self.pid is not None


@dataclass(frozen=True)
class NodeStatus:
    name: str
    node_id: int | None  # on the ledger, once the node joined
    address: str  # the host's address on the devnet bridge
    account: str  # the node's key on the ledger
    netns: str
    data: str
    pid: int | None
    log: str

    @property
    def running(self) -> bool:
        return self.pid is not None


@dataclass(frozen=True)
class DevnetStatus:
    dir: str
    bridge: str
    subnet: str
    ledger_url: str
    hub_url: str
    explorer_url: str
    components: list[ComponentStatus] = field(default_factory=list)
    nodes: list[NodeStatus] = field(default_factory=list)
    public_subnet: str = ""  # the farm's public segment (documentation range)
    gateway_domain: str = ""  # node 1 serves gateways under it
    gateway_ip: str = ""
    ca: str = ""  # the CA gateways' certificates chain to (curl --cacert)
    internet_netns: str = ""  # the "internet": `ip netns exec` it to be a visitor from outside

    @property
    def running(self) -> bool:
        """Every part runs."""
        return all(c.running for c in self.components) and all(n.running for n in self.nodes)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        for component, row in zip(self.components, document["components"], strict=True):
            row["running"] = component.running
        for node, row in zip(self.nodes, document["nodes"], strict=True):
            row["running"] = node.running
        document["running"] = self.running
        return document
