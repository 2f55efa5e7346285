"""The HTTP API as any client sees it: OpenAPI, lookups, lists and filters, errors."""

from __future__ import annotations

import itertools

import httpx

from tests.chain.conftest import ClientFactory, LedgerProcess
from tests.factories import join_token
from zgrid.chain import NotFound, SyncChainClient
from zgrid.chain.block import SignedHeader
from zgrid.chain.transaction import MAX_TRANSACTION_BYTES
from zgrid.types import GIB


def test_openapi_is_published(shared_ledger: LedgerProcess) -> None:
    spec = httpx.get(f"{shared_ledger.url}/openapi.json").json()
    paths = set(spec["paths"])
    for path in (
        "/transactions",
        "/transactions/{tx_hash}",
        "/chain/head",
        "/blocks/{height}",
        "/nodes",
        "/nodes/{node_id}",
        "/events/stream",
        "/accounts/{address}",
    ):
        assert path in paths, path
    body = spec["paths"]["/transactions"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert body == {"$ref": "#/components/schemas/SignedTransaction"}
    signed = spec["components"]["schemas"]["SignedTransaction"]
    assert set(signed["properties"]) == {"body", "signature"}


def test_unknown_ids_are_404_with_a_message(shared_ledger: LedgerProcess) -> None:
    for path in (
        "/twins/999",
        "/farms/999",
        "/nodes/999",
        "/contracts/999",
        "/blocks/99999",
        "/transactions/" + "00" * 32,
    ):
        response = httpx.get(f"{shared_ledger.url}{path}")
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    with SyncChainClient(shared_ledger.url) as client:
        try:
            client.twin(999)
        except NotFound as exc:
            assert "no twin 999" in str(exc)
        else:
            raise AssertionError("expected NotFound")


def test_bad_query_parameters_are_400(shared_ledger: LedgerProcess) -> None:
    response = httpx.get(f"{shared_ledger.url}/nodes", params={"status": "sleeping"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert "status" in response.json()["error"]["message"]


def test_node_lists_filter_and_page(
    shared_ledger: LedgerProcess, shared_clients: ClientFactory
) -> None:
    farmer = shared_clients(1)
    farmer.create_twin()
    farm_id = farmer.create_farm("paging-farm")
    farmer.add_farm_ip(farm_id, "203.0.113.5/24", "203.0.113.1")
    node_ids = []
    for size in (100, 200, 300):
        node = shared_clients(1)
        node.create_twin()
        node_ids.append(
            node.register_node(
                farm_id,
                {"cru": 4, "mru": 8 * GIB, "sru": size * GIB, "hru": 0},
                join_token=join_token(farmer, farm_id),
            )
        )
        if size != 300:
            node.report_uptime(1, node.head()["timestamp"])
    with SyncChainClient(shared_ledger.url) as reader:
        everything = reader.query("nodes", farm_id=farm_id)
        assert everything["total"] == 3
        assert [
            n["id"] for n in reader.query("nodes", farm_id=farm_id, free_sru=150 * GIB)["items"]
        ] == node_ids[1:]
        assert [
            n["id"] for n in reader.query("nodes", farm_id=farm_id, status="up")["items"]
        ] == node_ids[:2]
        assert [
            n["id"] for n in reader.query("nodes", farm_id=farm_id, status="down")["items"]
        ] == node_ids[2:]
        assert all(n["free_ips"] == 1 for n in everything["items"])
        second_page = reader.query("nodes", farm_id=farm_id, page=2, size=2)
        assert [n["id"] for n in second_page["items"]] == node_ids[2:]
        assert reader.query("farms", name="PAGING-farm")["items"][0]["id"] == farm_id


def test_batch_answers_each_transaction(shared_clients: ClientFactory) -> None:
    client = shared_clients(1)
    good = client.sign("accounts.transfer", {"to": "ab" * 32, "amount": 1})
    bad = client.sign("accounts.transfer", {"to": "ab" * 32, "amount": 10**18})
    answers = client.submit_batch([good, bad])
    assert answers[0] == {"hash": good.hash}
    assert answers[1]["error"]["code"] == "insufficient_balance"
    assert client.wait_included(good.hash)["status"] == "included"


def test_blocks_link_and_are_signed(shared_ledger: LedgerProcess) -> None:
    blocks = httpx.get(f"{shared_ledger.url}/blocks", params={"start": 0, "limit": 5}).json()
    parsed = [SignedHeader.model_validate(b) for b in blocks]
    assert all(b.is_valid() for b in parsed)
    for parent, child in itertools.pairwise(parsed):
        assert child.header.parent_hash == parent.hash
        assert child.header.height == parent.header.height + 1


def test_oversized_bodies_are_refused(shared_ledger: LedgerProcess) -> None:
    huge = b"[" + b" " * (MAX_TRANSACTION_BYTES + 10) + b"]"
    response = httpx.post(f"{shared_ledger.url}/transactions", content=huge)
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "too_large",
        "message": f"the request body is larger than {MAX_TRANSACTION_BYTES} bytes",
    }


def test_an_address_that_is_not_one_is_400(shared_ledger: LedgerProcess) -> None:
    response = httpx.get(f"{shared_ledger.url}/accounts/not-an-address")
    assert response.status_code == 400
    assert "address" in response.json()["error"]["message"]
