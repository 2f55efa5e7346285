"""The price oracle sets the token price bills use; uptime reports are refused unless they
come from the node itself, in order, not too soon and consistent; dev time moves only on dev
chains."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.chain.clocked import ClockedChain
from zgrid.chain import TransactionRejected, init_dev_chain, verify_chain
from zgrid.identity import Identity

GIB = 1024**3
HOUR = 3600
START = 2_000_001_600


def _refused(chain: ClockedChain, who: Identity, call: str, args: Mapping[str, object]) -> str:
    with pytest.raises(TransactionRejected) as caught:
        chain.submit(who, call, dict(args))
    return f"{caught.value.code.value}: {caught.value.message}"


def _with_oracle(data: Path, oracle: Identity | None) -> None:
    init_dev_chain(data)
    path = data / "genesis.json"
    document = json.loads(path.read_text())
    document["oracle"] = None if oracle is None else oracle.address
    path.write_text(json.dumps(document))


def test_bills_use_the_price_the_oracle_set(memory_dir: Path) -> None:
    oracle = Identity(secrets.token_bytes(32))
    data = memory_dir / "chain"
    _with_oracle(data, oracle)
    chain = ClockedChain(data, START)
    try:
        chain.submit(oracle, "accounts.faucet", {"amount": 10**7})
        deployer, _ = chain.twin(100)
        name = int(
            chain.submit(deployer, "contracts.create_name_contract", {"name": "priced"})[
                "contract_id"
            ]
        )
        stranger = chain.funded(1)
        assert _refused(chain, stranger, "oracle.set_price", {"token_price": 5}).startswith(
            "forbidden: only the oracle account"
        )
        assert "token_price" in _refused(chain, oracle, "oracle.set_price", {"token_price": 0})
        chain.step(HOUR)
        first = chain.bill(name, 1)
        assert first.token_price == 1_000_000
        chain.submit(oracle, "oracle.set_price", {"token_price": 2_000_000})  # 0.2 USD
        chain.step(HOUR)
        second = chain.bill(name, 2)
        assert second.token_price == 2_000_000
        assert second.usd == first.usd and second.tokens == first.tokens // 2
        chain.seal()
    finally:
        chain.close()
    verify_chain(data)


def test_a_chain_without_an_oracle_keeps_its_price_and_dev_time_needs_a_faucet(
    memory_dir: Path,
) -> None:
    data = memory_dir / "chain"
    _with_oracle(data, None)
    chain = ClockedChain(data, START)
    try:
        someone = chain.funded(1)
        assert _refused(chain, someone, "oracle.set_price", {"token_price": 5}) == (
            "forbidden: this chain has no price oracle: its token price is fixed"
        )
        moved = chain.submit(someone, "dev.advance_time", {"seconds": 7 * 86400})
        assert moved["seconds"] == 7 * 86400
        before = chain.now
        chain.step(10)
        assert chain.now == before + 10 + 7 * 86400
        assert "seconds" in _refused(chain, someone, "dev.advance_time", {"seconds": 10**9})
        chain.seal()
    finally:
        chain.close()
    verify_chain(data)

    production = memory_dir / "production"
    init_dev_chain(production)
    path = production / "genesis.json"
    document = json.loads(path.read_text())
    document["faucet"] = None
    document["transaction_fee"] = 0  # nobody here holds tokens: let the call reach its check
    path.write_text(json.dumps(document))
    chain = ClockedChain(production, START)
    try:
        someone = Identity(secrets.token_bytes(32))
        assert _refused(chain, someone, "dev.advance_time", {"seconds": 60}) == (
            "forbidden: only dev chains (a genesis with a faucet) move ledger time; "
            "this one follows the clock"
        )
    finally:
        chain.close()


def test_uptime_reports_are_refused_unless_the_node_sends_them_in_order(
    memory_dir: Path,
) -> None:
    data = memory_dir / "chain"
    init_dev_chain(data)
    chain = ClockedChain(data, START)
    try:
        farmer, _ = chain.twin(10)
        farm = chain.farm(farmer, "farm-u")
        resources = {"cru": 4, "mru": 8 * GIB, "sru": 100 * GIB, "hru": 0}
        node, node_id = chain.node(farmer, farm, resources)
        other, other_id = chain.node(farmer, farm, resources)
        boot = START - 1000

        def report(who: Identity, **extra: object) -> dict[str, object]:
            args = {"uptime": chain.now - boot, "timestamp": chain.now, **extra}
            return chain.submit(who, "nodes.report_uptime", args)

        # Not a node at all, or a node reporting for another node: refused.
        stranger, _ = chain.twin(1)
        args = {"uptime": 10, "timestamp": chain.now}
        assert "is not a node" in _refused(chain, stranger, "nodes.report_uptime", args)
        forged = {**args, "node_id": node_id}
        assert _refused(chain, other, "nodes.report_uptime", forged) == (
            f"forbidden: the signer is node {other_id}'s twin; it cannot report for node {node_id}"
        )
        report(node, node_id=node_id)
        chain.step(600)
        too_soon = {"uptime": chain.now - boot, "timestamp": chain.now}
        assert "reported 600 s ago" in _refused(chain, node, "nodes.report_uptime", too_soon)
        chain.step(1800)
        # Uptime that grew faster than time did is not believed.
        grown = {"uptime": chain.now - boot + 5000, "timestamp": chain.now}
        assert "uptime grew by" in _refused(chain, node, "nodes.report_uptime", grown)
        # Uptime that fell without a reboot that fits the gap is not either.
        fell = {"uptime": 10_000_000, "timestamp": chain.now}
        assert "uptime" in _refused(chain, node, "nodes.report_uptime", fell)
        report(node)
        record = chain.ledger.state.nodes.get(node_id)
        assert record is not None and record.period_uptime == 2400
        # A reboot: the uptime starts again and counts what it says, at most a report's worth.
        chain.step(2400)
        chain.submit(node, "nodes.report_uptime", {"uptime": 300, "timestamp": chain.now})
        record = chain.ledger.state.nodes.get(node_id)
        assert record is not None and record.period_uptime == 2700
        chain.seal()
    finally:
        chain.close()
