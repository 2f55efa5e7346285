"""The explorer's grid-proxy API against the ledger's own state: every node filter of
FORMATS.md, paging and sorting, farms, twins, contracts and bills, statistics, and the
grid proxy's error answers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.chain.conftest import LedgerProcess
from tests.explorer.fixtures import ExplorerProcess
from tests.explorer.story import GIB, Story

HEALTH_GRACE = 600


def _get(url: str, **params: Any) -> Any:
    response = httpx.get(url, params=params, timeout=10)
    assert response.status_code == 200, (url, params, response.text)
    return response.json()


class Ledger:
    """The ledger's state through its own API, and what the explorer should make of it."""

    def __init__(self, url: str, now: int) -> None:
        self.nodes = {n["id"]: n for n in _get(f"{url}/nodes", size=1000)["items"]}
        self.farms = {f["id"]: f for f in _get(f"{url}/farms", size=1000)["items"]}
        self.contracts = {c["id"]: c for c in _get(f"{url}/contracts", size=1000)["items"]}
        self.twins = {t["id"]: t for t in _get(f"{url}/twins", size=1000)["items"]}
        self.now = now

    def live_on(self, node_id: int) -> list[dict[str, Any]]:
        return [
            c
            for c in self.contracts.values()
            if c["type"] == "node" and c["node_id"] == node_id and c["state"] != "deleted"
        ]

    def free(self, node: dict[str, Any]) -> dict[str, int]:
        held = {k: max(node["used"][k], node["reserved"][k]) for k in ("cru", "mru", "sru", "hru")}
        total = node["resources"]
        return {
            "cru": total["cru"] - held["cru"],
            "mru": total["mru"] - held["mru"] - max(total["mru"] // 10, 2 * GIB),
            "sru": total["sru"] - held["sru"] - 20 * GIB,
            "hru": total["hru"] - held["hru"],
        }

    def free_ips(self, node: dict[str, Any]) -> int:
        return sum(1 for ip in self.farms[node["farm_id"]]["public_ips"] if not ip["contract_id"])

    def healthy(self, node: dict[str, Any]) -> bool:
        late = [
            c
            for c in self.live_on(node["id"])
            if (c["result"] is None or c["result"]["version"] < c["version"])
            and c["updated"] < self.now - HEALTH_GRACE
        ]
        return node["status"] == "up" and not late

    def public(self, node: dict[str, Any], key: str) -> bool:
        return bool((node["public_config"] or {}).get(key))

    def matching(self, test: Callable[[dict[str, Any]], bool]) -> list[int]:
        return sorted(node_id for node_id, node in self.nodes.items() if test(node))


@pytest.fixture(scope="module")
def ledger_state(story_explorer: ExplorerProcess, story_ledger: LedgerProcess) -> Ledger:
    head = _get(f"{story_ledger.url}/chain/head")
    indexed = story_explorer.wait_for_height(head["height"])
    return Ledger(story_ledger.url, indexed["timestamp"])


def _ids(explorer: ExplorerProcess, **params: Any) -> list[int]:
    return sorted(node["nodeId"] for node in _get(f"{explorer.url}/nodes", size=1000, **params))


def test_every_node_filter_answers_what_the_ledgers_state_says(
    story_explorer: ExplorerProcess,
    ledger_state: Ledger,
) -> None:
    ledger, explorer = ledger_state, story_explorer
    alive = set(ledger.matching(lambda n: n["status"] == "up"))
    assert alive and len(alive) < len(ledger.nodes), "the story has nodes up and not up"
    cases: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        ({}, lambda n: True),
        ({"status": "up"}, lambda n: n["status"] == "up"),
        ({"status": "down"}, lambda n: n["status"] == "down"),
        ({"status": "standby"}, lambda n: n["status"] == "standby"),
        ({"status": "down,standby"}, lambda n: n["status"] != "up"),
        ({"free_mru": 20 * GIB}, lambda n: ledger.free(n)["mru"] >= 20 * GIB),
        ({"free_sru": 150 * GIB}, lambda n: ledger.free(n)["sru"] >= 150 * GIB),
        ({"free_hru": 1500 * GIB}, lambda n: ledger.free(n)["hru"] >= 1500 * GIB),
        ({"free_ips": 1}, lambda n: ledger.free_ips(n) >= 1),
        ({"free_ips": 2}, lambda n: ledger.free_ips(n) >= 2),
        ({"total_cru": 8}, lambda n: n["resources"]["cru"] >= 8),
        ({"country": "belgium"}, lambda n: n["location"]["country"] == "Belgium"),
        ({"country": "Egypt"}, lambda n: n["location"]["country"] == "Egypt"),
        ({"city": "cairo"}, lambda n: n["location"]["city"] == "Cairo"),
        ({"farm_ids": "1,3"}, lambda n: n["farm_id"] in (1, 3)),
        ({"twin_id": 6}, lambda n: n["twin_id"] == 6),
        ({"ipv4": "true"}, lambda n: ledger.public(n, "ipv4")),
        ({"ipv4": "false"}, lambda n: not ledger.public(n, "ipv4")),
        ({"ipv6": "true"}, lambda n: ledger.public(n, "ipv6")),
        ({"domain": "true"}, lambda n: ledger.public(n, "domain")),
        (
            {"dedicated": "true"},
            lambda n: not ledger.live_on(n["id"]) or bool(n["rented_by"]),
        ),
        (
            {"rentable": "true"},
            lambda n: not ledger.live_on(n["id"]) and not n["rented_by"],
        ),
        ({"rented": "true"}, lambda n: bool(n["rented_by"])),
        ({"rented": "false"}, lambda n: not n["rented_by"]),
        (
            {"rented_by": ledger.nodes[2]["rented_by"]},
            lambda n: n["rented_by"] == ledger.nodes[2]["rented_by"],
        ),
        (
            {"certification_type": "Certified"},
            lambda n: ledger.farms[n["farm_id"]]["certification"] == "gold",
        ),
        (
            {"certification_type": "diy"},
            lambda n: ledger.farms[n["farm_id"]]["certification"] != "gold",
        ),
        ({"healthy": "true"}, ledger.healthy),
        ({"healthy": "false"}, lambda n: not ledger.healthy(n)),
        (
            {"status": "up", "free_mru": 10 * GIB, "country": "Belgium"},
            lambda n: (
                n["status"] == "up"
                and ledger.free(n)["mru"] >= 10 * GIB
                and n["location"]["country"] == "Belgium"
            ),
        ),
    ]
    for params, test in cases:
        assert _ids(explorer, **params) == ledger.matching(test), params
    # Each filter above narrows something: none of them is true of every node or none.
    narrowing = [p for p, test in cases if 0 < len(ledger.matching(test)) < len(ledger.nodes)]
    assert len(narrowing) >= 20


