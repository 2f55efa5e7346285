"""The provision engine against a real ledger: what it admits, refuses, waits for and removes.

These deployments hold no workload a primitive must make (or only ones the engine
refuses before any primitive runs), so they test the engine's own rules; the node's
end-to-end tests run the real primitives.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chain.conftest import LedgerProcess, running_ledger
from tests.factories import join_token
from tests.node.deployer import Twin, create, deployment_of, results, update, wait_result
from zgrid.chain import UNITS_PER_TOKEN, ChainClient, SyncChainClient
from zgrid.identity import Identity
from zgrid.node.engine import Engine, _ledger_step
from zgrid.node.state import LocalState
from zgrid.types import (
    GIB,
    MIB,
    Capacity,
    ComputeCapacity,
    MachineNetwork,
    UpdateRefused,
    Volume,
    ZMachine,
    ZMount,
    make_workload,
    sign_deployment,
    validate_update,
)

NODE_RESOURCES = {"cru": 4, "mru": 8 * GIB, "sru": 100 * GIB, "hru": 0}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running_ledger(tmp_path_factory.mktemp("engine")) as process:
        yield process


def _funded(url: str, identity: Identity) -> SyncChainClient:
    client = SyncChainClient(url, identity=identity)
    client.faucet(50 * UNITS_PER_TOKEN)
    return client


def _node(ledger: LedgerProcess) -> tuple[Identity, int]:
    farmer = _funded(ledger.url, Identity(secrets.token_bytes(32)))
    farmer.create_twin()
    farm_id = farmer.create_farm(f"farm-{secrets.token_hex(4)}")
    identity = Identity(secrets.token_bytes(32))
    node = _funded(ledger.url, identity)
    node.create_twin()
    node_id = node.register_node(farm_id, NODE_RESOURCES, join_token=join_token(farmer, farm_id))
    farmer.close()
    node.close()
    return identity, node_id


async def _twin(url: str) -> Twin:
    identity = Identity(secrets.token_bytes(32))
    chain = ChainClient(url, identity=identity)
    await chain.faucet(50 * UNITS_PER_TOKEN)
    return Twin(identity, await chain.create_twin(), chain)


@contextlib.asynccontextmanager
async def _engine(
    ledger: LedgerProcess, state_dir: Path, node: tuple[Identity, int], capacity: Capacity
) -> AsyncIterator[Engine]:
    identity, node_id = node
    chain = ChainClient(ledger.url, identity=identity)
    state = LocalState(state_dir / "state.db")
    engine = Engine(
        chain=chain,
        identity=identity,
        state=state,
        primitives={},
        node_id=node_id,
        capacity=capacity,
    )
    task = asyncio.create_task(engine.run())
    try:
        yield engine
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await chain.close()
        state.close()


def _run(coroutine: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coroutine(), 90))


ROOMY = Capacity(cru=4, mru=8 * GIB, sru=100 * GIB)


def test_a_valid_deployment_runs_and_bad_ones_end_in_error(
    ledger: LedgerProcess, tmp_path: Path
) -> None:
    node = _node(ledger)

    async def scenario() -> None:
        async with _engine(ledger, tmp_path, node, ROOMY):
            alice, mallory = await _twin(ledger.url), await _twin(ledger.url)
            good = await create(alice, node[1], deployment_of(alice.twin_id, []))
            assert (await wait_result(alice, good)).state == "ok"

            wrong_hash = await create(
                alice,
                node[1],
                deployment_of(alice.twin_id, [], version=0),
                deployment_hash="ab" * 32,
            )
            report = await wait_result(alice, wrong_hash)
            assert report.state == "error" and "does not match the hash" in report.message

            # Mallory claims Alice's twin: Alice's key never signed it.
            forged = deployment_of(alice.twin_id, [])
            forged = sign_deployment(forged, alice.twin_id, mallory.identity)
            contract = await create(alice, node[1], forged, sign=False)
            report = await wait_result(alice, contract)
            assert report.state == "error" and "signed by someone else" in report.message

            # Mallory's own contract carrying Alice's deployment: not Mallory's twin.
            stolen = await create(
                mallory,
                node[1],
                sign_deployment(deployment_of(alice.twin_id, []), alice.twin_id, alice.identity),
                sign=False,
            )
            report = await wait_result(mallory, stolen)
            assert (
                report.state == "error" and f"belongs to twin {mallory.twin_id}" in report.message
            )
            for twin in (alice, mallory):
                await twin.chain.close()

    _run(scenario)


def test_capacity_beyond_what_is_free_or_declared_is_refused(
    ledger: LedgerProcess, tmp_path: Path
) -> None:
    node = _node(ledger)
    machine = make_workload(
        "web",
        ZMachine(
            flist="https://hub.example/flists/1/busybox",
            compute_capacity=ComputeCapacity(cpu=1, memory=4 * GIB),
            network=MachineNetwork(planetary=True),
        ),
    )

    async def scenario() -> None:
        async with _engine(
            ledger, tmp_path, node, Capacity(cru=4, mru=int(1.2 * GIB), sru=100 * GIB)
        ):
            alice = await _twin(ledger.url)
            deployment = deployment_of(alice.twin_id, [machine])
            contract = await create(alice, node[1], deployment)
            report = await wait_result(alice, contract)
            assert report.state == "error"
            assert "not enough memory: asks 4 GiB, 1.2 GiB free" in report.message
            declared = {"cru": 1, "mru": 2 * GIB, "sru": 1 * GIB, "hru": 0}
            contract = await create(alice, node[1], deployment, capacity=declared)
            report = await wait_result(alice, contract)
            assert (
                "needs 4 GiB of memory, more than the 2 GiB its contract declares" in report.message
            )
            await alice.chain.close()

    _run(scenario)


def test_a_multisignature_deployment_waits_for_its_approval(
    ledger: LedgerProcess, tmp_path: Path
) -> None:
    node = _node(ledger)

    async def scenario() -> None:
        async with _engine(ledger, tmp_path, node, ROOMY):
            alice, bob = await _twin(ledger.url), await _twin(ledger.url)
            deployment = deployment_of(
                alice.twin_id,
                [],
                requests=[
                    {"twin_id": alice.twin_id, "weight": 1},
                    {"twin_id": bob.twin_id, "weight": 1},
                ],
                weight_required=2,
            )
            contract = await create(alice, node[1], deployment, approvers=[bob.twin_id])
            report = await wait_result(alice, contract, states=frozenset({"init"}))
            assert f"waiting for approval of twin {bob.twin_id}, weight 1 of 2" in report.message
            await bob.chain.submit(
                "contracts.approve",
                {
                    "contract_id": contract,
                    "deployment_hash": deployment.hash_hex(),
                    "signature": bob.identity.sign(deployment.hash()).hex(),
                },
            )
            assert (await wait_result(alice, contract)).state == "ok"
            for twin in (alice, bob):
                await twin.chain.close()

    _run(scenario)


def test_a_restarted_engine_redoes_nothing_and_a_cancel_removes_the_contract(
    ledger: LedgerProcess, tmp_path: Path
) -> None:
    node = _node(ledger)

    async def scenario() -> None:
        alice = await _twin(ledger.url)
        async with _engine(ledger, tmp_path, node, ROOMY) as engine:
            contract = await create(alice, node[1], deployment_of(alice.twin_id, []))
            await wait_result(alice, contract)
            for _ in range(50):  # the result is readable before the reporter has noted it
                if engine._reporter.sent:
                    break
                await asyncio.sleep(0.1)
            assert engine._reporter.sent >= 1
        async with _engine(ledger, tmp_path, node, ROOMY) as engine:
            await asyncio.sleep(0.5)
            await engine.wait_idle()
            assert engine._reporter.sent == 0  # the ledger already has these results
            await alice.chain.cancel_contract(contract)
            for _ in range(100):
                if engine._state.contract(contract) is None:
                    break
                await asyncio.sleep(0.1)
            assert engine._state.contract(contract) is None
        await alice.chain.close()

    _run(scenario)


def test_a_refused_update_keeps_the_running_version_and_says_why(
    ledger: LedgerProcess, tmp_path: Path
) -> None:
    node = _node(ledger)

    async def scenario() -> None:
        async with _engine(ledger, tmp_path, node, ROOMY):
            alice = await _twin(ledger.url)
            first = deployment_of(alice.twin_id, [make_workload("d", ZMount(size=MIB))])
            contract = await create(alice, node[1], first)
            report = await wait_result(alice, contract)
            # This engine runs no disks: the workload's own result says so.
            assert "does not run zmount workloads" in report.workloads[0].result.message
            # A workload may not change its type in an update.
            second = deployment_of(
                alice.twin_id, [make_workload("d", Volume(size=MIB), version=1)], version=1
            )
            await update(alice, contract, node[1], second)
            deadline = time.monotonic() + 30
            while True:
                current = await results(alice, contract)
                if current is not None and "version 1 refused" in current.message:
                    break
                assert time.monotonic() < deadline, current
                await asyncio.sleep(0.1)
            assert current.version == 0 and "cannot change" in current.message
            report = current
            assert report.version == 0 and report.workloads[0].type == "zmount"
            await alice.chain.close()

    _run(scenario)


def _web(script: str, version: int) -> Any:
    return make_workload(
        "web",
        ZMachine(
            flist="https://hub.example/flists/1/busybox",
            compute_capacity=ComputeCapacity(cpu=1, memory=GIB),
            entrypoint=script,
            network=MachineNetwork(planetary=True),
        ),
        version=version,
    )


def test_versions_the_node_skipped_count_as_steps_and_the_update_rules_still_hold() -> None:
    running = deployment_of(7, [make_workload("a", ZMount(size=MIB)), _web("run", 0)], version=1)

    def check(*workloads: Any, version: int) -> None:
        validate_update(*_ledger_step(running, deployment_of(7, workloads, version=version)))

    # The next version follows the rules as they are: an unchanged workload keeps its version.
    check(make_workload("a", ZMount(size=MIB)), _web("run", 0), version=2)
    with pytest.raises(UpdateRefused, match="unchanged workload must keep version 0, got 2"):
        check(make_workload("a", ZMount(size=MIB)), _web("run", 2), version=2)
    # Versions 2 and 3 were refused or never seen: a disk grown or added in one of them,
    # and the machine changed there and back, carry that version.
    check(
        make_workload("a", ZMount(size=2 * MIB), version=2),
        make_workload("b", ZMount(size=MIB), version=3),
        _web("run", 3),
        version=4,
    )
    # Still refused: a machine's data changed (whichever version it carries), a new type, and
    # a change or a new workload carrying a version no newer than the running deployment's.
    with pytest.raises(UpdateRefused, match="zmachine workload cannot change its data"):
        check(make_workload("a", ZMount(size=MIB)), _web("other", 3), version=4)
    with pytest.raises(UpdateRefused, match="cannot change from zmount to volume"):
        check(make_workload("a", Volume(size=MIB), version=2), _web("run", 0), version=4)
    with pytest.raises(UpdateRefused, match="changed workload must have version 4, got 1"):
        check(make_workload("a", ZMount(size=2 * MIB), version=1), _web("run", 0), version=4)
    with pytest.raises(UpdateRefused, match="new workload must have version 4"):
        check(make_workload("b", ZMount(size=MIB), version=1), _web("run", 0), version=4)
