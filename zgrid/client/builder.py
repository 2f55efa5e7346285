"""The spec's items as workloads and deployments, in the node's vocabulary (zgrid.types).

Each workload carries the key of its item in its ``metadata`` (canonical JSON
``{"key": "machine/web/0"}``) and each deployment its spec's name (``{"name": "app"}``),
so what runs is matched to the spec across applies whatever the workloads are named.
A machine is given its ``SSH_KEY`` (the spec's ssh_keys, one a line) in its environment,
which is where the node reads it from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from pydantic import ValidationError

from zgrid.canonical import CanonicalJSONError, canonical_dumps, canonical_loads
from zgrid.client.errors import InvalidWorkload
from zgrid.client.spec.model import DiskSpec, GatewaySpec, MachineSpec, ZdbSpec
from zgrid.types import (
    ZDB,
    ComputeCapacity,
    Deployment,
    GatewayFQDNProxy,
    GatewayNameProxy,
    InvalidDeployment,
    MachineInterface,
    MachineNetwork,
    Mount,
    PublicIP,
    SignatureRequest,
    SignatureRequirement,
    Workload,
    WorkloadData,
    ZMachine,
    ZMount,
    make_workload,
)

__all__ = [
    "MAX_NAME_LENGTH",
    "base_name",
    "deployment_metadata",
    "disk_data",
    "ip_data",
    "item_of",
    "machine_data",
    "name_with_suffix",
    "new_deployment",
    "new_workload",
    "spec_name_of",
    "workload_metadata",
    "zdb_data",
]

MAX_NAME_LENGTH = 36  # a workload name, as the node takes it
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_]")
_T = TypeVar("_T")


def workload_metadata(key: str) -> str:
    return canonical_dumps({"key": key}).decode()


def deployment_metadata(name: str) -> str:
    return canonical_dumps({"name": name}).decode()


def _field(metadata: str, field: str) -> str | None:
    try:
        document = canonical_loads(metadata)
    except CanonicalJSONError:
        return None
    value = document.get(field) if isinstance(document, dict) else None
    return value if isinstance(value, str) else None


def item_of(workload: Workload) -> str | None:
    """The item key a workload was made for, or None if its metadata names none."""
    return _field(workload.metadata, "key")


def spec_name_of(deployment: Deployment) -> str | None:
    """The spec name a deployment was made for, or None."""
    return _field(deployment.metadata, "name")


def base_name(entry: str, replica: int, *, single: bool) -> str:
    """A workload's name before collisions: the entry's own when it is the entry's only
    item, else ``<entry>_<replica>``; characters a name cannot hold become ``_``."""
    return name_with_suffix(entry, "" if single else f"_{replica}")


def name_with_suffix(stem: str, suffix: str) -> str:
    """``stem`` + ``suffix`` as a valid workload name, the stem cut to fit."""
    clean = _NOT_IN_NAME.sub("_", stem) or "w"
    return clean[: MAX_NAME_LENGTH - len(suffix)] + suffix


def _checked(what: str, build: Callable[[], _T]) -> _T:
    try:
        return build()
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'value'}: "
            f"{error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        raise InvalidWorkload(f"{what} is not a valid workload: {reasons}") from None
    except InvalidDeployment as exc:
        raise InvalidWorkload(f"{what} is not a valid deployment: {exc}") from None


def machine_data(
    machine: MachineSpec,
    flist_url: str,
    mounts: Sequence[tuple[str, str]],
    private: tuple[str, str] | None = None,
    *,
    public_ip: str = "",
) -> ZMachine:
    """The zmachine of one replica; ``mounts`` are (disk workload name, mountpoint),
    ``private`` its (network workload name, IPv4) on the spec's private network,
    ``public_ip`` the name of its ip workload."""
    env = dict(machine.env)
    if machine.ssh_keys:
        env["SSH_KEY"] = "\n".join(machine.ssh_keys)
    return _checked(
        f"machine {machine.name!r}",
        lambda: ZMachine(
            flist=flist_url,
            size=machine.disk,
            compute_capacity=ComputeCapacity(cpu=machine.cpu, memory=machine.memory),
            mounts=[Mount(name=name, mountpoint=point) for name, point in mounts],
            entrypoint=machine.entrypoint,
            env=env,
            network=MachineNetwork(
                interfaces=[]
                if private is None
                else [MachineInterface(network=private[0], ip=private[1])],
                planetary=machine.planetary,
                public_ip=public_ip,
            ),
            mode=machine.mode,
        ),
    )


def gateway_data(
    gateway: GatewaySpec, ips: Sequence[str], network: str
) -> GatewayNameProxy | GatewayFQDNProxy:
    """A gateway to ``ips`` (its machine's replicas) on ``network`` (the workload's name of
    the gateway node's part of the private network)."""
    if gateway.tls_passthrough:
        backends = [f"{ip}:{gateway.port}" for ip in ips]
    else:
        backends = [f"http://{ip}:{gateway.port}" for ip in ips]
    common = {"backends": backends, "network": network, "tls_passthrough": gateway.tls_passthrough}
    if gateway.name:
        return _checked(
            f"gateway {gateway.entry!r}", lambda: GatewayNameProxy(name=gateway.name, **common)
        )
    return _checked(
        f"gateway {gateway.entry!r}", lambda: GatewayFQDNProxy(fqdn=gateway.fqdn, **common)
    )


def ip_data(machine: MachineSpec) -> PublicIP:
    return _checked(
        f"public IP of machine {machine.name!r}",
        lambda: PublicIP(v4=machine.public_ipv4, v6=machine.public_ipv6),
    )


def disk_data(disk: DiskSpec) -> ZMount:
    return _checked(f"disk {disk.name!r}", lambda: ZMount(size=disk.size))


def zdb_data(zdb: ZdbSpec, password: str) -> ZDB:
    return _checked(
        f"zdb {zdb.name!r}",
        lambda: ZDB(size=zdb.size, mode=zdb.mode, public=zdb.public, password=password),
    )


def new_workload(name: str, data: WorkloadData, *, key: str, version: int) -> Workload:
    return _checked(
        f"workload {name!r} ({key})",
        lambda: make_workload(name, data, version=version, metadata=workload_metadata(key)),
    )


def new_deployment(
    *,
    name: str,
    twin_id: int,
    contract_id: int,
    version: int,
    workloads: Sequence[Workload],
) -> Deployment:
    """A deployment signed by ``twin_id`` alone, of the spec named ``name``."""
    return _checked(
        f"the deployment of {name!r}",
        lambda: Deployment(
            version=version,
            twin_id=twin_id,
            contract_id=contract_id,
            metadata=deployment_metadata(name),
            signature_requirement=SignatureRequirement(
                requests=[SignatureRequest(twin_id=twin_id, weight=1, required=False)],
                weight_required=1,
            ),
            workloads=list(workloads),
        ),
    )
