"""The deployer's pure parts: the rollback version of a failed update, and records."""

from __future__ import annotations

import os
import subprocess
import sys

from zgrid.client.deployer import rollback_deployment
from zgrid.client.records import ContractEntry, DeploymentRecord
from zgrid.types import (
    GIB,
    MIB,
    ZDB,
    ComputeCapacity,
    Deployment,
    MachineNetwork,
    ZMachine,
    ZMount,
    make_workload,
    validate_update,
)


def _deployment(version: int, workloads: list) -> Deployment:  # type: ignore[type-arg]
    return Deployment(
        version=version,
        twin_id=7,
        signature_requirement={"requests": [{"twin_id": 7, "weight": 1}], "weight_required": 1},
        workloads=workloads,
    )


def _machine(env: str) -> ZMachine:
    return ZMachine(
        flist="http://hub/flists/1/busybox",
        compute_capacity=ComputeCapacity(cpu=1, memory=256 * MIB),
        env={"MODE": env},
        network=MachineNetwork(planetary=True),
    )


def test_the_rollback_of_a_failed_update_runs_the_old_version_again() -> None:
    keep = make_workload("logs", ZMount(size=GIB), version=1, metadata='{"key":"disk/logs/0"}')
    previous = _deployment(
        2,
        [
            keep,
            make_workload("disk", ZMount(size=GIB), version=1),
            make_workload("web", _machine("a"), version=2),
        ],
    )
    failed = _deployment(
        3,
        [
            keep,
            make_workload("disk", ZMount(size=2 * GIB), version=3),
            make_workload("web_g1", _machine("b"), version=3),
            make_workload("store", ZDB(size=GIB), version=3),
        ],
    )
    validate_update(previous, failed)
    back = rollback_deployment(previous, failed)
    plan = validate_update(failed, back)  # the node takes it as the next version
    assert back.version == 4
    # The disk the failed version grew stays grown: a disk cannot shrink, its data is kept.
    assert set(plan.unchanged) == {"logs", "disk"}
    assert plan.updated == () and set(plan.added) == {"web"}
    assert set(plan.removed) == {"web_g1", "store"}
    by_name = {w.name: w for w in back.workloads}
    assert by_name["logs"] is keep or by_name["logs"] == keep
    assert by_name["disk"].data == ZMount(size=2 * GIB) and by_name["disk"].version == 3
    assert by_name["web"].data == _machine("a") and by_name["web"].version == 4
    assert back.signature_requirement.signatures == []


def test_a_record_left_by_a_dead_process_is_interrupted() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    record = DeploymentRecord(name="x", network="n", twin_id=1, status="deploying", pid=child.pid)
    assert record.interrupted and record.shown_status() == "interrupted"
    record.claim("applying")
    assert record.pid == os.getpid() and not record.interrupted
    record.status = "deployed"
    assert record.shown_status() == "deployed"


def test_a_record_survives_its_json_form() -> None:
    record = DeploymentRecord(
        name="x",
        network="n",
        twin_id=1,
        status="deployed",
        contracts=[ContractEntry(node_id=3, contract_id=9)],
        hashes=["ab" * 32],
    )
    again = DeploymentRecord.model_validate(record.model_dump(mode="json"))
    assert again == record and again.entry(3) is not None and again.contract_ids() == [9]
