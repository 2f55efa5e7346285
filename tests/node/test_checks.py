"""The checks before provisioning: identity of the deployment, signatures and approvals, capacity."""

from __future__ import annotations

from typing import Any

import pytest

from zgrid.identity import Identity
from zgrid.node.checks import (
    AwaitingApproval,
    check_capacity,
    check_identity,
    check_signatures,
    human_bytes,
    with_approvals,
)
from zgrid.node.errors import CapacityExceeded, ProvisionError
from zgrid.types import GIB, MIB, Capacity, Deployment, ZMount, make_workload, sign_deployment

ALICE, BOB = Identity(b"a" * 32), Identity(b"b" * 32)
KEYS = {1: ALICE.public_key, 2: BOB.public_key}


def _deployment(**requirement: Any) -> Deployment:
    return Deployment(
        twin_id=1,
        signature_requirement=requirement or {"requests": [{"twin_id": 1}]},
        workloads=[make_workload("disk", ZMount(size=100 * MIB))],
    )


def _contract(deployment: Deployment, **fields: Any) -> dict[str, Any]:
    return {"id": 5, "twin_id": 1, "version": 0, "deployment_hash": deployment.hash_hex(), **fields}


def test_the_deployment_must_be_the_contracts() -> None:
    deployment = _deployment()
    check_identity(deployment, _contract(deployment))
    with pytest.raises(ProvisionError, match="does not match the hash"):
        check_identity(deployment, _contract(deployment, deployment_hash="0" * 64))
    with pytest.raises(ProvisionError, match="belongs to twin 2"):
        check_identity(deployment, _contract(deployment, twin_id=2))
    with pytest.raises(ProvisionError, match="is at version 3"):
        check_identity(deployment, _contract(deployment, version=3))


def test_a_signature_by_another_key_is_refused() -> None:
    deployment = _deployment()
    forged = deployment.model_copy(
        update={
            "signature_requirement": deployment.signature_requirement.model_copy(
                update={
                    "signatures": sign_deployment(
                        deployment, 1, BOB
                    ).signature_requirement.signatures
                }
            )
        }
    )
    with pytest.raises(ProvisionError, match="signed by someone else"):
        check_signatures(forged, KEYS)
    assert check_signatures(sign_deployment(deployment, 1, ALICE), KEYS) == 1


def test_missing_cosignature_waits_and_a_ledger_approval_completes_it() -> None:
    deployment = _deployment(
        requests=[{"twin_id": 1, "weight": 1}, {"twin_id": 2, "weight": 1}], weight_required=2
    )
    signed = sign_deployment(deployment, 1, ALICE)
    with pytest.raises(AwaitingApproval, match="waiting for approval of twin 2, weight 1 of 2"):
        check_signatures(signed, KEYS)
    approval = {
        "twin_id": 2,
        "deployment_hash": deployment.hash_hex(),
        "signature": BOB.sign(deployment.hash()).hex(),
    }
    stale = {**approval, "deployment_hash": "f" * 64}
    assert with_approvals(signed, [stale]) == signed
    assert check_signatures(with_approvals(signed, [approval]), KEYS) == 2


def test_capacity_within_the_contract_and_what_is_free() -> None:
    needed = Capacity(cru=1, mru=4 * GIB)
    roomy = Capacity(cru=4, mru=8 * GIB, sru=100 * GIB)
    check_capacity(needed, declared=roomy, free=roomy)
    with pytest.raises(
        CapacityExceeded, match="needs 4 GiB of memory, more than the 2 GiB its contract declares"
    ):
        check_capacity(needed, declared=Capacity(cru=1, mru=2 * GIB), free=roomy)
    free = Capacity(cru=4, mru=int(1.2 * GIB))
    with pytest.raises(CapacityExceeded, match=r"not enough memory: asks 4 GiB, 1\.2 GiB free"):
        check_capacity(needed, declared=roomy, free=free)


def test_human_bytes() -> None:
    assert human_bytes(100 * MIB) == "100 MiB"
    assert human_bytes(int(1.25 * GIB)) == "1.2 GiB"
    assert human_bytes(12) == "12 bytes"
