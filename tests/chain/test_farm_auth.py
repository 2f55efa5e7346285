"""A node joins a farm only with its farmer's join token; the farmer can remove it again."""

from __future__ import annotations

import base64
import secrets

import pytest

from tests.chain.conftest import ClientFactory, SigningClient, refused
from tests.chain.events import collect
from tests.factories import join_token
from zgrid.chain import JoinToken, NotFound, RejectCode, SyncChainClient, issue_join_token
from zgrid.identity import Identity
from zgrid.types import GIB

RESOURCES = {"cru": 4, "mru": 8 * GIB, "sru": 100 * GIB, "hru": 0}
HASH = "ab" * 32
SEALED = base64.b64encode(b"sealed deployment").decode()


def farm(clients: ClientFactory, ips: int = 0) -> tuple[SigningClient, int]:
    farmer = clients(5)
    farmer.create_twin()
    farm_id = farmer.create_farm(f"farm-{secrets.token_hex(4)}")
    for index in range(ips):
        farmer.add_farm_ip(farm_id, f"203.0.113.{10 + index}/24", "203.0.113.1")
    return farmer, farm_id


def would_be_node(clients: ClientFactory) -> SigningClient:
    node = clients(1)
    node.create_twin()
    return node


def signed_token(
    signer: SyncChainClient, farm_id: int, *, expires_in: int = 3600, node: str = ""
) -> str:
    assert signer.identity is not None
    head = signer.head()
    return issue_join_token(
        signer.identity,
        chain_id=head["chain_id"],
        farm_id=farm_id,
        expires=head["timestamp"] + expires_in,
        node=node,
    ).encode()


def test_a_node_cannot_join_a_farm_without_its_farmers_token(
    shared_clients: ClientFactory,
) -> None:
    farmer, farm_id = farm(shared_clients, ips=1)
    _, other_farm = farm(shared_clients)
    intruder = would_be_node(shared_clients)
    intruder_twin = intruder.twin_of(intruder.identity.address)
    assert intruder_twin is not None

    def register(token: str) -> object:
        return intruder.register_node(farm_id, RESOURCES, join_token=token)

    assert "join_token: Field required" in refused(
        RejectCode.INVALID_ARGS, lambda: intruder.register_node(farm_id, RESOURCES)
    )
    how = f"ask the farmer for one made with `zgrid farm join-token {farm_id}`"
    farmer_twin = farmer.farm(farm_id)["twin_id"]
    assert refused(RejectCode.FORBIDDEN, lambda: register(signed_token(intruder, farm_id))) == (
        f"the join token is not signed by the farmer of farm {farm_id} (twin {farmer_twin}); {how}"
    )
    someone_else = Identity(secrets.token_bytes(32)).address
    assert refused(
        RejectCode.FORBIDDEN, lambda: register(signed_token(farmer, farm_id, node=someone_else))
    ) == (
        f"the join token is for the node with account {someone_else[:16]}…, "
        f"not {intruder.identity.address[:16]}…; {how}"
    )
    message = refused(
        RejectCode.FORBIDDEN, lambda: register(signed_token(farmer, farm_id, expires_in=-10))
    )
    assert message.startswith("the join token expired 1") and message.endswith(
        f" s ago (ledger time); {how}"
    )
    assert refused(
        RejectCode.INVALID_ARGS,
        lambda: intruder.register_node(
            other_farm, RESOURCES, join_token=signed_token(farmer, farm_id)
        ),
    ).endswith(f"join_token: is for farm {farm_id}, not farm {other_farm}")
    assert "join_token: is not a join token" in refused(
        RejectCode.INVALID_ARGS, lambda: register("x!")
    )
    assert intruder.query("nodes", farm_id=farm_id)["total"] == 0


def test_a_token_registers_one_node_and_may_name_it(shared_clients: ClientFactory) -> None:
    farmer, farm_id = farm(shared_clients)
    first, second = would_be_node(shared_clients), would_be_node(shared_clients)
    token = join_token(farmer, farm_id, node=first.identity.address)
    assert JoinToken.decode(token).node == first.identity.address
    node_id = first.register_node(farm_id, RESOURCES, join_token=token)
    assert first.node(node_id)["farm_id"] == farm_id
    any_node = join_token(farmer, farm_id)
    second.register_node(farm_id, RESOURCES, join_token=any_node)
    third = would_be_node(shared_clients)
    message = refused(
        RejectCode.CONFLICT,
        lambda: third.register_node(farm_id, RESOURCES, join_token=any_node),
    )
    assert message.startswith("the join token was already used (by node ")
    # The token's fields are accepted as well as its text.
    fields = JoinToken.decode(join_token(farmer, farm_id)).model_dump()
    assert third.register_node(farm_id, RESOURCES, join_token=fields) > node_id


