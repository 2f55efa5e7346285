"""Data of a zmachine workload: a container or a virtual machine started from an flist."""

from __future__ import annotations

import ipaddress
import re
from typing import ClassVar, Literal

from pydantic import Field, StrictStr, field_validator

from zgrid.types.capacity import Capacity
from zgrid.types.enums import RESERVED_NETWORK_NAMES, WorkloadType
from zgrid.types.fields import GIB, MIB, Bool, Model, Name, Size, Text, format_bytes

__all__ = [
    "MAX_CPU",
    "MIN_MEMORY",
    "ComputeCapacity",
    "MachineInterface",
    "MachineNetwork",
    "Mount",
    "ZMachine",
    "min_root_size",
]

MIN_MEMORY = 250 * MIB
MAX_CPU = 256
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def min_root_size(cpu: int, memory: int) -> int:
    """The root disk a machine is charged for at least: bigger machines need a bigger root."""
    if cpu <= 4 and memory <= 4 * GIB:
        return 500 * MIB
    if cpu <= 8 and memory <= 8 * GIB:
        return 1 * GIB
    return 2 * GIB


class ComputeCapacity(Model):
    cpu: int
    memory: int

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu(cls, value: object) -> object:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"cpu must be a whole number of cores, got {value!r}")
        if not 1 <= value <= MAX_CPU:
            raise ValueError(f"cpu must be between 1 and {MAX_CPU} cores, got {value}")
        return value

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: object) -> object:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"memory must be a number of bytes, got {value!r}")
        if value < MIN_MEMORY:
            raise ValueError(
                f"memory must be at least {format_bytes(MIN_MEMORY)} "
                f"({MIN_MEMORY} bytes), got {format_bytes(value)}"
            )
        return value


class Mount(Model):
    """A zmount or volume workload of the same deployment, mounted at ``mountpoint``."""

    name: Name
    mountpoint: StrictStr = Field(min_length=2, max_length=1024)

    @field_validator("mountpoint")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or "\0" in value or ".." in value.split("/"):
            raise ValueError(f"mountpoint must be an absolute path without '..', got {value!r}")
        return value


class MachineInterface(Model):
    network: Name
    ip: StrictStr

    @field_validator("network")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_NETWORK_NAMES:
            raise ValueError(f"network name {value!r} is reserved")
        return value

    @field_validator("ip")
    @classmethod
    def _ipv4(cls, value: str) -> str:
        try:
            ipaddress.IPv4Address(value)
        except ValueError as exc:
            raise ValueError(f"ip must be an IPv4 address, got {value!r}") from exc
        return value


class MachineNetwork(Model):
    interfaces: list[MachineInterface] = Field(default_factory=list)
    planetary: Bool = False
    public_ip: StrictStr = Field(default="", description="name of an ip workload, or empty")

    @field_validator("interfaces")
    @classmethod
    def _one_private(cls, value: list[MachineInterface]) -> list[MachineInterface]:
        # None is allowed: a machine reached only over the planetary network (or not at all).
        if len(value) > 1:
            raise ValueError(f"a zmachine has at most one private interface, got {len(value)}")
        return value


class ZMachine(Model):
    TYPE: ClassVar[WorkloadType] = WorkloadType.ZMACHINE
    DATA_UPDATABLE: ClassVar[bool] = False

    flist: StrictStr = Field(min_length=1, max_length=2048)
    size: Size = 0
    compute_capacity: ComputeCapacity
    mounts: list[Mount] = Field(default_factory=list)
    entrypoint: Text = ""
    env: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    network: MachineNetwork
    mode: Literal["container", "vm"] = "container"

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _ENV_NAME.fullmatch(key):
                raise ValueError(f"environment variable name {key!r} is not valid")
        return value

    @field_validator("mounts")
    @classmethod
    def _distinct_mounts(cls, value: list[Mount]) -> list[Mount]:
        names = [mount.name for mount in value]
        points = [mount.mountpoint for mount in value]
        for label, items in (("disk", names), ("mountpoint", points)):
            duplicates = sorted({item for item in items if items.count(item) > 1})
            if duplicates:
                raise ValueError(f"{label} mounted twice: {', '.join(duplicates)}")
        return value

    def capacity(self) -> Capacity:
        cpu, memory = self.compute_capacity.cpu, self.compute_capacity.memory
        return Capacity(cru=cpu, mru=memory, sru=max(self.size, min_root_size(cpu, memory)))
