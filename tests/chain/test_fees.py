"""Fees: state cannot be grown for free, the faucet still serves a new account, approvals only from signers."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from zgrid.chain import (
    UNITS_PER_TOKEN,
    Ledger,
    RejectCode,
    SignedTransaction,
    TransactionRejected,
    init_dev_chain,
    issue_join_token,
    load_genesis,
    sign_transaction,
    verify_chain,
)
from zgrid.chain.domains import money
from zgrid.chain.genesis import DEFAULT_TRANSACTION_FEE
from zgrid.chain.state import encode_record
from zgrid.identity import Identity
from zgrid.types import GIB

FEE = DEFAULT_TRANSACTION_FEE
HASH = "ab" * 32
SEALED = base64.b64encode(b"sealed deployment").decode()


class Chain:
    """An in-process ledger and the next nonce of each identity that signs on it."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.nonces: dict[str, int] = {}

    def submit(self, who: Identity, call: str, args: dict[str, Any]) -> dict[str, Any]:
        nonce = self.nonces.get(who.address, 0)
        tx: SignedTransaction = sign_transaction(
            who, chain_id=self.ledger.chain_id, nonce=nonce, call=call, args=args
        )
        status = self.ledger.submit(tx)
        self.nonces[who.address] = nonce + 1
        return status.result

    def free(self, address: str) -> int:
        account = self.ledger.state.accounts.get(address)
        return 0 if account is None else account.free


def new_identity() -> Identity:
    return Identity(secrets.token_bytes(32))


def run(data: Path, scenario: Any) -> None:
    async def main() -> None:
        ledger = Ledger.open(data, block_time=0.1)
        try:
            scenario(Chain(ledger))
            await ledger.produce_block()
        finally:
            ledger.close()

    asyncio.run(main())


@pytest.fixture
def data(tmp_path: Path) -> Path:
    init_dev_chain(tmp_path / "chain")
    return tmp_path / "chain"


def test_dev_chains_charge_a_small_fee(data: Path) -> None:
    assert load_genesis(data).transaction_fee == FEE == UNITS_PER_TOKEN // 1000


def test_the_fee_is_burned_and_the_supply_still_adds_up(data: Path) -> None:
    alice, bob = new_identity(), new_identity()

    def scenario(chain: Chain) -> None:
        chain.submit(alice, "accounts.faucet", {"amount": 10 * UNITS_PER_TOKEN})
        assert chain.free(alice.address) == 10 * UNITS_PER_TOKEN  # the faucet takes no fee
        chain.submit(alice, "twins.create", {})
        chain.submit(alice, "accounts.transfer", {"to": bob.address, "amount": UNITS_PER_TOKEN})
        assert chain.free(alice.address) == 9 * UNITS_PER_TOKEN - 2 * FEE
        assert chain.free(bob.address) == UNITS_PER_TOKEN
        assert money.supply(chain.ledger.state, chain.ledger.genesis).burned == 2 * FEE

    run(data, scenario)
    report = verify_chain(data)
    assert report.supply == load_genesis(data).supply - 2 * FEE
    assert report.transactions == 3


def test_a_new_account_gets_tokens_from_the_faucet_and_nothing_else_for_free(data: Path) -> None:
    newcomer = new_identity()

    def scenario(chain: Chain) -> None:
        with pytest.raises(TransactionRejected) as caught:
            chain.submit(newcomer, "twins.create", {})
        assert caught.value.code == RejectCode.INSUFFICIENT_BALANCE
        assert caught.value.message == (
            f"a transaction costs a fee of 0.001 tokens and account {newcomer.address[:16]}… "
            "has 0; get tokens with `zgrid account faucet` (dev chains) or `zgrid account transfer`"
        )
        assert chain.ledger.next_nonce(newcomer.address) == 0
        assert newcomer.address not in chain.ledger.state.twin_by_account
        chain.submit(newcomer, "accounts.faucet", {"amount": 500 * UNITS_PER_TOKEN})
        assert chain.submit(newcomer, "twins.create", {}) == {"twin_id": 1}

    run(data, scenario)


def test_a_genesis_can_turn_fees_off(data: Path) -> None:
    genesis = json.loads((data / "genesis.json").read_text())
    genesis["transaction_fee"] = 0
    (data / "genesis.json").write_text(json.dumps(genesis))

    def scenario(chain: Chain) -> None:
        assert chain.submit(new_identity(), "twins.create", {}) == {"twin_id": 1}

    run(data, scenario)