def test_moving_to_another_farm_needs_that_farmers_token(shared_clients: ClientFactory) -> None:
    farmer, farm_id = farm(shared_clients)
    other_farmer, other_farm = farm(shared_clients)
    node = would_be_node(shared_clients)
    node_id = node.register_node(farm_id, RESOURCES, join_token=join_token(farmer, farm_id))
    move = {"farm_id": other_farm, "resources": RESOURCES}
    assert refused(RejectCode.FORBIDDEN, lambda: node.submit("nodes.update", move)) == (
        f"joining farm {other_farm} needs a join token from its farmer; ask the farmer for one "
        f"made with `zgrid farm join-token {other_farm}`"
    )
    assert "not signed by the farmer" in refused(
        RejectCode.FORBIDDEN,
        lambda: node.submit("nodes.update", {**move, "join_token": join_token(farmer, other_farm)}),
    )
    node.submit("nodes.update", {**move, "join_token": join_token(other_farmer, other_farm)})
    assert node.node(node_id)["farm_id"] == other_farm
    node.submit("nodes.update", {**move, "resources": {**RESOURCES, "cru": 8}})  # same farm
    assert node.node(node_id)["resources"]["cru"] == 8


def test_the_farmer_removes_a_node_and_its_contracts_end(shared_clients: ClientFactory) -> None:
    farmer, farm_id = farm(shared_clients, ips=1)
    node = would_be_node(shared_clients)
    node_id = node.register_node(farm_id, RESOURCES, join_token=join_token(farmer, farm_id))
    deployer = shared_clients(10)
    deployer.create_twin()
    created = deployer.create_node_contract(node_id, HASH, SEALED, public_ips=1)
    contract_id = created["result"]["contract_id"]
    assert farmer.farm(farm_id)["public_ips"][0]["contract_id"] == contract_id

    assert refused(
        RejectCode.FORBIDDEN,
        lambda: deployer.submit("farms.remove_node", {"farm_id": farm_id, "node_id": node_id}),
    ).startswith(f"only the owner of farm {farm_id}")
    assert refused(
        RejectCode.NOT_FOUND,
        lambda: farmer.submit("farms.remove_node", {"farm_id": farm_id, "node_id": 10**6}),
    ) == (f"farm {farm_id} has no node {10**6}")

    removed = farmer.submit("farms.remove_node", {"farm_id": farm_id, "node_id": node_id})
    assert removed["result"] == {
        "node_id": node_id,
        "farm_id": farm_id,
        "ended_contracts": [contract_id],
    }
    # Ending a contract bills it up to now first (when that comes to anything).
    names = [e["name"] for e in removed["events"] if e["name"] != "ContractBilled"]
    assert names == ["ContractCanceled", "NodeRemoved"]
    canceled = next(e for e in removed["events"] if e["name"] == "ContractCanceled")
    assert canceled["data"]["reason"] == "node_removed_from_farm"
    contract = deployer.contract(contract_id)
    assert (contract["state"], contract["deleted_reason"]) == ("deleted", "node_removed_from_farm")
    assert farmer.farm(farm_id)["public_ips"][0]["contract_id"] == 0
    with pytest.raises(NotFound):
        farmer.node(node_id)
    assert "is not a node" in refused(
        RejectCode.FORBIDDEN, lambda: node.report_uptime(1, node.head()["timestamp"])
    )
    followed = collect(
        farmer.url, removed["height"], lambda seen: any(e.name == "NodeRemoved" for e in seen)
    )
    assert followed[-1].data == {
        "node_id": node_id,
        "farm_id": farm_id,
        "twin_id": node.twin_of(node.identity.address)["id"],
        "contracts": [contract_id],
    }
    # The same machine may join again, with a new token.
    again = node.register_node(farm_id, RESOURCES, join_token=join_token(farmer, farm_id))
    assert again != node_id