def test_each_node_is_the_ledgers_node_with_its_used_and_free_capacity(
    story_explorer: ExplorerProcess,
    ledger_state: Ledger,
) -> None:
    for node_id, node in ledger_state.nodes.items():
        shown = _get(f"{story_explorer.url}/nodes/{node_id}")
        assert shown["capacity"]["total_resources"] == node["resources"]
        assert shown["free_resources"] == ledger_state.free(node)
        used = shown["capacity"]["used_resources"]
        assert all(used[k] + shown["free_resources"][k] == node["resources"][k] for k in used)
        assert (shown["status"], shown["farmId"], shown["twinId"]) == (
            node["status"],
            node["farm_id"],
            node["twin_id"],
        )
        assert shown["country"] == node["location"]["country"]
        assert shown["rentedByTwinId"] == node["rented_by"]
        assert shown["farm_free_ips"] == ledger_state.free_ips(node)
        assert _get(f"{story_explorer.url}/nodes/{node_id}/status") == {"status": node["status"]}


def test_paging_sorting_and_the_count_headers(
    story_explorer: ExplorerProcess,
    ledger_state: Ledger,
) -> None:
    url = f"{story_explorer.url}/nodes"
    everything = [n["nodeId"] for n in _get(url)]
    assert everything == sorted(ledger_state.nodes)
    pages = []
    for page in range(1, 5):
        response = httpx.get(url, params={"size": 2, "page": page, "ret_count": "true"})
        assert response.headers["count"] == str(len(everything))
        assert response.headers["size"] == "2" and response.headers["pages"] == "3"
        pages += [n["nodeId"] for n in response.json()]
    assert pages == everything
    assert "count" not in httpx.get(url).headers
    by_memory = _get(url, sort_by="free_mru", sort_order="desc")
    free = [n["free_resources"]["mru"] for n in by_memory]
    assert free == sorted(free, reverse=True) and by_memory[0]["nodeId"] != everything[0]
    by_country = [n["country"] for n in _get(url, sort_by="country")]
    assert by_country == sorted(by_country)
    statuses = [n["status"] for n in _get(url, sort_by="status")]
    assert statuses == sorted(statuses, key=["up", "standby", "down"].index)
    gateways = _get(f"{story_explorer.url}/gateways")
    expected = ledger_state.matching(
        lambda n: (
            ledger_state.public(n, "domain")
            and (ledger_state.public(n, "ipv4") or ledger_state.public(n, "ipv6"))
        )
    )
    assert [g["nodeId"] for g in gateways] == expected


