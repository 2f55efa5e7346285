"""The zmount primitive: a machine's disk, a sparse ext4 image on the node's DiskPool.

Its disk id is the workload id; the pool records the kind, so zmounts, volumes and the
zmachines' root volumes on one pool stay apart. An update may only grow it.
"""

from __future__ import annotations

from typing import ClassVar

from zgrid.node.disks import DiskPool
from zgrid.node.errors import ProvisionError
from zgrid.node.primitives.base import Observed, Provisioning, ResultData, WorkloadRef
from zgrid.types import Volume, ZMount

__all__ = ["DiskPrimitive", "ZMountPrimitive"]


class DiskPrimitive:
    """A sized disk of one kind; subclasses name the kind and the workload data they take."""

    KIND: ClassVar[str] = "disk"

    def __init__(self, pool: DiskPool) -> None:
        self.pool = pool

    def _size(self, item: Provisioning) -> int:
        data = item.workload.data
        if not isinstance(data, (ZMount, Volume)) or data.TYPE.value != self.KIND:
            raise ProvisionError(f"workload {item.ref.id} is not a {self.KIND}")
        return data.size

    async def provision(self, item: Provisioning) -> ResultData:
        size = self._size(item)
        await self.pool.create(item.ref.id, size, kind=self.KIND)
        return {"size": size}

    async def update(self, item: Provisioning) -> ResultData:
        """A bigger size grows the disk with its data kept; a smaller one is refused."""
        return await self.provision(item)

    async def deprovision(self, ref: WorkloadRef) -> None:
        if self.pool.kind(ref.id) in (self.KIND, None):
            await self.pool.remove(ref.id)

    async def inspect(self, ref: WorkloadRef) -> Observed:
        if self.pool.kind(ref.id) != self.KIND or self.pool.size(ref.id) is None:
            return Observed(exists=False)
        if self.pool.is_lent(ref.id):
            return Observed(exists=True, detail="attached to a virtual machine")
        if not self.pool.is_mounted(ref.id):
            return Observed(exists=True, healthy=False, detail="the disk is not mounted")
        return Observed(exists=True, detail=f"{self.pool.size(ref.id)} bytes")

    async def present(self) -> set[str]:
        return await self.pool.ids(kind=self.KIND)


class ZMountPrimitive(DiskPrimitive):
    KIND = "zmount"
