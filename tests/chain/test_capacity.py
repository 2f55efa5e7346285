"""The capacity a node contract declares: it must fit, it is reserved on the node, it is freed."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from tests.chain.conftest import ClientFactory, SigningClient, refused
from tests.chain.events import collect
from tests.chain.test_domains import farm_with_node
from tests.factories import join_token
from zgrid.chain import RejectCode
from zgrid.chain.units import U64_MAX
from zgrid.types import GIB, MIB

SEALED = base64.b64encode(b"sealed deployment bytes").decode()
HASH = "ab" * 32
ZERO = {"cru": 0, "mru": 0, "sru": 0, "hru": 0}


def _resources(**values: int) -> dict[str, int]:
    return {**ZERO, **values}


def _deployer(clients: ClientFactory) -> SigningClient:
    deployer = clients(10)
    deployer.create_twin()
    return deployer


def _create(deployer: SigningClient, node_id: int, **capacity: int) -> int:
    created = deployer.create_node_contract(node_id, HASH, SEALED, capacity=_resources(**capacity))
    return int(created["result"]["contract_id"])


def test_a_contract_that_fits_is_reserved_on_its_node(shared_clients: ClientFactory) -> None:
    # The node of farm_with_node has 4 cores, 8 GiB of memory, 100 GiB of SSD, no HDD.
    _, _, _, node_id = farm_with_node(shared_clients)
    deployer = _deployer(shared_clients)
    first = _create(deployer, node_id, cru=1, mru=2 * GIB, sru=10 * GIB)
    second = _create(deployer, node_id, cru=3, mru=6 * GIB, sru=90 * GIB)
    node = deployer.node(node_id)
    assert node["reserved"] == _resources(cru=4, mru=8 * GIB, sru=100 * GIB)
    assert node["free"] == ZERO
    assert deployer.contract(first)["capacity"] == _resources(cru=1, mru=2 * GIB, sru=10 * GIB)
    assert deployer.contract(second)["capacity"]["sru"] == 90 * GIB
    # Without a capacity a contract reserves nothing, and still fits a full node.
    bare = deployer.create_node_contract(node_id, HASH, SEALED)["result"]["contract_id"]
    assert deployer.contract(bare)["capacity"] == ZERO


def test_a_contract_that_does_not_fit_is_refused_naming_the_resource(
    shared_clients: ClientFactory,
) -> None:
    _, _, _, node_id = farm_with_node(shared_clients)
    deployer = _deployer(shared_clients)
    _create(deployer, node_id, cru=1, mru=8 * GIB - 800 * MIB)
    assert refused(RejectCode.CONFLICT, lambda: _create(deployer, node_id, mru=4 * GIB)) == (
        f"node {node_id} has 800 MiB of memory free, the contract reserves 4 GiB"
    )
    assert refused(RejectCode.CONFLICT, lambda: _create(deployer, node_id, cru=4)) == (
        f"node {node_id} has 3 cores free, the contract reserves 4 cores"
    )
    assert refused(RejectCode.CONFLICT, lambda: _create(deployer, node_id, sru=101 * GIB)) == (
        f"node {node_id} has 100 GiB of SSD storage free, the contract reserves 101 GiB"
    )
    assert refused(RejectCode.CONFLICT, lambda: _create(deployer, node_id, hru=1)) == (
        f"node {node_id} has 0 bytes of HDD storage free, the contract reserves 1 bytes"
    )
    # Amounts that round alike are told apart by their exact bytes.
    message = refused(RejectCode.CONFLICT, lambda: _create(deployer, node_id, sru=100 * GIB + 1))
    assert message == (
        f"node {node_id} has 100 GiB ({100 * GIB} bytes) of SSD storage free, "
        f"the contract reserves 100 GiB ({100 * GIB + 1} bytes)"
    )
    # Nothing of the refused contracts was reserved.
    assert deployer.node(node_id)["reserved"] == _resources(cru=1, mru=8 * GIB - 800 * MIB)


def test_an_update_may_grow_into_what_is_free_and_shrink(shared_clients: ClientFactory) -> None:
    _, _, _, node_id = farm_with_node(shared_clients)
    deployer = _deployer(shared_clients)
    other = _create(deployer, node_id, mru=5 * GIB)
    contract_id = _create(deployer, node_id, mru=2 * GIB)

    # It may grow to what it held plus what is free (2 + 1 GiB), not beyond.
    message = refused(
        RejectCode.CONFLICT,
        lambda: deployer.update_node_contract(
            contract_id, "cd" * 32, SEALED, capacity=_resources(mru=3 * GIB + MIB)
        ),
    )
    assert message == (
        f"node {node_id} has 3 GiB ({3 * GIB} bytes) of memory free counting the 2 GiB "
        f"the contract holds, the contract reserves 3 GiB ({3 * GIB + MIB} bytes)"
    )
    assert deployer.contract(contract_id)["version"] == 0  # the refused update changed nothing

    grown = _resources(cru=4, mru=3 * GIB, sru=100 * GIB)
    deployer.update_node_contract(contract_id, "cd" * 32, SEALED, capacity=grown)
    assert deployer.contract(contract_id)["capacity"] == grown
    assert deployer.node(node_id)["reserved"] == _resources(cru=4, mru=8 * GIB, sru=100 * GIB)

    # Left out, the capacity stays what it was.
    deployer.update_node_contract(contract_id, "ef" * 32, SEALED)
    assert deployer.contract(contract_id)["capacity"] == grown

    shrunk = _resources(mru=GIB)
    deployer.update_node_contract(contract_id, "ab" * 32, SEALED, capacity=shrunk)
    assert deployer.node(node_id)["reserved"] == _resources(mru=6 * GIB)
    assert deployer.node(node_id)["free"] == _resources(cru=4, mru=2 * GIB, sru=100 * GIB)
    assert deployer.contract(other)["capacity"] == _resources(mru=5 * GIB)


def test_a_contract_may_shrink_on_a_node_that_shrank(shared_clients: ClientFactory) -> None:
    _, farm_id, node, node_id = farm_with_node(shared_clients)
    deployer = _deployer(shared_clients)
    first = _create(deployer, node_id, cru=2)
    _create(deployer, node_id, cru=2)
    node.update_node(farm_id, _resources(cru=2, mru=8 * GIB, sru=100 * GIB))
    assert deployer.node(node_id)["free"]["cru"] == -2
    deployer.update_node_contract(first, "cd" * 32, SEALED, capacity=_resources(cru=1))
    assert deployer.node(node_id)["reserved"]["cru"] == 3
    assert refused(
        RejectCode.CONFLICT,
        lambda: deployer.update_node_contract(first, "ef" * 32, SEALED, capacity=_resources(cru=2)),
    ) == (
        f"node {node_id} has 0 cores free counting the 1 core the contract holds, "
        "the contract reserves 2 cores"
    )


def test_cancel_frees_the_reservation(
    shared_clients: ClientFactory,
) -> None:
    farmer, farm_id, node, node_id = farm_with_node(shared_clients)
    deployer = _deployer(shared_clients)
    first = _create(deployer, node_id, cru=2, mru=4 * GIB)
    _create(deployer, node_id, cru=1, sru=GIB)
    node.submit(
        "contracts.report_resources",
        {"contract_id": first, "used": _resources(cru=2, mru=3 * GIB)},
    )
    deployer.cancel_contract(first)
    record = deployer.node(node_id)
    assert record["reserved"] == _resources(cru=1, sru=GIB)
    assert record["used"] == ZERO
    # What was freed can be reserved again.
    again = _create(deployer, node_id, cru=3, mru=8 * GIB)

    # The farmer removing the node ends its contracts with it.
    farmer.submit("farms.remove_node", {"farm_id": farm_id, "node_id": node_id})
    assert deployer.contract(again)["state"] == "deleted"


def test_a_node_reports_no_more_than_its_contract_declared(shared_clients: ClientFactory) -> None:
    _, _, node, node_id = farm_with_node(shared_clients)
    deployer = _deployer(shared_clients)
    contract_id = _create(deployer, node_id, cru=2, mru=GIB)

    def report(**used: int) -> Any:
        return node.report_resources(contract_id, _resources(**used))

    node.report_result(contract_id, 0, SEALED)
    assert node.contract(contract_id)["result"]["version"] == 0
    report(cru=2, mru=GIB)
    assert node.node(node_id)["used"] == _resources(cru=2, mru=GIB)
    assert refused(RejectCode.INVALID_ARGS, lambda: report(mru=GIB + 1)) == (
        "invalid args for contracts.report_resources: used.mru: 1 GiB "
        f"({GIB + 1} bytes) of memory is more than the 1 GiB ({GIB} bytes) "
        f"contract {contract_id} reserves"
    )
    assert refused(RejectCode.INVALID_ARGS, lambda: report(cru=3)) == (
        "invalid args for contracts.report_resources: used.cru: 3 cores is more than "
        f"the 2 cores contract {contract_id} reserves"
    )
    assert node.node(node_id)["used"] == _resources(cru=2, mru=GIB)


def test_reservations_span_64_bits_and_never_overflow(shared_clients: ClientFactory) -> None:
    farmer = shared_clients(5)
    farmer.create_twin()
    farm_id = farmer.create_farm(f"farm-{secrets.token_hex(4)}")
    node = shared_clients(1)
    node.create_twin()
    everything = {"cru": U64_MAX, "mru": U64_MAX, "sru": U64_MAX, "hru": U64_MAX}
    node_id = node.register_node(farm_id, everything, join_token=join_token(farmer, farm_id))
    deployer = _deployer(shared_clients)
    whole = deployer.create_node_contract(node_id, HASH, SEALED, capacity=everything)
    assert deployer.node(node_id)["reserved"] == everything
    assert deployer.node(node_id)["free"] == ZERO
    assert refused(RejectCode.CONFLICT, lambda: _create(deployer, node_id, cru=1)) == (
        f"node {node_id} has 0 cores free, the contract reserves 1 core"
    )
    contract_id = whole["result"]["contract_id"]
    node.submit("contracts.report_resources", {"contract_id": contract_id, "used": everything})
    assert node.node(node_id)["used"] == everything
    # Beyond 64 bits is refused before the state machine sees it.
    too_big = {**everything, "mru": U64_MAX + 1}
    assert "does not fit in 64 bits" in refused(
        RejectCode.MALFORMED,
        lambda: deployer.update_node_contract(contract_id, "cd" * 32, SEALED, capacity=too_big),
    )
    deployer.cancel_contract(contract_id)
    assert deployer.node(node_id)["reserved"] == ZERO


def test_events_carry_the_capacity(shared_ledger: Any, shared_clients: ClientFactory) -> None:
    _, _, _, node_id = farm_with_node(shared_clients)
    deployer = _deployer(shared_clients)
    start = deployer.head()["height"]
    contract_id = _create(deployer, node_id, cru=1, mru=GIB)
    deployer.update_node_contract(contract_id, "cd" * 32, SEALED, capacity=_resources(cru=2))
    seen = collect(
        shared_ledger.url,
        start,
        lambda events: any(
            e.name == "ContractUpdated" and e.data["contract_id"] == contract_id for e in events
        ),
    )
    mine = {e.name: e.data for e in seen if e.data.get("contract_id") == contract_id}
    assert mine["ContractCreated"]["capacity"] == _resources(cru=1, mru=GIB)
    assert mine["ContractUpdated"]["capacity"] == _resources(cru=2)
