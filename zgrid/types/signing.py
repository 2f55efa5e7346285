"""Signing a deployment and checking its signature requirement (weights, required signers).

A signature is ed25519 over the 32-byte deployment hash. The keys come from the
caller (the node reads them from the ledger), so this module touches no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from zgrid.signatures import verify_ed25519
from zgrid.types.deployment import Deployment, Signature
from zgrid.types.errors import SignaturesInsufficient

__all__ = ["Signer", "sign_deployment", "verify_signatures"]


class Signer(Protocol):
    """Anything that can make an ed25519 signature (``zgrid.identity.Identity`` is one)."""

    def sign(self, message: bytes) -> bytes: ...


def sign_deployment(deployment: Deployment, twin_id: int, signer: Signer) -> Deployment:
    """A copy of ``deployment`` carrying ``twin_id``'s signature (replacing an older one)."""
    requirement = deployment.signature_requirement
    if twin_id not in {request.twin_id for request in requirement.requests}:
        raise SignaturesInsufficient.at(
            "signature_requirement.signatures",
            f"twin {twin_id} is not among the requested signers",
        )
    signature = Signature(twin_id=twin_id, signature=signer.sign(deployment.hash()).hex())
    others = [s for s in requirement.signatures if s.twin_id != twin_id]
    new_requirement = requirement.model_copy(update={"signatures": [*others, signature]})
    return deployment.model_copy(update={"signature_requirement": new_requirement})


def verify_signatures(deployment: Deployment, public_keys: Mapping[int, bytes]) -> int:
    """Check every signature and the requirement; return the weight reached.

    ``public_keys`` maps twin id to ed25519 public key. Raises
    SignaturesInsufficient naming the first broken rule: a signature from a twin
    that was not asked, a signature that does not verify, a required signer
    missing, or the total weight below ``weight_required``.
    """
    requirement = deployment.signature_requirement
    field = "signature_requirement.signatures"
    weights = {request.twin_id: request.weight for request in requirement.requests}
    digest = deployment.hash()
    signed: set[int] = set()
    for index, signature in enumerate(requirement.signatures):
        where = f"{field}[{index}]"
        twin = signature.twin_id
        if twin not in weights:
            raise SignaturesInsufficient.at(
                where, f"twin {twin} signed but is not a requested signer"
            )
        if twin in signed:
            raise SignaturesInsufficient.at(where, f"twin {twin} signed twice")
        public_key = public_keys.get(twin)
        if public_key is None:
            raise SignaturesInsufficient.at(where, f"no public key known for twin {twin}")
        if not verify_ed25519(public_key, digest, bytes.fromhex(signature.signature)):
            raise SignaturesInsufficient.at(
                where, f"signature of twin {twin} does not verify against its key and this hash"
            )
        signed.add(twin)
    for request in requirement.requests:
        if request.required and request.twin_id not in signed:
            raise SignaturesInsufficient.at(
                field, f"required signer twin {request.twin_id} has not signed"
            )
    reached = sum(weights[twin] for twin in signed)
    if reached < requirement.weight_required:
        raise SignaturesInsufficient.at(
            field, f"signature weight {reached} is below the {requirement.weight_required} required"
        )
    return reached
