"""The checks a node makes before it provisions anything a contract asks for.

The deployment must be the one the contract's hash names, of the contract's twin and
version; every signature must verify against the signer's key on the ledger (approvals
on the ledger count too); and what it asks must fit both the capacity its contract
declared and what is free on this node. Each refusal names its cause in plain words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from zgrid.node.errors import CapacityExceeded, NodeError, ProvisionError
from zgrid.signatures import verify_ed25519
from zgrid.types import Capacity, Deployment, Signature

__all__ = [
    "AwaitingApproval",
    "check_capacity",
    "check_identity",
    "check_signatures",
    "human_bytes",
    "with_approvals",
]

_RESOURCES = (
    ("cru", "cores", False),
    ("mru", "memory", True),
    ("sru", "SSD storage", True),
    ("hru", "HDD storage", True),
)


class AwaitingApproval(NodeError):
    """The signatures are valid but not yet enough; the deployment waits in ``init``."""


def human_bytes(value: int) -> str:
    """Bytes for a person: 1288490188 -> '1.2 GiB', 104857600 -> '100 MiB'."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(value) >= size:
            text = f"{value / size:.1f}".removesuffix(".0")
            return f"{text} {unit}"
    return f"{value} bytes"


def _amount(key: str, value: int) -> str:
    is_bytes = next(flag for name, _, flag in _RESOURCES if name == key)
    return human_bytes(value) if is_bytes else f"{value}"


def check_identity(deployment: Deployment, contract: Mapping[str, Any]) -> None:
    """The deployment is the contract's: same twin, same version, the hash it carries."""
    if deployment.twin_id != contract["twin_id"]:
        raise ProvisionError(
            f"the deployment is of twin {deployment.twin_id}, "
            f"but contract {contract['id']} belongs to twin {contract['twin_id']}"
        )
    if deployment.version != contract["version"]:
        raise ProvisionError(
            f"the deployment is version {deployment.version}, "
            f"but contract {contract['id']} is at version {contract['version']}"
        )
    actual = deployment.hash_hex()
    if actual != contract["deployment_hash"]:
        raise ProvisionError(
            f"the deployment's hash {actual[:16]}… does not match the hash "
            f"{str(contract['deployment_hash'])[:16]}… of contract {contract['id']}"
        )


def with_approvals(deployment: Deployment, approvals: Sequence[Mapping[str, Any]]) -> Deployment:
    """The deployment with the ledger's approvals of its hash added to its signatures.

    An approval replaces an embedded signature of the same twin; approvals of another
    hash (an older version) or of twins the requirement does not name are left out.
    """
    requirement = deployment.signature_requirement
    requested = {request.twin_id for request in requirement.requests}
    digest = deployment.hash_hex()
    extra = {
        int(a["twin_id"]): str(a["signature"])
        for a in approvals
        if a.get("deployment_hash") == digest and int(a["twin_id"]) in requested
    }
    if not extra:
        return deployment
    kept = [s for s in requirement.signatures if s.twin_id not in extra]
    added = [Signature(twin_id=twin, signature=sig) for twin, sig in sorted(extra.items())]
    new_requirement = requirement.model_copy(update={"signatures": [*kept, *added]})
    return deployment.model_copy(update={"signature_requirement": new_requirement})


def check_signatures(deployment: Deployment, keys: Mapping[int, bytes]) -> int:
    """Every signature verifies and the requirement is met; return the weight reached.

    A signature that does not verify (or of a twin not asked) is a ProvisionError; valid
    signatures of too little weight raise AwaitingApproval naming who has yet to sign.
    """
    requirement = deployment.signature_requirement
    weights = {request.twin_id: request.weight for request in requirement.requests}
    digest = deployment.hash()
    signed: set[int] = set()
    for signature in requirement.signatures:
        twin = signature.twin_id
        if twin not in weights:
            raise ProvisionError(f"twin {twin} signed the deployment but is not a requested signer")
        key = keys.get(twin)
        if key is None:
            raise ProvisionError(f"twin {twin}, a signer of the deployment, is not on the ledger")
        if not verify_ed25519(key, digest, bytes.fromhex(signature.signature)):
            raise ProvisionError(
                f"the signature of twin {twin} does not verify against twin {twin}'s key "
                "on the ledger: the deployment was signed by someone else or altered"
            )
        signed.add(twin)
    reached = sum(weights[twin] for twin in signed)
    missing_required = [
        r.twin_id for r in requirement.requests if r.required and r.twin_id not in signed
    ]
    if missing_required or reached < requirement.weight_required:
        waiting = missing_required or [
            r.twin_id for r in requirement.requests if r.twin_id not in signed
        ]
        who = ", ".join(f"twin {twin}" for twin in waiting)
        required = " (required)" if missing_required else ""
        raise AwaitingApproval(
            f"waiting for approval of {who}{required}, "
            f"weight {reached} of {requirement.weight_required}"
        )
    return reached


def check_capacity(needed: Capacity, *, declared: Capacity, free: Capacity) -> None:
    """What the deployment needs fits what its contract declared and what the node has free."""
    for key, label, _ in _RESOURCES:
        asked = getattr(needed, key)
        if asked > getattr(declared, key):
            raise CapacityExceeded(
                f"the deployment needs {_amount(key, asked)} of {label}, more than the "
                f"{_amount(key, getattr(declared, key))} its contract declares"
            )
    for key, label, _ in _RESOURCES:
        asked, available = getattr(needed, key), max(0, getattr(free, key))
        if asked > available:
            raise CapacityExceeded(
                f"not enough {label}: asks {_amount(key, asked)}, {_amount(key, available)} free"
            )
