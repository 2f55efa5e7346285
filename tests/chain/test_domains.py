"""The remaining calls of each domain and their rules, on a shared real ledger."""

from __future__ import annotations

import base64
import re
import secrets

import pytest

from tests.chain.conftest import ClientFactory, SigningClient, refused
from tests.factories import join_token
from zgrid.chain import RejectCode, TransactionRejected
from zgrid.types import GIB

SEALED = base64.b64encode(b"sealed deployment bytes").decode()
HASH = "ab" * 32


def farm_with_node(
    clients: ClientFactory, ips: int = 0
) -> tuple[SigningClient, int, SigningClient, int]:
    farmer = clients(5)
    farmer.create_twin()
    farm_id = farmer.create_farm(f"farm-{secrets.token_hex(4)}")
    for index in range(ips):
        farmer.add_farm_ip(farm_id, f"198.51.100.{10 + index}/24", "198.51.100.1")
    node = clients(1)
    node.create_twin()
    node_id = node.register_node(
        farm_id,
        {"cru": 4, "mru": 8 * GIB, "sru": 100 * GIB, "hru": 0},
        join_token=join_token(farmer, farm_id),
    )
    return farmer, farm_id, node, node_id


def test_twin_rules(shared_clients: ClientFactory) -> None:
    client = shared_clients(1)
    twin_id = client.create_twin("relay.example")
    assert (
        refused(RejectCode.CONFLICT, client.create_twin)
        == f"this account already has twin {twin_id} (`zgrid twin show` shows it)"
    )
    client.submit("twins.update", {"relay": "other.example"})
    assert client.twin(twin_id)["relay"] == "other.example"


def test_farm_names_are_unique_regardless_of_case(shared_clients: ClientFactory) -> None:
    a, b = shared_clients(1), shared_clients(1)
    a.create_twin()
    b.create_twin()
    farm_id = a.create_farm("Unique-Name")
    assert (
        refused(RejectCode.CONFLICT, lambda: b.create_farm("unique-name"))
        == f"farm name 'unique-name' is taken by farm {farm_id}"
    )
    assert "no pricing policy 9" in refused(
        RejectCode.NOT_FOUND,
        lambda: b.submit("farms.create", {"name": "other-farm", "pricing_policy_id": 9}),
    )


def test_farm_ip_rules(shared_clients: ClientFactory) -> None:
    farmer, farm_id, _, node_id = farm_with_node(shared_clients, ips=1)
    assert "gateway: 10.0.0.1 is not another address" in refused(
        RejectCode.INVALID_ARGS, lambda: farmer.add_farm_ip(farm_id, "198.51.100.20/24", "10.0.0.1")
    )
    assert "prefix" in refused(
        RejectCode.INVALID_ARGS,
        lambda: farmer.add_farm_ip(farm_id, "198.51.100.20", "198.51.100.1"),
    )
    deployer = shared_clients(10)
    deployer.create_twin()
    contract_id = deployer.create_node_contract(node_id, HASH, SEALED, public_ips=1)["result"][
        "contract_id"
    ]
    message = refused(
        RejectCode.CONFLICT,
        lambda: farmer.submit("farms.remove_ip", {"farm_id": farm_id, "ip": "198.51.100.10"}),
    )
    assert message == f"198.51.100.10 is in use by contract {contract_id}"
    assert "asks for 1" in refused(
        RejectCode.CONFLICT,
        lambda: deployer.create_node_contract(node_id, HASH, SEALED, public_ips=1),
    )
    deployer.cancel_contract(contract_id)
    farmer.submit("farms.remove_ip", {"farm_id": farm_id, "ip": "198.51.100.10/24"})
    assert farmer.farm(farm_id)["public_ips"] == []
    assert "has no public IP" in refused(
        RejectCode.NOT_FOUND,
        lambda: farmer.submit("farms.remove_ip", {"farm_id": farm_id, "ip": "198.51.100.10"}),
    )


def test_a_node_keeps_its_farm_while_contracts_hold_its_ips(shared_clients: ClientFactory) -> None:
    farmer, farm_id, node, node_id = farm_with_node(shared_clients, ips=1)
    other_farm = farmer.create_farm(f"farm-{secrets.token_hex(4)}")
    deployer = shared_clients(10)
    deployer.create_twin()
    contract_id = deployer.create_node_contract(node_id, HASH, SEALED, public_ips=1)["result"][
        "contract_id"
    ]
    move = {
        "farm_id": other_farm,
        "resources": {"cru": 4, "mru": 8 * GIB, "sru": 100 * GIB, "hru": 0},
        "join_token": join_token(farmer, other_farm),
    }
    message = refused(RejectCode.CONFLICT, lambda: node.submit("nodes.update", move))
    assert (
        message
        == f"node {node_id} cannot leave farm {farm_id} while contracts {contract_id} hold its public IPs"
    )
    deployer.cancel_contract(contract_id)
    assert all(ip["contract_id"] == 0 for ip in farmer.farm(farm_id)["public_ips"])
    node.submit("nodes.update", move)
    assert node.node(node_id)["farm_id"] == other_farm