def test_farms_twins_contracts_bills_and_statistics_are_the_ledgers(
    story_explorer: ExplorerProcess,
    story_ledger: LedgerProcess,
    ledger_state: Ledger,
) -> None:
    url = story_explorer.url
    farms = {f["farmId"]: f for f in _get(f"{url}/farms")}
    assert set(farms) == set(ledger_state.farms)
    for farm_id, farm in ledger_state.farms.items():
        shown = farms[farm_id]
        assert shown["name"] == farm["name"] and shown["twinId"] == farm["twin_id"]
        taken = {ip["ip"]: ip["contract_id"] for ip in farm["public_ips"]}
        assert {ip["ip"]: ip["contract_id"] for ip in shown["publicIps"]} == taken
        expected = "Gold" if farm["certification"] == "gold" else "NotCertified"
        assert shown["certificationType"] == expected
    twins = {t["twinId"]: t["accountId"] for t in _get(f"{url}/twins", size=1000)}
    assert twins == {twin_id: t["account"] for twin_id, t in ledger_state.twins.items()}
    contracts = {c["contract_id"]: c for c in _get(f"{url}/contracts", size=1000)}
    words = {"created": "Created", "grace_period": "GracePeriod", "deleted": "Deleted"}
    assert set(contracts) == set(ledger_state.contracts)
    for contract_id, contract in ledger_state.contracts.items():
        shown = contracts[contract_id]
        assert (shown["twin_id"], shown["type"], shown["state"]) == (
            contract["twin_id"],
            contract["type"],
            words[contract["state"]],
        )
        if contract["type"] == "node":
            assert shown["details"]["nodeId"] == contract["node_id"]
            assert shown["details"]["number_of_public_ips"] == len(contract["public_ips"])
        if contract["type"] == "name":
            assert shown["details"] == {"name": contract["name"]}
        assert _get(f"{url}/contracts/{contract_id}") == shown
    deleted = _get(f"{url}/contracts", state="deleted", size=1000)
    assert {c["contract_id"] for c in deleted} == {
        i for i, c in ledger_state.contracts.items() if c["state"] == "deleted"
    }
    billed = 0
    for contract_id in ledger_state.contracts:
        theirs = _get(f"{story_ledger.url}/contracts/{contract_id}/bills", size=500)["items"]
        height = _get(f"{story_ledger.url}/chain/head")["height"]
        story_explorer.wait_for_height(height)
        ours = _get(f"{url}/contracts/{contract_id}/bills", size=1000)
        assert len(ours) - len(theirs) in (0, 1)  # a bill may have fallen due in between
        for mine, bill in zip(ours, theirs, strict=False):
            assert (mine["number"], mine["amountBilled"], mine["status"]) == (
                bill["number"],
                bill["amount"],
                bill["status"],
            )
            assert mine["split"] == bill["split"] and mine["usd"] == bill["usd"]
        billed += len(theirs)
    assert billed > 100
    stats = _get(f"{url}/stats")
    countries: dict[str, int] = {}
    for node in ledger_state.nodes.values():
        country = node["location"]["country"]
        countries[country] = countries.get(country, 0) + 1
    assert stats["nodesDistribution"] == countries
    assert (stats["nodes"], stats["farms"], stats["twins"]) == (
        len(ledger_state.nodes),
        len(ledger_state.farms),
        len(ledger_state.twins),
    )
    live = [c for c in ledger_state.contracts.values() if c["state"] != "deleted"]
    assert stats["contracts"] == len(live)
    assert stats["totalCru"] == sum(n["resources"]["cru"] for n in ledger_state.nodes.values())
    up = _get(f"{url}/stats", status="up")
    assert up["nodes"] == len(ledger_state.matching(lambda n: n["status"] == "up"))


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/nodes?bogus=1", 400, "unknown parameter 'bogus'"),
        ("/nodes?free_mru=lots", 400, "free_mru must be a whole number"),
        ("/nodes?free_mru=-1", 400, "free_mru must be from 0"),
        ("/nodes?free_mru=18446744073709551616", 400, "free_mru must be from 0"),
        ("/nodes?ipv4=maybe", 400, "ipv4 must be true or false"),
        ("/nodes?status=sideways", 400, "status must be one of up, down, standby"),
        ("/nodes?size=1001", 400, "size must be from 1 to 1000"),
        ("/nodes?page=0", 400, "page must be from 1"),
        ("/nodes?sort_by=price", 400, "'price' is not a sort field"),
        ("/nodes?sort_order=up", 400, "not a valid sort order"),
        ("/nodes?country=a&country=b", 400, "country is given 2 times"),
        ("/nodes/99", 404, "node 99 not found"),
        ("/nodes/-1", 400, "node_id"),
        ("/nodes/99999999999999999999", 400, "node_id"),
        ("/gateways/2", 404, "gateway 2 not found"),
        ("/contracts/999", 404, "contract 999 not found"),
        ("/contracts/999/bills", 404, "contract 999 not found"),
        ("/contracts?state=lost", 400, "state must be one of"),
        ("/farms?node_status=x", 400, "node_status must be one of"),
        ("/nowhere", 404, "not found"),
    ],
)
def test_bad_queries_get_the_grid_proxys_error_answer(
    story_explorer: ExplorerProcess,
    path: str,
    status: int,
    words: str,
) -> None:
    response = httpx.get(f"{story_explorer.url}{path}")
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"} and words in body["error"], body
    assert response.headers["access-control-allow-origin"] == "*"


