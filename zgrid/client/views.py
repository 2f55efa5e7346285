"""What `zgrid ls` and `zgrid show` print: deployments and their workloads as they run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["DeploymentSummary", "DeploymentView", "WorkloadView"]


@dataclass(frozen=True)
class WorkloadView:
    key: str  # "<kind>/<entry>/<replica>"
    name: str  # in its deployment
    type: str
    node_id: int
    contract_id: int
    version: int
    state: str  # the node's (init, ok, error, paused, deleted) or "unknown" before any report
    message: str = ""
    planetary_ip: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # the node's result data, secrets left out

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeploymentView:
    name: str
    network: str
    status: str  # deployed | deploying | applying | destroying | interrupted
    contracts: list[dict[str, Any]]  # id, node_id, state, version
    workloads: list[WorkloadView]

    @property
    def ok(self) -> bool:
        return all(w.state == "ok" for w in self.workloads)

    def workload(self, name: str) -> WorkloadView | None:
        return next((w for w in self.workloads if w.name == name), None)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "network": self.network,
            "status": self.status,
            "contracts": self.contracts,
            "workloads": [w.to_json_dict() for w in self.workloads],
        }


@dataclass(frozen=True)
class DeploymentSummary:
    name: str
    network: str
    status: str
    contracts: list[int]
    nodes: list[int]
    workloads: int

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)