def test_only_the_validator_certifies(shared_clients: ClientFactory) -> None:
    farmer, farm_id, _, _ = farm_with_node(shared_clients)
    message = refused(
        RejectCode.FORBIDDEN,
        lambda: farmer.submit(
            "farms.set_certification", {"farm_id": farm_id, "certification": "gold"}
        ),
    )
    assert message == "only the validator may certify farms"


def test_node_rules(shared_clients: ClientFactory) -> None:
    _, farm_id, node, node_id = farm_with_node(shared_clients)
    twin_id = node.twin_of(node.identity.address)["id"]
    message = refused(
        RejectCode.CONFLICT,
        lambda: node.register_node(
            farm_id,
            {"cru": 1, "mru": GIB, "sru": GIB, "hru": 0},
            join_token=join_token(node, farm_id),
        ),
    )
    assert message == (
        f"twin {twin_id} already registered node {node_id}; "
        "a node registers once, then updates its record"
    )
    node.submit(
        "nodes.update",
        {
            "farm_id": farm_id,
            "resources": {"cru": 16, "mru": 64 * GIB, "sru": 1000 * GIB, "hru": 0},
        },
    )
    assert node.node(node_id)["resources"]["cru"] == 16
    assert "no farm 9999" in refused(
        RejectCode.NOT_FOUND,
        lambda: node.submit("nodes.update", {"farm_id": 9999, "resources": {}}),
    )
    now = node.head()["timestamp"]
    message = refused(RejectCode.INVALID_ARGS, lambda: node.report_uptime(10, now + 3600))
    assert re.search(
        r"timestamp: \d+ is \+3[56]\d\d s from block time \d+ \(at most ±60 s\)$", message
    ), message
    node.submit("nodes.set_power", {"power": "standby"})
    assert node.node(node_id)["status"] == "standby"
    assert "latitude" in refused(
        RejectCode.INVALID_ARGS,
        lambda: node.submit(
            "nodes.update",
            {"farm_id": farm_id, "resources": {}, "location": {"latitude": "51.05.3"}},
        ),
    )


def test_name_contracts(shared_clients: ClientFactory) -> None:
    owner, other = shared_clients(1), shared_clients(1)
    owner.create_twin()
    other.create_twin()
    name = f"site-{secrets.token_hex(3)}"
    contract_id = owner.submit("contracts.create_name_contract", {"name": name})["result"][
        "contract_id"
    ]
    taken = refused(
        RejectCode.CONFLICT, lambda: other.submit("contracts.create_name_contract", {"name": name})
    )
    assert taken == f"name {name!r} is taken by contract {contract_id}"
    assert "String should match pattern" in refused(
        RejectCode.INVALID_ARGS,
        lambda: other.submit("contracts.create_name_contract", {"name": "No"}),
    )
    assert "belongs to twin" in refused(
        RejectCode.FORBIDDEN, lambda: other.cancel_contract(contract_id)
    )
    owner.cancel_contract(contract_id)
    assert other.submit("contracts.create_name_contract", {"name": name})["status"] == "included"
    assert "is deleted (canceled_by_user)" in refused(
        RejectCode.CONFLICT, lambda: owner.cancel_contract(contract_id)
    )


def test_rent_contracts(shared_clients: ClientFactory) -> None:
    _, _, node, node_id = farm_with_node(shared_clients)
    renter, stranger = shared_clients(10), shared_clients(10)
    renter_twin = renter.create_twin()
    stranger.create_twin()
    rent_id = renter.submit("contracts.create_rent_contract", {"node_id": node_id})["result"][
        "contract_id"
    ]
    assert node.node(node_id)["rented_by"] == renter_twin
    assert f"rented by twin {renter_twin}" in refused(
        RejectCode.FORBIDDEN, lambda: stranger.create_node_contract(node_id, HASH, SEALED)
    )
    assert "already rented" in refused(
        RejectCode.CONFLICT,
        lambda: stranger.submit("contracts.create_rent_contract", {"node_id": node_id}),
    )
    own = renter.create_node_contract(node_id, HASH, SEALED)["result"]["contract_id"]
    assert "cancel the node contracts" in refused(
        RejectCode.CONFLICT, lambda: renter.cancel_contract(rent_id)
    )
    renter.cancel_contract(own)
    renter.cancel_contract(rent_id)
    assert node.node(node_id)["rented_by"] == 0


