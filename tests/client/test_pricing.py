"""Contract prices, recomputed by hand from FORMATS.md's CU/SU formulas and the policy."""

from __future__ import annotations

import asyncio
import json
import secrets
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from tests.chain.conftest import LedgerProcess
from zgrid.chain import UNITS_PER_TOKEN, ChainClient, init_dev_chain, node_contract_hourly
from zgrid.client.errors import InvalidAnswer
from zgrid.client.pricing import (
    PolicyPrices,
    contract_price,
    parse_price_terms,
    price_terms,
    to_tokens,
)
from zgrid.identity import Identity
from zgrid.types import GIB, MIB, Capacity

# The devnet's default policy (FORMATS.md): units USD per hour.
POLICY = PolicyPrices(
    id=1,
    name="default",
    cu=100_000,
    su=50_000,
    nu=15_000,
    ipu=40_000,
    unique_name=2_500,
    domain_name=5_000,
)


def test_a_small_container() -> None:
    # 1 core, 512 MiB, the 500 MiB root disk.
    # CU = min(max(0.5/4, 1/2), max(0.5/8, 1), max(0.5/2, 1/4)) = min(0.5, 1, 0.25) = 1/4
    # SU = (500/1024)/200 = 5/2048
    # price = 50000 * 5/2048 + 100000 * 1/4 = 15625/128 + 25000 units USD per hour
    capacity = Capacity(cru=1, mru=512 * MIB, sru=500 * MIB)
    price = contract_price(capacity, public_ips=0, policy=POLICY, certified=False)
    assert price == Fraction(15625, 128) + 25_000
    assert price == Fraction(3_215_625, 128)


def test_a_bigger_vm_like_machine_with_an_ip_and_certified() -> None:
    # 4 cores, 8 GiB, 50 GiB SSD, 1200 GiB HDD.
    # CU = min(max(8/4, 4/2), max(8/8, 4), max(8/2, 4/4)) = min(2, 4, 4) = 2
    # SU = 1200/1200 + 50/200 = 5/4
    # price = 100000 * 2 + 50000 * 5/4 = 262500 units USD per hour
    capacity = Capacity(cru=4, mru=8 * GIB, sru=50 * GIB, hru=1200 * GIB)
    assert contract_price(capacity, public_ips=0, policy=POLICY, certified=False) == 262_500
    # One public IPv4: + 40000.
    with_ip = contract_price(capacity, public_ips=1, policy=POLICY, certified=False)
    assert with_ip == 302_500
    # On a certified node: 25% more, IP included.
    certified = contract_price(capacity, public_ips=1, policy=POLICY, certified=True)
    assert certified == 378_125
    # capacity.ipv4 is not a second way to ask for IPs.
    doubled = Capacity(cru=4, mru=8 * GIB, sru=50 * GIB, hru=1200 * GIB, ipv4=3)
    assert contract_price(doubled, public_ips=1, policy=POLICY, certified=False) == 302_500


def test_the_price_is_the_ledgers_own() -> None:
    # The plan's price and the ledger's bill come from one function.
    for capacity, ips, certified in (
        (Capacity(cru=1, mru=512 * MIB, sru=500 * MIB), 0, False),
        (Capacity(cru=4, mru=8 * GIB, sru=50 * GIB, hru=1200 * GIB), 2, True),
    ):
        assert contract_price(
            capacity, public_ips=ips, policy=POLICY, certified=certified
        ) == node_contract_hourly(capacity, public_ips=ips, policy=POLICY, certified=certified)


def test_memory_heavy_machines_cost_by_memory() -> None:
    # 1 core, 32 GiB: CU = min(max(8, 0.5), max(4, 1), max(16, 0.25)) = 4; no disk, no SU.
    price = contract_price(
        Capacity(cru=1, mru=32 * GIB), public_ips=0, policy=POLICY, certified=False
    )
    assert price == 400_000


