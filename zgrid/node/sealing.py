"""What travels sealed through the ledger between a deployer and a node.

A deployment is sealed to the node's key (it carries passwords and keys); the node's
results are sealed to the deployer's twin key (they carry addresses and the log
channel's password). Both are libsodium sealed boxes of canonical JSON, base64 on the
ledger. The deployer's client uses the same functions from the other side.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zgrid.identity import CanonicalJSONError, Identity, canonical_dumps, canonical_loads, seal
from zgrid.identity import UnsealError as _UnsealError
from zgrid.node.errors import ProvisionError
from zgrid.types import Deployment, InvalidDeployment, WorkloadResult, parse_deployment

__all__ = [
    "ResultReport",
    "WorkloadReport",
    "open_results",
    "seal_deployment",
    "seal_results",
    "unseal_deployment",
]


class WorkloadReport(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    type: str
    version: int
    result: WorkloadResult


class ResultReport(BaseModel):
    """Every workload's result for one version of one contract's deployment."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    contract_id: int
    version: int
    state: str = Field(description="the deployment as a whole: init | ok | error | paused")
    message: str = ""
    workloads: list[WorkloadReport] = Field(default_factory=list)
    provision_ms: int = Field(
        default=0, description="the node's time from reading this version to having made it"
    )

    def workload(self, name: str) -> WorkloadReport | None:
        return next((w for w in self.workloads if w.name == name), None)


def seal_deployment(deployment: Deployment, node_public_key: bytes) -> str:
    """The ``sealed_deployment`` of a node contract: only that node can open it."""
    return base64.b64encode(seal(node_public_key, deployment.to_json_bytes())).decode()


def unseal_deployment(identity: Identity, sealed: str) -> Deployment:
    """Open a contract's sealed deployment; ProvisionError saying why it cannot be used."""
    try:
        raw = identity.unseal(base64.b64decode(sealed, validate=True))
    except (binascii.Error, ValueError, _UnsealError) as exc:
        raise ProvisionError(
            "the contract's sealed deployment cannot be opened by this node "
            "(not sealed to this node's key, or altered)"
        ) from exc
    try:
        return parse_deployment(raw)
    except InvalidDeployment as exc:
        raise ProvisionError(f"the deployment is not valid: {exc}") from exc


def seal_results(report: ResultReport, deployer_public_key: bytes) -> str:
    body = canonical_dumps(report.model_dump(mode="json"))
    return base64.b64encode(seal(deployer_public_key, body)).decode()


def open_results(identity: Identity, sealed: str) -> ResultReport:
    """The deployer's side: read the results a node sealed to this identity."""
    raw = identity.unseal(base64.b64decode(sealed, validate=True))
    try:
        document: Any = canonical_loads(raw)
        return ResultReport.model_validate(document)
    except (CanonicalJSONError, ValidationError) as exc:
        raise ProvisionError(f"the node's results are not readable: {exc}") from exc
