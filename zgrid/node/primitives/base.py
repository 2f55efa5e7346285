"""The small interface every workload type's provisioner implements.

A primitive knows its workload type and the runtime/net helpers it is given, nothing of
the ledger: the provision engine calls it with one workload at a time, in type order.
Provisioning is safe to repeat: "already there and correct" returns the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from zgrid.types import Deployment, Workload, workload_id

__all__ = [
    "Observed",
    "Pausable",
    "Primitive",
    "Provisioning",
    "ResultData",
    "Updatable",
    "WorkloadRef",
]

ResultData = dict[str, Any]
"""A workload result's ``data``: JSON-able facts for the deployer (addresses, namespace …)."""


@dataclass(frozen=True, slots=True)
class WorkloadRef:
    """Which workload: ``<twin_id>-<contract_id>-<name>`` is its id on the whole grid."""

    twin_id: int
    contract_id: int
    name: str

    @property
    def id(self) -> str:
        return workload_id(self.twin_id, self.contract_id, self.name)


@dataclass(frozen=True, slots=True)
class Provisioning:
    """One workload to make, with the deployment it belongs to (for references by name)."""

    ref: WorkloadRef
    workload: Workload
    deployment: Deployment


@dataclass(frozen=True, slots=True)
class Observed:
    """What really exists on the machine for one workload."""

    exists: bool
    healthy: bool = True
    detail: str = ""


class Primitive(Protocol):
    """Provision and remove one workload type; both are idempotent."""

    async def provision(self, item: Provisioning) -> ResultData:
        """Make the workload (or find it already made) and return its result data.

        Raises ProvisionError (or a subclass) whose message is the real cause.
        """
        ...

    async def deprovision(self, ref: WorkloadRef) -> None:
        """Remove every trace of the workload; nothing there is not an error."""
        ...

    async def inspect(self, ref: WorkloadRef) -> Observed:
        """Whether the workload exists on the machine and is as it should be."""
        ...

    async def present(self) -> set[str]:
        """The ids of every workload of this type that exists on the machine."""
        ...


@runtime_checkable
class Pausable(Protocol):
    """Workloads that can be frozen with their state kept (grace period) and thawed."""

    async def pause(self, ref: WorkloadRef) -> None: ...

    async def resume(self, ref: WorkloadRef) -> None: ...


@runtime_checkable
class Updatable(Protocol):
    """Workloads whose data may change in an update (FORMATS.md: network, volume, zmount, zdb)."""

    async def update(self, item: Provisioning) -> ResultData: ...