def test_prices_in_tokens_are_exact() -> None:
    # 0.1 USD per token (1,000,000 units USD): 378125 units USD = 0.0378125 USD
    # = 0.378125 tokens = 3781250 token units.
    assert to_tokens(Fraction(378_125), 1_000_000) == 3_781_250
    # A third of a unit stays a third.
    assert to_tokens(Fraction(1, 3), 10_000_000) == Fraction(1, 3)
    assert to_tokens(Fraction(3_215_625, 128), 3_000_000) == Fraction(3_215_625 * 10, 128 * 3)
    with pytest.raises(ValueError, match="positive"):
        to_tokens(Fraction(1), 0)
    with pytest.raises(ValueError, match="public_ips"):
        contract_price(Capacity(), public_ips=-1, policy=POLICY, certified=False)


def _genesis(**changes: Any) -> dict[str, Any]:
    policy = {
        "id": 1,
        "name": "default",
        "cu": 1,
        "su": 2,
        "nu": 3,
        "ipu": 4,
        "unique_name": 5,
        "domain_name": 6,
        "foundation_account": "ab" * 32,
    }
    return {"chain_id": "x", "price_policies": [policy], "token_price": 7, **changes}


def test_price_terms_are_read_from_a_genesis() -> None:
    terms = parse_price_terms(_genesis())
    assert terms.token_price == 7
    assert terms.policy(1) == PolicyPrices(1, "default", 1, 2, 3, 4, 5, 6)
    with pytest.raises(InvalidAnswer) as caught:
        terms.policy(2)
    assert str(caught.value) == "the ledger has no pricing policy 2 (its policies: 1)"


def test_the_token_price_in_force_wins_over_the_genesis() -> None:
    terms = parse_price_terms(_genesis(), {"token_price": 2_500_000, "oracle": None})
    assert terms.token_price == 2_500_000
    assert terms.policy(1).cu == 1
    for economy, message in (
        ({}, "token_price: Field required"),
        ({"token_price": 0}, "token_price: Input should be greater than or equal to 1"),
        ([], "Input should be a valid dictionary"),
    ):
        with pytest.raises(InvalidAnswer) as caught:
            parse_price_terms(_genesis(), economy)
        assert str(caught.value).startswith("the ledger's economy has no token price to count in: ")
        assert message in str(caught.value)


def test_price_terms_follow_the_oracle(tmp_path: Path) -> None:
    """On a ledger whose oracle moved the price, plans count tokens at the new price."""
    oracle = Identity(secrets.token_bytes(32))
    data = tmp_path / "chain"
    init_dev_chain(data)
    genesis_file = data / "genesis.json"
    genesis = json.loads(genesis_file.read_text())
    genesis["oracle"] = oracle.address
    genesis_file.write_text(json.dumps(genesis))
    ledger = LedgerProcess(data)
    ledger.start()

    async def read() -> tuple[int, int]:
        async with ChainClient(ledger.url, identity=oracle) as chain:
            before = (await price_terms(chain)).token_price
            await chain.faucet(UNITS_PER_TOKEN)
            await chain.submit("oracle.set_price", {"token_price": 2_500_000})
            return before, (await price_terms(chain)).token_price

    try:
        assert asyncio.run(read()) == (genesis["token_price"], 2_500_000)
        assert genesis["token_price"] != 2_500_000
    finally:
        ledger.stop()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"token_price": 0}, "token_price: Input should be greater than or equal to 1"),
        ({"price_policies": []}, "price_policies: List should have at least 1 item"),
        ({"price_policies": [{"id": 1}]}, "price_policies.0.cu: Field required"),
        (
            {"price_policies": [{**_genesis()["price_policies"][0], "cu": -1}]},
            "price_policies.0.cu: Input should be greater than or equal to 0",
        ),
        (
            {"price_policies": _genesis()["price_policies"] * 2},
            "the ledger's genesis has pricing policy 1 twice",
        ),
    ],
)
def test_a_genesis_that_cannot_be_priced_from_is_refused(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidAnswer) as caught:
        parse_price_terms(_genesis(**changes))
    assert message in str(caught.value)
