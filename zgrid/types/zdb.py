"""Data of a zdb workload: a namespace on the node's Zero-DB server."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, StrictInt, StrictStr

from zgrid.types.capacity import Capacity
from zgrid.types.enums import WorkloadType
from zgrid.types.fields import Bool, Model

__all__ = ["ZDB"]


class ZDB(Model):
    TYPE: ClassVar[WorkloadType] = WorkloadType.ZDB
    DATA_UPDATABLE: ClassVar[bool] = True

    size: StrictInt = Field(gt=0, description="bytes")
    mode: Literal["user", "seq"] = "user"
    password: StrictStr = Field(default="", max_length=128)
    public: Bool = False

    def capacity(self) -> Capacity:
        return Capacity(hru=self.size)
