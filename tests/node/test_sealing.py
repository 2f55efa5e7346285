"""Deployments sealed to the node and results sealed to the deployer open only for them."""

from __future__ import annotations

import base64

import pytest

from zgrid.identity import Identity, UnsealError, seal
from zgrid.node.errors import ProvisionError
from zgrid.node.sealing import (
    ResultReport,
    open_results,
    seal_deployment,
    seal_results,
    unseal_deployment,
)
from zgrid.types import MIB, Deployment, ZMount, make_workload

NODE, DEPLOYER, OTHER = Identity(b"n" * 32), Identity(b"d" * 32), Identity(b"o" * 32)


def test_only_the_node_opens_its_deployment() -> None:
    deployment = Deployment(
        twin_id=1,
        signature_requirement={"requests": [{"twin_id": 1}]},
        workloads=[make_workload("disk", ZMount(size=MIB))],
    )
    sealed = seal_deployment(deployment, NODE.public_key)
    assert unseal_deployment(NODE, sealed) == deployment
    with pytest.raises(ProvisionError, match="cannot be opened by this node"):
        unseal_deployment(OTHER, sealed)
    with pytest.raises(ProvisionError, match="cannot be opened"):
        unseal_deployment(NODE, "not base64!")
    garbage = base64.b64encode(seal(NODE.public_key, b'{"twin_id": "x"}')).decode()
    with pytest.raises(ProvisionError, match="not valid"):
        unseal_deployment(NODE, garbage)


def test_only_the_deployer_reads_the_results() -> None:
    report = ResultReport(contract_id=3, version=0, state="ok", message="")
    sealed = seal_results(report, DEPLOYER.public_key)
    assert open_results(DEPLOYER, sealed) == report
    with pytest.raises(UnsealError):
        open_results(OTHER, sealed)
