"""Data of the disk workloads: zmount (a machine's disk) and volume (a shared-style volume).

Both are a sized disk; they differ only in how the node attaches them, so they
share one model and keep their own workload type.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, StrictInt

from zgrid.types.capacity import Capacity
from zgrid.types.enums import WorkloadType
from zgrid.types.fields import Model

__all__ = ["Volume", "ZMount"]


class _Disk(Model):
    DATA_UPDATABLE: ClassVar[bool] = True

    size: StrictInt = Field(gt=0, description="bytes")

    def capacity(self) -> Capacity:
        return Capacity(sru=self.size)


class ZMount(_Disk):
    TYPE: ClassVar[WorkloadType] = WorkloadType.ZMOUNT


class Volume(_Disk):
    TYPE: ClassVar[WorkloadType] = WorkloadType.VOLUME