def test_openapi_documents_every_route_and_filter(story_explorer: ExplorerProcess) -> None:
    spec = _get(f"{story_explorer.url}/openapi.json")
    for path in (
        "/nodes",
        "/nodes/{node_id}",
        "/gateways",
        "/farms",
        "/twins",
        "/contracts",
        "/contracts/{contract_id}",
        "/contracts/{contract_id}/bills",
        "/stats",
        "/public_ips",
    ):
        assert path in spec["paths"], path
    documented = {p["name"] for p in spec["paths"]["/nodes"]["get"]["parameters"]}
    formats = [
        "status",
        "free_mru",
        "free_sru",
        "free_hru",
        "free_ips",
        "total_cru",
        "country",
        "city",
        "farm_ids",
        "twin_id",
        "ipv4",
        "ipv6",
        "domain",
        "dedicated",
        "rentable",
        "rented",
        "rented_by",
        "certification_type",
        "healthy",
        "page",
        "size",
        "sort_by",
        "sort_order",
    ]
    assert set(formats) <= documented
    assert not [p for p in spec["paths"] if p.startswith("/explorer")]


def test_the_explorer_follows_the_ledger_as_it_goes(
    story: Story,
    story_explorer: ExplorerProcess,
    story_ledger: LedgerProcess,
) -> None:
    first = story_explorer.indexer()
    deadline = time.monotonic() + 10
    while story_explorer.indexer()["height"] <= first["height"] + 2:
        assert time.monotonic() < deadline, "the explorer stopped following the ledger"
        time.sleep(0.1)
    status = story_explorer.indexer()
    assert status["following"] and not status["error"] and status["height"] > story.height
