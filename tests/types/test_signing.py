"""Signatures over the deployment hash and the signature requirement (weights, required signers)."""

from __future__ import annotations

import pytest

from tests.factories import deployment_doc
from zgrid.identity import Identity
from zgrid.types import (
    Deployment,
    SignaturesInsufficient,
    parse_deployment,
    sign_deployment,
    verify_signatures,
)

ALICE, BOB, CAROL, MALLORY = (Identity(bytes([n]) * 32) for n in (1, 2, 3, 4))
KEYS = {1: ALICE.public_key, 2: BOB.public_key, 3: CAROL.public_key}


def multisig(weight_required: int = 3) -> Deployment:
    return parse_deployment(
        deployment_doc(
            twin_id=1,
            signature_requirement={
                "requests": [
                    {"twin_id": 1, "required": True, "weight": 1},
                    {"twin_id": 2, "required": False, "weight": 2},
                    {"twin_id": 3, "required": False, "weight": 1},
                ],
                "weight_required": weight_required,
            },
        )
    )


def test_one_signer_verifies() -> None:
    deployment = parse_deployment(
        deployment_doc(twin_id=1, signature_requirement={"requests": [{"twin_id": 1}]})
    )
    signed = sign_deployment(deployment, 1, ALICE)
    assert verify_signatures(signed, KEYS) == 1


def test_signed_by_one_key_does_not_verify_with_another() -> None:
    deployment = parse_deployment(
        deployment_doc(twin_id=1, signature_requirement={"requests": [{"twin_id": 1}]})
    )
    signed = sign_deployment(deployment, 1, MALLORY)
    with pytest.raises(
        SignaturesInsufficient, match="signature of twin 1 does not verify"
    ) as caught:
        verify_signatures(signed, KEYS)
    assert caught.value.field == "signature_requirement.signatures[0]"


def test_signature_breaks_when_a_hashed_field_changes() -> None:
    signed = sign_deployment(multisig(1), 1, ALICE)
    tampered = parse_deployment(signed.to_json_dict() | {"description": "changed"})
    with pytest.raises(SignaturesInsufficient, match="does not verify"):
        verify_signatures(tampered, KEYS)


def test_weights_add_up() -> None:
    deployment = sign_deployment(sign_deployment(multisig(), 1, ALICE), 2, BOB)
    assert verify_signatures(deployment, KEYS) == 3
    everyone = sign_deployment(deployment, 3, CAROL)
    assert verify_signatures(everyone, KEYS) == 4


def test_weight_not_reached() -> None:
    deployment = sign_deployment(sign_deployment(multisig(), 1, ALICE), 3, CAROL)
    with pytest.raises(
        SignaturesInsufficient, match="signature weight 2 is below the 3 required"
    ) as caught:
        verify_signatures(deployment, KEYS)
    assert caught.value.field == "signature_requirement.signatures"


def test_required_signer_missing() -> None:
    deployment = sign_deployment(sign_deployment(multisig(), 2, BOB), 3, CAROL)
    with pytest.raises(SignaturesInsufficient, match="required signer twin 1 has not signed"):
        verify_signatures(deployment, KEYS)


def test_no_signatures_at_all() -> None:
    with pytest.raises(SignaturesInsufficient, match="required signer twin 1"):
        verify_signatures(multisig(), KEYS)


def test_unrequested_signer_is_refused() -> None:
    with pytest.raises(SignaturesInsufficient, match="twin 9 is not among the requested signers"):
        sign_deployment(multisig(), 9, MALLORY)
    signed = sign_deployment(multisig(1), 1, ALICE)
    extra = signed.to_json_dict()
    extra["signature_requirement"]["signatures"].append({"twin_id": 9, "signature": "00" * 64})
    with pytest.raises(SignaturesInsufficient, match="twin 9 signed but is not a requested signer"):
        verify_signatures(parse_deployment(extra), KEYS | {9: MALLORY.public_key})


def test_duplicate_signature_is_refused() -> None:
    signed = sign_deployment(multisig(1), 1, ALICE)
    doubled = signed.to_json_dict()
    doubled["signature_requirement"]["signatures"] *= 2
    with pytest.raises(SignaturesInsufficient, match="twin 1 signed twice"):
        verify_signatures(parse_deployment(doubled), KEYS)


def test_unknown_key() -> None:
    signed = sign_deployment(multisig(1), 1, ALICE)
    with pytest.raises(SignaturesInsufficient, match="no public key known for twin 1"):
        verify_signatures(signed, {})


def test_resigning_replaces_the_old_signature() -> None:
    once = sign_deployment(multisig(1), 1, MALLORY)
    again = sign_deployment(once, 1, ALICE)
    assert len(again.signature_requirement.signatures) == 1
    assert verify_signatures(again, KEYS) == 1


def test_signing_leaves_the_original_alone() -> None:
    deployment = multisig(1)
    sign_deployment(deployment, 1, ALICE)
    assert deployment.signature_requirement.signatures == []
