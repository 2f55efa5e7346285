"""A workload: one named thing to run in a deployment, with its typed data and result.

Each workload type has its own class so the data is checked against the right
model; :data:`Workload` is the union the ``type`` field selects from.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from zgrid.types.disks import Volume, ZMount
from zgrid.types.enums import ResultState, WorkloadType
from zgrid.types.fields import Model, Name, Text, UInt
from zgrid.types.gateway import GatewayFQDNProxy, GatewayNameProxy
from zgrid.types.network import Network
from zgrid.types.publicip import PublicIP
from zgrid.types.zdb import ZDB
from zgrid.types.zmachine import ZMachine

__all__ = [
    "GatewayFQDNProxyWorkload",
    "GatewayNameProxyWorkload",
    "IPWorkload",
    "NetworkWorkload",
    "VolumeWorkload",
    "Workload",
    "WorkloadData",
    "WorkloadResult",
    "ZDBWorkload",
    "ZMachineWorkload",
    "ZMountWorkload",
    "make_workload",
    "workload_id",
]

WorkloadData = (
    ZMachine | ZMount | Volume | ZDB | Network | PublicIP | GatewayNameProxy | GatewayFQDNProxy
)


class WorkloadResult(Model):
    """What the node reports for one workload; not part of the deployment hash."""

    created: UInt = 0
    state: ResultState = ResultState.INIT
    message: Text = ""
    data: dict[str, Any] = Field(default_factory=dict)


class _WorkloadBase(Model):
    version: UInt = 0
    name: Name
    metadata: Text = ""
    description: Text = ""
    result: WorkloadResult | None = None


class ZMachineWorkload(_WorkloadBase):
    type: Literal[WorkloadType.ZMACHINE] = WorkloadType.ZMACHINE
    data: ZMachine


class ZMountWorkload(_WorkloadBase):
    type: Literal[WorkloadType.ZMOUNT] = WorkloadType.ZMOUNT
    data: ZMount


class VolumeWorkload(_WorkloadBase):
    type: Literal[WorkloadType.VOLUME] = WorkloadType.VOLUME
    data: Volume


class ZDBWorkload(_WorkloadBase):
    type: Literal[WorkloadType.ZDB] = WorkloadType.ZDB
    data: ZDB


class NetworkWorkload(_WorkloadBase):
    type: Literal[WorkloadType.NETWORK] = WorkloadType.NETWORK
    data: Network


class IPWorkload(_WorkloadBase):
    type: Literal[WorkloadType.IP] = WorkloadType.IP
    data: PublicIP


class GatewayNameProxyWorkload(_WorkloadBase):
    type: Literal[WorkloadType.GATEWAY_NAME_PROXY] = WorkloadType.GATEWAY_NAME_PROXY
    data: GatewayNameProxy


class GatewayFQDNProxyWorkload(_WorkloadBase):
    type: Literal[WorkloadType.GATEWAY_FQDN_PROXY] = WorkloadType.GATEWAY_FQDN_PROXY
    data: GatewayFQDNProxy


Workload = Annotated[
    ZMachineWorkload
    | ZMountWorkload
    | VolumeWorkload
    | ZDBWorkload
    | NetworkWorkload
    | IPWorkload
    | GatewayNameProxyWorkload
    | GatewayFQDNProxyWorkload,
    Field(discriminator="type"),
]

_workload_adapter: TypeAdapter[Workload] = TypeAdapter(Workload)


def make_workload(name: str, data: WorkloadData, **fields: Any) -> Workload:
    """A workload of the type ``data`` belongs to: ``make_workload("disk", ZMount(size=...))``."""
    return _workload_adapter.validate_python(
        {"name": name, "type": data.TYPE, "data": data, **fields}
    )


def workload_id(twin_id: int, contract_id: int, name: str) -> str:
    """The grid-wide id of a workload: ``<twin_id>-<contract_id>-<name>``."""
    return f"{twin_id}-{contract_id}-{name}"
