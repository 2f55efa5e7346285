"""A deployment: the signed list of workloads a contract pays for, and its hash.

The hash is BLAKE2b-256 over the canonical JSON of the deployment with
``contract_id``, every workload ``result`` and the ``signatures`` list removed:
it is known before the contract exists, and signing or reporting does not change it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from pydantic import (
    Field,
    PositiveInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic import ModelWrapValidatorHandler as Handler
from pydantic_core import ErrorDetails

from zgrid.canonical import CanonicalJSONError, blake2b256, canonical_dumps, canonical_loads
from zgrid.types.capacity import Capacity
from zgrid.types.enums import RESERVED_NETWORK_NAMES, WorkloadType
from zgrid.types.errors import InvalidDeployment
from zgrid.types.fields import Bool, Model, Text, UInt
from zgrid.types.network import Network
from zgrid.types.workload import Workload

__all__ = [
    "Deployment",
    "Signature",
    "SignatureRequest",
    "SignatureRequirement",
    "parse_deployment",
]

_SIGNATURE_HEX_LENGTH = 128


class SignatureRequest(Model):
    twin_id: PositiveInt
    required: Bool = False
    weight: PositiveInt = 1


class Signature(Model):
    twin_id: PositiveInt
    signature: StrictStr = Field(pattern=r"^[0-9a-f]{128}$", description="hex ed25519 signature")
    signature_type: StrictStr = "ed25519"

    @field_validator("signature_type")
    @classmethod
    def _ed25519(cls, value: str) -> str:
        if value != "ed25519":
            raise ValueError(f"only ed25519 signatures are supported, got {value!r}")
        return value


class SignatureRequirement(Model):
    requests: list[SignatureRequest] = Field(min_length=1)
    weight_required: PositiveInt = 1
    signatures: list[Signature] = Field(default_factory=list)

    @model_validator(mode="after")
    def _reachable(self) -> SignatureRequirement:
        twins = [request.twin_id for request in self.requests]
        duplicates = sorted({twin for twin in twins if twins.count(twin) > 1})
        if duplicates:
            raise ValueError(f"twin {duplicates[0]} is requested twice")
        total = sum(request.weight for request in self.requests)
        if self.weight_required > total:
            raise ValueError(
                f"weight_required {self.weight_required} exceeds the total weight {total} "
                "of all requests: it could never be reached"
            )
        return self


class Deployment(Model):
    version: UInt = 0
    twin_id: PositiveInt
    contract_id: UInt = 0
    metadata: Text = ""
    description: Text = ""
    expiration: UInt = 0
    signature_requirement: SignatureRequirement
    workloads: list[Workload] = Field(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _typed_errors(cls, value: Any, handler: Handler[Deployment]) -> Deployment:
        # Field errors become InvalidDeployment with readable paths, the same
        # exception the cross-workload checks below raise, so callers catch one type.
        try:
            return handler(value)
        except ValidationError as exc:
            raise InvalidDeployment([_problem(error) for error in exc.errors()]) from None

    @model_validator(mode="after")
    def _consistent(self) -> Deployment:
        problems = _cross_workload_problems(self)
        if problems:
            raise InvalidDeployment(problems)
        return self

    def capacity(self) -> Capacity:
        """Everything this deployment uses on its node."""
        total = Capacity()
        for workload in self.workloads:
            total += workload.data.capacity()
        return total

    def hash_payload(self) -> dict[str, Any]:
        """The JSON form the hash covers: no contract_id, no results, no signatures."""
        payload = self.to_json_dict()
        del payload["contract_id"]
        del payload["signature_requirement"]["signatures"]
        for workload in payload["workloads"]:
            del workload["result"]
        return payload

    def hash(self) -> bytes:
        """The deployment hash the contract carries and every signer signs (32 bytes)."""
        return blake2b256(canonical_dumps(self.hash_payload()))

    def hash_hex(self) -> str:
        return self.hash().hex()

    def to_json_bytes(self) -> bytes:
        """The whole deployment (signatures and results included) as canonical JSON."""
        return canonical_dumps(self.to_json_dict())


def parse_deployment(document: bytes | str | Mapping[str, Any]) -> Deployment:
    """Read a deployment from JSON text or a decoded mapping; raise InvalidDeployment if invalid."""
    if isinstance(document, (bytes, str)):
        try:
            document = canonical_loads(document)
        except CanonicalJSONError as exc:
            raise InvalidDeployment.at("$", str(exc)) from exc
    if not isinstance(document, Mapping):
        raise InvalidDeployment.at(
            "$", f"a deployment is a JSON object, got {type(document).__name__}"
        )
    return Deployment.model_validate(dict(document))


_TYPE_TAGS = frozenset(item.value for item in WorkloadType)
_MESSAGES = {
    "missing": "missing",
    "extra_forbidden": "unknown field",
}


def _problem(error: ErrorDetails) -> tuple[str, str]:
    location = list(error["loc"])
    kind = error["type"]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        location.append("type")
        known = ", ".join(item.value for item in WorkloadType)
        tag = error.get("ctx", {}).get("tag")
        reason = (
            f"unknown workload type {tag!r} (known: {known})"
            if kind == "union_tag_invalid"
            else f"missing (one of: {known})"
        )
        return _path(location), reason
    message = _MESSAGES.get(kind, error["msg"]).removeprefix("Value error, ")
    return _path(location), message


def _path(location: list[int | str]) -> str:
    parts: list[str] = []
    for index, item in enumerate(location):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif index == 2 and location[0] == "workloads" and item in _TYPE_TAGS:
            continue  # pydantic's discriminator tag; workloads[i] already names the workload
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "$"


def _cross_workload_problems(deployment: Deployment) -> list[tuple[str, str]]:
    """Rules that need more than one workload: unique names and the references between them."""
    problems: list[tuple[str, str]] = []
    by_name: dict[str, Workload] = {}
    for index, workload in enumerate(deployment.workloads):
        where = f"workloads[{index}]"
        if workload.name in by_name:
            problems.append((f"{where}.name", f"duplicate workload name {workload.name!r}"))
        by_name.setdefault(workload.name, workload)
        if workload.version > deployment.version:
            problems.append(
                (
                    f"{where}.version",
                    f"workload version {workload.version} is newer than the deployment's "
                    f"version {deployment.version}",
                )
            )
        if workload.type == WorkloadType.NETWORK and workload.name in RESERVED_NETWORK_NAMES:
            problems.append((f"{where}.name", f"network name {workload.name!r} is reserved"))

    mounted: dict[str, str] = {}
    for index, workload in enumerate(deployment.workloads):
        if workload.type != WorkloadType.ZMACHINE:
            continue
        where = f"workloads[{index}].data"
        for mount_index, mount in enumerate(workload.data.mounts):
            target = by_name.get(mount.name)
            field = f"{where}.mounts[{mount_index}].name"
            if target is None or target.type not in (WorkloadType.ZMOUNT, WorkloadType.VOLUME):
                problems.append(
                    (field, f"no zmount or volume named {mount.name!r} in this deployment")
                )
            elif mount.name in mounted:
                problems.append(
                    (field, f"disk {mount.name!r} is already mounted by {mounted[mount.name]!r}")
                )
            else:
                mounted[mount.name] = workload.name
        public_ip = workload.data.network.public_ip
        if public_ip:
            target = by_name.get(public_ip)
            if target is None or target.type != WorkloadType.IP:
                problems.append(
                    (
                        f"{where}.network.public_ip",
                        f"no ip workload named {public_ip!r} in this deployment",
                    )
                )
        for interface_index, interface in enumerate(workload.data.network.interfaces):
            network = by_name.get(interface.network)
            if network is not None and isinstance(network.data, Network):
                reason = _interface_ip_problem(interface.ip, network.data.subnet)
                if reason:
                    problems.append((f"{where}.network.interfaces[{interface_index}].ip", reason))
    return problems


def _interface_ip_problem(ip: str, subnet: str) -> str | None:
    # The node's subnet keeps .0 (network), .1 (the bridge/gateway) and .255 (broadcast).
    address = ipaddress.IPv4Address(ip)
    network = ipaddress.IPv4Network(subnet)
    if address not in network:
        return f"{ip} is not in the network's subnet {subnet} on this node"
    if address in (network.network_address, network.network_address + 1, network.broadcast_address):
        return f"{ip} is reserved in {subnet} (use .2 to .254)"
    return None