def test_approvals_for_multi_signature_deployments(shared_clients: ClientFactory) -> None:
    _, _, _, node_id = farm_with_node(shared_clients)
    owner, stakeholder = shared_clients(10), shared_clients(1)
    owner_twin = owner.create_twin()
    stakeholder_twin = stakeholder.create_twin()
    contract_id = owner.submit(
        "contracts.create_node_contract",
        {
            "node_id": node_id,
            "deployment_hash": HASH,
            "sealed_deployment": SEALED,
            "approvers": [owner_twin, stakeholder_twin],
        },
    )["result"]["contract_id"]
    assert owner.contract(contract_id)["approvers"] == [owner_twin, stakeholder_twin]
    good = stakeholder.identity.sign(bytes.fromhex(HASH)).hex()
    result = stakeholder.submit(
        "contracts.approve",
        {"contract_id": contract_id, "deployment_hash": HASH, "signature": good},
    )
    assert result["events"][0]["name"] == "ContractApproved"
    assert owner.contract(contract_id)["approvals"] == [
        {"twin_id": stakeholder_twin, "signature": good, "deployment_hash": HASH}
    ]
    forged = owner.identity.sign(bytes.fromhex(HASH)).hex()
    assert "not twin" in refused(
        RejectCode.BAD_SIGNATURE,
        lambda: stakeholder.submit(
            "contracts.approve",
            {"contract_id": contract_id, "deployment_hash": HASH, "signature": forged},
        ),
    )
    stale = "cd" * 32
    assert "is at deployment" in refused(
        RejectCode.CONFLICT,
        lambda: stakeholder.submit(
            "contracts.approve",
            {"contract_id": contract_id, "deployment_hash": stale, "signature": good},
        ),
    )


def test_node_reports_only_for_its_own_contracts(shared_clients: ClientFactory) -> None:
    _, _, _, node_id = farm_with_node(shared_clients)
    _, _, other_node, other_node_id = farm_with_node(shared_clients)
    deployer = shared_clients(10)
    deployer.create_twin()
    contract_id = deployer.create_node_contract(node_id, HASH, SEALED)["result"]["contract_id"]
    message = refused(
        RejectCode.FORBIDDEN,
        lambda: other_node.submit(
            "contracts.report_result",
            {"contract_id": contract_id, "version": 0, "sealed_results": SEALED},
        ),
    )
    assert message == f"contract {contract_id} runs on node {node_id}, not on node {other_node_id}"
    assert "sealed_deployment: must be base64" in refused(
        RejectCode.INVALID_ARGS,
        lambda: deployer.submit(
            "contracts.update_node_contract",
            {"contract_id": contract_id, "deployment_hash": HASH, "sealed_deployment": "!!"},
        ),
    )


def test_sealed_deployment_size_limit(shared_clients: ClientFactory) -> None:
    _, _, _, node_id = farm_with_node(shared_clients)
    deployer = shared_clients(10)
    deployer.create_twin()
    too_big = base64.b64encode(b"x" * (64 * 1024 + 1)).decode()
    message = refused(
        RejectCode.INVALID_ARGS, lambda: deployer.create_node_contract(node_id, HASH, too_big)
    )
    assert "is 65537 bytes, more than the 65536 allowed" in message


def test_a_contract_needs_funds(shared_clients: ClientFactory) -> None:
    _, _, _, node_id = farm_with_node(shared_clients, ips=1)
    broke = shared_clients(1)
    broke.create_twin()
    broke.transfer("ab" * 32, 9_960_000)  # leaves 0.002 tokens: a fee, not a contract
    message = refused(
        RejectCode.INSUFFICIENT_BALANCE,
        lambda: broke.create_node_contract(node_id, HASH, SEALED, public_ips=1),
    )
    assert message == (
        "a node contract needs a free balance of at least 0.041 tokens (0.04 and the 0.001 token "
        "fee), the account has 0.002; get tokens with `zgrid account faucet` (dev chains) or "
        "`zgrid account transfer`"
    )


def test_a_node_reports_nothing_on_a_deleted_contract(shared_clients: ClientFactory) -> None:
    _, _, node, node_id = farm_with_node(shared_clients)
    deployer = shared_clients(10)
    deployer.create_twin()
    contract_id = deployer.create_node_contract(node_id, HASH, SEALED)["result"]["contract_id"]
    node.submit(
        "contracts.report_result",
        {"contract_id": contract_id, "version": 0, "sealed_results": SEALED},
    )
    deployer.cancel_contract(contract_id)
    reports: list[tuple[str, dict[str, object]]] = [
        ("contracts.report_result", {"version": 0, "sealed_results": SEALED}),
        ("contracts.report_resources", {"used": {"cru": 1}}),
    ]
    for call, args in reports:
        with pytest.raises(TransactionRejected) as caught:
            node.submit(call, {"contract_id": contract_id, **args})
        assert caught.value.code == RejectCode.CONFLICT
        assert caught.value.message == f"contract {contract_id} is deleted"


def test_the_client_names_who_may_approve_a_contract(shared_clients: ClientFactory) -> None:
    farmer, _, _, node_id = farm_with_node(shared_clients)
    deployer = shared_clients(10)
    own = deployer.create_twin()
    created = deployer.create_node_contract(node_id, HASH, SEALED, approvers=[own])
    contract_id = created["result"]["contract_id"]
    assert deployer.contract(contract_id)["approvers"] == [own]
    farmer_twin = farmer.twin_of(farmer.identity.address)["id"]
    deployer.update_node_contract(contract_id, "cd" * 32, SEALED, approvers=[own, farmer_twin])
    assert deployer.contract(contract_id)["approvers"] == [own, farmer_twin]
    deployer.update_node_contract(contract_id, "ef" * 32, SEALED)  # left out: kept
    assert deployer.contract(contract_id)["approvers"] == [own, farmer_twin]
