"""Node offers read from a real ledger: every page, each node as the ledger shows it."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest

from tests.chain.conftest import LedgerProcess, running_ledger
from zgrid.chain import UNITS_PER_TOKEN, ChainClient, issue_join_token
from zgrid.chain.genesis import load_validator_key
from zgrid.client.errors import InvalidAnswer, PlacementError
from zgrid.client.offers import NodeOffer
from zgrid.client.planner import place
from zgrid.client.pricing import price_terms
from zgrid.client.sources import LedgerNodeSource
from zgrid.client.spec.model import MachineSpec, PlacementRules, Spec
from zgrid.identity import Identity
from zgrid.types import GIB, Capacity

SEALED = base64.b64encode(b"sealed deployment bytes").decode()
HASH = "ab" * 32


@dataclass
class Grid:
    ledger: LedgerProcess
    plain_farm: int
    gold_farm: int
    nodes: dict[str, int]  # role -> node id
    renter_twin: int


async def _signer(url: str, tokens: int, identity: Identity | None = None) -> ChainClient:
    client = ChainClient(url, identity=identity or Identity(secrets.token_bytes(32)))
    await client.faucet(tokens * UNITS_PER_TOKEN)
    return client


async def _node(
    url: str, farmer: ChainClient, farm_id: int, country: str, *, power: str = "up"
) -> int:
    """A node of ``farm_id`` in ``country``: up (reporting), down (silent) or in standby."""
    async with await _signer(url, 1) as node:
        await node.create_twin()
        head = await farmer.head()
        assert farmer.identity is not None
        token = issue_join_token(
            farmer.identity,
            chain_id=head["chain_id"],
            farm_id=farm_id,
            expires=head["timestamp"] + 3600,
        ).encode()
        node_id = await node.register_node(
            farm_id,
            {"cru": 8, "mru": 16 * GIB, "sru": 200 * GIB, "hru": 1000 * GIB},
            location={"country": country, "city": f"{country}-city"},
            join_token=token,
        )
        if power != "down":
            await node.report_uptime(1, (await node.head())["timestamp"])
        if power == "standby":
            await node.submit("nodes.set_power", {"power": "standby"})
        return node_id


async def _build(ledger: LedgerProcess) -> Grid:
    """Two farms (one certified, one with 2 public IPs), five nodes, a contract, a rent."""
    url = ledger.url
    async with (
        await _signer(url, 5) as farmer,
        await _signer(url, 1, load_validator_key(ledger.data)) as validator,
        await _signer(url, 10) as deployer,
        await _signer(url, 10) as renter,
    ):
        await farmer.create_twin()
        plain = await farmer.create_farm("plain-farm")
        gold = await farmer.create_farm("Gold-Farm")
        await farmer.add_farm_ip(plain, "198.51.100.10/24", "198.51.100.1")
        await farmer.add_farm_ip(plain, "198.51.100.11/24", "198.51.100.1")
        await validator.submit(
            "farms.set_certification", {"farm_id": gold, "certification": "gold"}
        )
        roles = {
            "busy": (plain, "DE", "up"),
            "down": (plain, "FR", "down"),
            "standby": (plain, "FR", "standby"),
            "gold": (gold, "BE", "up"),
            "rented": (gold, "BE", "up"),
        }
        ids = await asyncio.gather(
            *(
                _node(url, farmer, farm, country, power=power)
                for farm, country, power in roles.values()
            )
        )
        nodes = dict(zip(roles, ids, strict=True))
        await deployer.create_twin()
        renter_twin = await renter.create_twin()
        await deployer.create_node_contract(
            nodes["busy"],
            HASH,
            SEALED,
            public_ips=1,
            capacity={"cru": 2, "mru": 4 * GIB, "sru": 50 * GIB, "hru": 0},
        )
        await renter.submit("contracts.create_rent_contract", {"node_id": nodes["rented"]})
        return Grid(ledger, plain, gold, nodes, renter_twin)


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grid]:
    with running_ledger(tmp_path_factory.mktemp("ledger")) as ledger:
        yield asyncio.run(_build(ledger))


async def _offers(url: str, **options: Any) -> list[NodeOffer]:
    async with ChainClient(url) as chain:
        return await LedgerNodeSource(chain, **options).offers()


def test_offers_match_the_ledger_over_several_pages(grid: Grid) -> None:
    offers = asyncio.run(_offers(grid.ledger.url, page_size=2))  # 5 nodes: 3 pages
    assert [o.node_id for o in offers] == sorted(grid.nodes.values())
    by_id = {o.node_id: o for o in offers}
    whole = Capacity(cru=8, mru=16 * GIB, sru=200 * GIB, hru=1000 * GIB)
    busy = by_id[grid.nodes["busy"]]
    assert busy == NodeOffer(
        node_id=busy.node_id,
        twin_id=busy.twin_id,
        farm_id=grid.plain_farm,
        farm_name="plain-farm",
        status="up",
        total=Capacity(cru=8, mru=16 * GIB, sru=200 * GIB, hru=1000 * GIB, ipv4=2),
        free=Capacity(cru=6, mru=12 * GIB, sru=150 * GIB, hru=1000 * GIB, ipv4=1),
        country="DE",
        city="DE-city",
        certified=False,
        pricing_policy_id=1,
        rented_by=0,
    )
    assert by_id[grid.nodes["down"]].status == "down"
    assert by_id[grid.nodes["standby"]].status == "standby"
    gold = by_id[grid.nodes["gold"]]
    assert (gold.farm_name, gold.certified, gold.status, gold.country) == (
        "Gold-Farm",
        True,
        "up",
        "BE",
    )
    assert gold.free == whole  # its farm has no public IPs
    assert by_id[grid.nodes["rented"]].rented_by == grid.renter_twin
    # The same as the ledger's own view of each node, whatever the page size.
    views = asyncio.run(_views(grid.ledger.url, list(by_id)))
    for offer in offers:
        view = views[offer.node_id]
        assert offer.free == Capacity(**view["free"], ipv4=view["free_ips"])
        assert (offer.status, offer.rented_by, offer.farm_id) == (
            view["status"],
            view["rented_by"],
            view["farm_id"],
        )
    assert asyncio.run(_offers(grid.ledger.url)) == offers
    assert asyncio.run(_offers(grid.ledger.url, page_size=1)) == offers


async def _views(url: str, node_ids: list[int]) -> dict[int, Any]:
    async with ChainClient(url) as chain:
        return {node_id: await chain.node(node_id) for node_id in node_ids}


def test_page_options_are_bounded() -> None:
    chain = cast(ChainClient, _Answers({}))
    with pytest.raises(ValueError, match="page_size must be 1 to 1000"):
        LedgerNodeSource(chain, page_size=1001)
    with pytest.raises(ValueError, match="max_pages must be 1 or more"):
        LedgerNodeSource(chain, max_pages=0)


def test_a_grid_larger_than_the_pages_read_is_refused(grid: Grid) -> None:
    with pytest.raises(InvalidAnswer) as caught:
        asyncio.run(_offers(grid.ledger.url, page_size=2, max_pages=2))
    assert str(caught.value) == (
        "the ledger lists 5 nodes, more than the 4 this client reads (2 pages of 2)"
    )


def test_the_planner_places_on_the_ledgers_offers(grid: Grid) -> None:
    offers = asyncio.run(_offers(grid.ledger.url))
    machine = MachineSpec("web", "busybox", memory=14 * GIB, replicas=1)
    # Only the gold node is up, has 14 GiB free and is not rented by another twin.
    assert place(Spec("app", machines=(machine,)), offers) == {"machine/web/0": grid.nodes["gold"]}
    rented = grid.nodes["rented"]
    rules = PlacementRules(nodes=(rented,), farm="gold-farm", certified=True)
    the_spec = Spec("app", machines=(machine,), placement=rules)
    assert place(the_spec, offers, twin_id=grid.renter_twin) == {"machine/web/0": rented}
    with pytest.raises(PlacementError) as caught:
        place(the_spec, offers)
    assert caught.value.reasons[-1] == f"node {rented} is rented by twin {grid.renter_twin}"


def test_price_terms_from_the_ledgers_genesis(grid: Grid) -> None:
    async def read() -> Any:
        async with ChainClient(grid.ledger.url) as chain:
            return await price_terms(chain), await chain.genesis()

    terms, genesis = asyncio.run(read())
    assert terms.token_price == genesis["token_price"]
    policy = terms.policy(1)
    assert (
        policy.cu,
        policy.su,
        policy.nu,
        policy.ipu,
        policy.unique_name,
        policy.domain_name,
    ) == (
        100_000,
        50_000,
        15_000,
        40_000,
        2_500,
        5_000,
    )


class _Answers:
    """A ledger that answers ``pages`` (for a hostile or broken one), page by page."""

    def __init__(self, pages: dict[str, list[Any]]) -> None:
        self.pages = pages

    async def query(self, kind: str, *, page: int, size: int) -> Any:
        return self.pages[kind][page - 1]


def _from(pages: dict[str, list[Any]], **options: Any) -> list[NodeOffer]:
    source = LedgerNodeSource(cast(ChainClient, _Answers(pages)), **options)
    return asyncio.run(source.offers())


NODE = {
    "id": 1,
    "farm_id": 1,
    "twin_id": 3,
    "status": "up",
    "resources": {"cru": 1, "mru": 1, "sru": 1, "hru": 1},
    "free": {"cru": -1, "mru": 1, "sru": 1, "hru": 1},
    "free_ips": 0,
}
FARMS = {"items": [{"id": 1, "name": "f"}], "total": 1}


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ({"items": "x", "total": 1}, "the ledger's /nodes page 1 is not a page: items:"),
        (
            {"items": [{**NODE, "status": "lost"}], "total": 1},
            "the ledger's /nodes page 1 item 0: status:",
        ),
        (
            {"items": [{**NODE, "id": -1}], "total": 1},
            "the ledger's /nodes page 1 item 0: id:",
        ),
        (
            {"items": [{**NODE, "location": {"country": "x" * 65}}], "total": 1},
            "the ledger's /nodes page 1 item 0: location.country:",
        ),
        ({"items": [NODE, NODE, NODE], "total": 3}, "the ledger answered 3 nodes on a page of 2"),
        (
            {"items": [{**NODE, "farm_id": 7}], "total": 1},
            "node 1 is in farm 7, which the ledger does not list",
        ),
    ],
)
def test_a_broken_answer_is_refused_with_what_is_wrong(nodes: Any, message: str) -> None:
    with pytest.raises(InvalidAnswer) as caught:
        _from({"nodes": [nodes], "farms": [FARMS]}, page_size=2)
    assert str(caught.value).startswith(message), caught.value


def test_a_node_listed_on_two_pages_is_one_offer_and_negative_free_is_none() -> None:
    second = {**NODE, "id": 2}
    pages = {
        "nodes": [
            {"items": [NODE, second], "total": 3},
            {"items": [second], "total": 3},  # a node added before it shifted node 2 on
        ],
        "farms": [FARMS],
    }
    offers = _from(pages, page_size=2)
    assert [o.node_id for o in offers] == [1, 2]
    assert offers[0].free.cru == 0


def test_a_ledger_that_never_ends_its_pages_stops_at_the_page_limit() -> None:
    # Two nodes, it says, yet every page is full of node 1 again: the pages never add up.
    pages = {"nodes": [{"items": [NODE], "total": 2}] * 4, "farms": [FARMS]}
    with pytest.raises(InvalidAnswer) as caught:
        _from(pages, page_size=1, max_pages=3)
    assert str(caught.value) == (
        "the ledger lists more nodes than the 3 this client reads (3 pages of 1)"
    )