def test_strangers_cannot_grow_a_contracts_approvals(data: Path) -> None:
    """300 twins that are not signers of a deployment once grew its contract from 387 B to 73 KB."""
    farmer, node, owner, stakeholder = (new_identity() for _ in range(4))
    strangers = [new_identity() for _ in range(300)]

    def scenario(chain: Chain) -> None:
        for who in (farmer, node, owner, stakeholder):
            chain.submit(who, "accounts.faucet", {"amount": 10 * UNITS_PER_TOKEN})
            chain.submit(who, "twins.create", {})
        farm_id = chain.submit(farmer, "farms.create", {"name": "approvals"})["farm_id"]
        token = issue_join_token(
            farmer,
            chain_id=chain.ledger.chain_id,
            farm_id=farm_id,
            expires=chain.ledger.head.header.timestamp + 3600,
        )
        node_id = chain.submit(
            node,
            "nodes.register",
            {
                "farm_id": farm_id,
                "resources": {"cru": 4, "mru": 8 * GIB, "sru": 100 * GIB},
                "join_token": token.encode(),
            },
        )["node_id"]
        owner_twin, stakeholder_twin = 3, 4
        contract_id = chain.submit(
            owner,
            "contracts.create_node_contract",
            {
                "node_id": node_id,
                "deployment_hash": HASH,
                "sealed_deployment": SEALED,
                "approvers": [owner_twin, stakeholder_twin],
            },
        )["contract_id"]
        contracts = chain.ledger.state.contracts
        size = len(encode_record(contracts.get(contract_id)))  # type: ignore[arg-type]

        for index, stranger in enumerate(strangers):
            chain.submit(stranger, "accounts.faucet", {"amount": UNITS_PER_TOKEN})
            twin_id = chain.submit(stranger, "twins.create", {})["twin_id"]
            approval = {
                "contract_id": contract_id,
                "deployment_hash": HASH,
                "signature": stranger.sign(bytes.fromhex(HASH)).hex(),
            }
            with pytest.raises(TransactionRejected) as caught:
                chain.submit(stranger, "contracts.approve", approval)
            assert caught.value.code == RejectCode.FORBIDDEN
            if index == 0:
                assert caught.value.message == (
                    f"twin {twin_id} is not a signer of contract {contract_id}'s deployment "
                    f"(its signers: {owner_twin}, {stakeholder_twin}); only they may approve it"
                )
        assert len(encode_record(contracts.get(contract_id))) == size  # type: ignore[arg-type]

        chain.submit(
            stakeholder,
            "contracts.approve",
            {
                "contract_id": contract_id,
                "deployment_hash": HASH,
                "signature": stakeholder.sign(bytes.fromhex(HASH)).hex(),
            },
        )
        contract = contracts.get(contract_id)
        assert contract is not None
        assert [a.twin_id for a in contract.approvals] == [stakeholder_twin]

        # An update may name other signers; the approvals start again.
        new_hash = "cd" * 32
        chain.submit(
            owner,
            "contracts.update_node_contract",
            {
                "contract_id": contract_id,
                "deployment_hash": new_hash,
                "sealed_deployment": SEALED,
                "approvers": [owner_twin],
            },
        )
        with pytest.raises(TransactionRejected, match="is not a signer"):
            chain.submit(
                stakeholder,
                "contracts.approve",
                {
                    "contract_id": contract_id,
                    "deployment_hash": new_hash,
                    "signature": stakeholder.sign(bytes.fromhex(new_hash)).hex(),
                },
            )
        updated = contracts.get(contract_id)
        assert updated is not None
        assert (updated.approvers, updated.approvals) == ([owner_twin], [])

    run(data, scenario)


def test_approvers_must_be_twins_and_named_once(data: Path) -> None:
    owner = new_identity()

    def scenario(chain: Chain) -> None:
        chain.submit(owner, "accounts.faucet", {"amount": 10 * UNITS_PER_TOKEN})
        chain.submit(owner, "twins.create", {})
        base = {"node_id": 1, "deployment_hash": HASH, "sealed_deployment": SEALED}
        for approvers, fragment in [
            ([1, 1], "approvers: names a twin twice"),
            ([1, 99], "approvers: there is no twin 99"),
            (list(range(1, 66)), "approvers: List should have at most 64 items"),
        ]:
            with pytest.raises(TransactionRejected, match=fragment):
                chain.submit(
                    owner, "contracts.create_node_contract", {**base, "approvers": approvers}
                )

    run(data, scenario)
