"""The deployer's side of a node test: sign, seal and submit a deployment, then read the
node's sealed results back from the ledger (what the client SDK will do, kept minimal)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from zgrid.chain import ChainClient
from zgrid.identity import Identity, public_key_from_address
from zgrid.node.sealing import ResultReport, open_results, seal_deployment
from zgrid.types import Deployment, Workload, sign_deployment

FINAL = frozenset({"ok", "error"})


@dataclass
class Twin:
    """A deployer: an identity with a twin on the ledger and a client signing as it."""

    identity: Identity
    twin_id: int
    chain: ChainClient


async def funded_twin(ledger_url: str, units: int) -> Twin:
    """A deployer whose account holds ``units`` token units once its twin is made."""
    identity = Identity(secrets.token_bytes(32))
    chain = ChainClient(ledger_url, identity=identity)
    await chain.faucet(units)
    return Twin(identity, await chain.create_twin(), chain)


def deployment_of(
    twin_id: int,
    workloads: Iterable[Workload],
    *,
    version: int = 0,
    requests: list[dict[str, Any]] | None = None,
    weight_required: int = 1,
) -> Deployment:
    return Deployment(
        version=version,
        twin_id=twin_id,
        signature_requirement={
            "requests": requests or [{"twin_id": twin_id, "weight": 1}],
            "weight_required": weight_required,
        },
        workloads=list(workloads),
    )


async def node_key(chain: ChainClient, node_id: int) -> bytes:
    node = await chain.node(node_id)
    twin = await chain.twin(int(node["twin_id"]))
    return public_key_from_address(str(twin["account"]))


def capacity_of(deployment: Deployment) -> dict[str, int]:
    capacity = deployment.capacity()
    return {"cru": capacity.cru, "mru": capacity.mru, "sru": capacity.sru, "hru": capacity.hru}


async def create(
    twin: Twin,
    node_id: int,
    deployment: Deployment,
    *,
    sign: bool = True,
    capacity: dict[str, int] | None = None,
    approvers: list[int] | None = None,
    sealed_for: bytes | None = None,
    deployment_hash: str | None = None,
) -> int:
    """Create the node contract for ``deployment``; returns the contract id."""
    if sign:
        deployment = sign_deployment(deployment, twin.twin_id, twin.identity)
    key = sealed_for or await node_key(twin.chain, node_id)
    result = await twin.chain.submit(
        "contracts.create_node_contract",
        {
            "node_id": node_id,
            "deployment_hash": deployment_hash or deployment.hash_hex(),
            "sealed_deployment": seal_deployment(deployment, key),
            "capacity": capacity if capacity is not None else capacity_of(deployment),
            "approvers": approvers or [],
        },
    )
    return int(result["result"]["contract_id"])


async def update(
    twin: Twin,
    contract_id: int,
    node_id: int,
    deployment: Deployment,
    *,
    capacity: dict[str, int] | None = None,
) -> None:
    """Submit ``deployment`` as the contract's next version, declaring ``capacity`` (by default
    what it needs)."""
    signed = sign_deployment(deployment, twin.twin_id, twin.identity)
    await twin.chain.submit(
        "contracts.update_node_contract",
        {
            "contract_id": contract_id,
            "deployment_hash": signed.hash_hex(),
            "sealed_deployment": seal_deployment(signed, await node_key(twin.chain, node_id)),
            "capacity": capacity if capacity is not None else capacity_of(signed),
        },
    )


async def results(twin: Twin, contract_id: int) -> ResultReport | None:
    contract = await twin.chain.contract(contract_id)
    report = contract.get("result")
    if not report:
        return None
    return open_results(twin.identity, str(report["sealed_results"]))


async def wait_result(
    twin: Twin,
    contract_id: int,
    *,
    version: int = 0,
    states: frozenset[str] = FINAL,
    timeout: float = 60.0,
    where: str = "",
) -> ResultReport:
    """Until the node reported ``version`` in one of ``states`` (the whole deployment's)."""
    deadline = time.monotonic() + timeout
    last: ResultReport | None = None
    while time.monotonic() < deadline:
        last = await results(twin, contract_id)
        if last is not None and last.version == version and last.state in states:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(
        f"contract {contract_id} did not reach {sorted(states)} within {timeout} s; "
        f"last report: {last}{where}"
    )
