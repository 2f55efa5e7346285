"""Data of the disk workloads: zmount (a machine's disk) and volume (a shared-style volume)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, StrictInt

from zgrid.types.capacity import Capacity
from zgrid.types.enums import WorkloadType
from zgrid.types.fields import Model

__all__ = ["Volume", "ZMount"]


class ZMount(Model):
    TYPE: ClassVar[WorkloadType] = WorkloadType.ZMOUNT
    DATA_UPDATABLE: ClassVar[bool] = True

    size: StrictInt = Field(gt=0, description="bytes")

    def capacity(self) -> Capacity:
        return Capacity(sru=self.size)


class Volume(Model):
    TYPE: ClassVar[WorkloadType] = WorkloadType.VOLUME
    DATA_UPDATABLE: ClassVar[bool] = True

    size: StrictInt = Field(gt=0, description="bytes")

    def capacity(self) -> Capacity:
        return Capacity(sru=self.size)
