"""Data of an ip workload: a public IPv4 and/or IPv6 from the farm, bound to a machine."""

from __future__ import annotations

from typing import ClassVar

from pydantic import model_validator

from zgrid.types.capacity import Capacity
from zgrid.types.enums import WorkloadType
from zgrid.types.fields import Bool, Model

__all__ = ["PublicIP"]


class PublicIP(Model):
    TYPE: ClassVar[WorkloadType] = WorkloadType.IP
    DATA_UPDATABLE: ClassVar[bool] = False

    v4: Bool = False
    v6: Bool = False

    @model_validator(mode="after")
    def _something(self) -> PublicIP:
        if not (self.v4 or self.v6):
            raise ValueError("an ip workload must ask for v4, v6 or both")
        return self

    def capacity(self) -> Capacity:
        return Capacity(ipv4=1 if self.v4 else 0)
