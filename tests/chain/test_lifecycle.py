"""Twins, a farm with public IPs, a node, and a node contract's whole life, through a real ledger."""

from __future__ import annotations

import base64
import json

import httpx

from tests.chain.conftest import ClientFactory, LedgerProcess
from tests.chain.events import collect, positions
from tests.factories import join_token
from zgrid.chain import UNITS_PER_TOKEN, ChainEvent
from zgrid.identity import Identity, seal
from zgrid.types import (
    GIB,
    Deployment,
    ZMount,
    make_workload,
    parse_deployment,
    sign_deployment,
    verify_signatures,
)

RESOURCES = {"cru": 8, "mru": 32 * GIB, "sru": 512 * GIB, "hru": 2048 * GIB}


def deployment(twin_id: int, version: int, size_gib: int) -> Deployment:
    disk = make_workload("disk", ZMount(size=size_gib * GIB), version=version)
    return parse_deployment(
        {
            "version": version,
            "twin_id": twin_id,
            "signature_requirement": {"requests": [{"twin_id": twin_id, "required": True}]},
            "workloads": [disk.to_json_dict()],
        }
    )


def sealed_for(node_key: bytes, signed: Deployment) -> str:
    return base64.b64encode(seal(node_key, signed.to_json_bytes())).decode()


def test_contract_life_and_its_events(ledger: LedgerProcess, clients: ClientFactory) -> None:
    farmer = clients(10)
    farmer_twin = farmer.create_twin()
    farm_id = farmer.create_farm("green-farm")
    for last in (10, 11, 12):
        farmer.add_farm_ip(farm_id, f"203.0.113.{last}/24", "203.0.113.1")

    node_identity = Identity(bytes(range(32)))
    node = clients(1, identity=node_identity)
    node_twin = node.create_twin()
    node_id = node.register_node(
        farm_id,
        RESOURCES,
        join_token=join_token(farmer, farm_id),
        location={"country": "BE", "city": "Ghent", "latitude": "51.05", "longitude": "3.72"},
    )
    node.report_uptime(60, node.head()["timestamp"])
    listed = node.query("nodes", farm_id=farm_id, status="up", free_sru=100 * GIB)
    assert [n["id"] for n in listed["items"]] == [node_id]

    deployer = clients(100)
    deployer_twin = deployer.create_twin()
    assert len({farmer_twin, node_twin, deployer_twin}) == 3

    first = sign_deployment(deployment(deployer_twin, 0, 10), deployer_twin, deployer.identity)
    created = deployer.create_node_contract(
        node_id,
        first.hash_hex(),
        sealed_for(node_identity.public_key, first),
        public_ips=2,
        capacity={"sru": 10 * GIB},
    )
    contract_id = created["result"]["contract_id"]
    reserved = [ip["ip"] for ip in created["result"]["public_ips"]]
    assert reserved == ["203.0.113.10/24", "203.0.113.11/24"]
    farm = farmer.farm(farm_id)
    assert [ip["contract_id"] for ip in farm["public_ips"]] == [contract_id, contract_id, 0]

    # Only the node can read what it must run, and it checks the deployer's signature.
    contract = node.contract(contract_id)
    opened = parse_deployment(node_identity.unseal(base64.b64decode(contract["sealed_deployment"])))
    assert opened.hash_hex() == contract["deployment_hash"]
    assert verify_signatures(opened, {deployer_twin: deployer.identity.public_key}) == 1

    second = sign_deployment(deployment(deployer_twin, 1, 20), deployer_twin, deployer.identity)
    updated = deployer.update_node_contract(
        contract_id,
        second.hash_hex(),
        sealed_for(node_identity.public_key, second),
        capacity={"sru": 20 * GIB},
    )
    assert updated["result"]["version"] == 1

    results = base64.b64encode(
        seal(deployer.identity.public_key, json.dumps({"disk": "ok"}).encode())
    ).decode()
    node.submit(
        "contracts.report_result",
        {"contract_id": contract_id, "version": 1, "sealed_results": results},
    )
    used = {"cru": 0, "mru": 0, "sru": 20 * GIB, "hru": 0}
    node.submit("contracts.report_resources", {"contract_id": contract_id, "used": used})
    assert node.node(node_id)["used"] == used

    deployer.cancel_contract(contract_id)
    assert deployer.contract(contract_id)["state"] == "deleted"
    assert all(ip["contract_id"] == 0 for ip in farmer.farm(farm_id)["public_ips"])
    assert node.node(node_id)["used"]["sru"] == 0
    assert node.node(node_id)["reserved"]["sru"] == 0

    def contract_done(seen: list[ChainEvent]) -> bool:
        return any(e.name == "ContractCanceled" for e in seen)

    everything = collect(ledger.url, 0, contract_done)
    assert positions(everything) == sorted(set(positions(everything)))  # in order, no duplicates
    # Its final bill (when the seconds it ran come to a token unit) is left out here.
    contract_events = [
        e.name
        for e in everything
        if e.data.get("contract_id") == contract_id and e.name != "ContractBilled"
    ]
    assert contract_events == [
        "ContractCreated",
        "ContractUpdated",
        "ContractResultReported",
        "ContractResourcesReported",
        "ContractCanceled",
    ]
    names = [e.name for e in everything]
    assert (
        names.index("TwinCreated")
        < names.index("FarmCreated")
        < names.index("NodeRegistered")
        < names.index("ContractCreated")
    )
    created_event = next(e for e in everything if e.name == "ContractCreated")
    assert created_event.data["public_ips"][0]["ip"] == "203.0.113.10/24"

    # A follower that starts again from an older height sees exactly the same tail.
    resumed = collect(ledger.url, created_event.height, contract_done)
    assert resumed == [e for e in everything if e.height >= created_event.height]

    # The balance paid its four fees and the bills of the seconds the contract ran.
    bills = httpx.get(f"{ledger.url}/contracts/{contract_id}/bills").json()["items"]
    paid = sum(bill["amount"] for bill in bills if bill["status"] == "paid")
    assert deployer.account(deployer.identity.address)["free"] == (
        100 * UNITS_PER_TOKEN - 4 * 10_000 - paid
    )
