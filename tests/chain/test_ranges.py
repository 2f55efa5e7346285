"""Numbers the ledger cannot keep are refused at admission, never at sealing; a broken call is refused alone."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import Field

from tests.chain.conftest import ClientFactory, LedgerProcess, refused
from tests.factories import join_token
from zgrid.chain import (
    UNITS_PER_TOKEN,
    Ledger,
    RejectCode,
    SignedTransaction,
    SyncChainClient,
    TransactionRejected,
    init_dev_chain,
    sign_transaction,
    verify_chain,
)
from zgrid.chain.domains import Call, CallContext, build_calls
from zgrid.chain.domains.accounts import TransferArgs
from zgrid.chain.domains.base import Args, unbounded_integers
from zgrid.chain.errors import UnstorableRecord
from zgrid.chain.records import Account
from zgrid.chain.tables import LedgerState
from zgrid.chain.units import U64_MAX
from zgrid.identity import Identity
from zgrid.types import GIB

SEALED = base64.b64encode(b"sealed").decode()
HASH = "ab" * 32


def test_every_call_declares_the_range_of_its_integers() -> None:
    for name, call in build_calls().items():
        assert unbounded_integers(call.args) == [], name


def test_an_integer_without_a_range_cannot_be_declared() -> None:
    with pytest.raises(TypeError, match="integer fields need a range inside 64 bits: count"):

        class Unbounded(Args):
            count: int

    with pytest.raises(TypeError, match="too_big"):

        class TooWide(Args):
            too_big: int = Field(ge=0, le=2**64)


def test_a_record_outside_64_bits_fails_its_transaction_not_the_block() -> None:
    state = LedgerState()
    state.begin()
    state.accounts.put("a", Account(address="a", free=5))
    state.commit()
    state.begin()
    state.accounts.put("a", Account(address="a", free=U64_MAX + 1))
    with pytest.raises(UnstorableRecord, match=r"accounts/a\.free would be a 65-bit number"):
        state.commit()
    state.rollback()
    assert state.take_writes() == {
        ("accounts", "a"): b'{"address":"a","free":5,"nonce":0,"reserved":0}'
    }


def _node_with_contracts(
    clients: ClientFactory, count: int
) -> tuple[SyncChainClient, int, list[int]]:
    farmer = clients(5)
    farmer.create_twin()
    farm_id = farmer.create_farm(f"farm-{secrets.token_hex(4)}")
    node = clients(1)
    node.create_twin()
    node_id = node.register_node(
        farm_id,
        {"cru": U64_MAX, "mru": 8 * GIB, "sru": 100 * GIB, "hru": 0},
        join_token=join_token(farmer, farm_id),
    )
    deployer = clients(10)
    deployer.create_twin()
    # The first contract reserves every core; the others reserve nothing.
    contracts = [
        deployer.create_node_contract(
            node_id, HASH, SEALED, capacity={"cru": U64_MAX if not index else 0}
        )["result"]["contract_id"]
        for index in range(count)
    ]
    return node, node_id, contracts


def test_numbers_too_large_are_refused_and_blocks_keep_coming(
    ledger: LedgerProcess, clients: ClientFactory
) -> None:
    node, node_id, (first, second) = _node_with_contracts(clients, 2)
    payer = clients(5)
    earlier = payer.submit("accounts.transfer", {"to": "cd" * 32, "amount": 7}, wait=False)

    # Two of these once summed to 4,301 digits in the node's record, which canonical JSON
    # could not write: the block producer died with the open block.
    huge = int("9" * 4300)  # the most digits Python's JSON reader takes
    for contract_id in (first, second):
        with pytest.raises(TransactionRejected) as caught:
            node.submit(
                "contracts.report_resources", {"contract_id": contract_id, "used": {"cru": huge}}
            )
        # The API refuses an integer beyond 64 bits before the state machine sees it
        # (the machine's own ranges: the sum below, and the unit tests of this file).
        assert caught.value.code == RejectCode.MALFORMED
        assert "does not fit in 64 bits" in caught.value.message

    node.submit("contracts.report_resources", {"contract_id": first, "used": {"cru": U64_MAX}})
    message = refused(
        RejectCode.INVALID_ARGS,
        lambda: node.submit(
            "contracts.report_resources", {"contract_id": second, "used": {"cru": 1}}
        ),
    )
    assert message == (
        "invalid args for contracts.report_resources: used.cru: "
        f"1 core is more than the 0 cores contract {second} reserves"
    )
    assert node.node(node_id)["used"]["cru"] == U64_MAX

    assert "must be at most 922337203685.4775807 tokens" in refused(
        RejectCode.INVALID_ARGS,
        lambda: payer.submit("accounts.transfer", {"to": "cd" * 32, "amount": 2**63}),
    )
    too_far = {
        "chain_id": "zgrid-dev",
        "signer": "ef" * 32,
        "nonce": 2**64,
        "call": "accounts.transfer",
        "args": {"to": "cd" * 32, "amount": 1},
    }
    response = httpx.post(
        f"{ledger.url}/transactions",
        json={"body": too_far, "signature": "00" * 64},
    )
    assert response.status_code == 400
    assert "does not fit in 64 bits" in response.json()["error"]["message"]

    # The ledger is alive and sealing: the transfer sent before the refusals is in a block,
    # and so is one sent after them.
    deadline = time.monotonic() + 10
    while payer.transaction(earlier["hash"])["status"] != "included":
        assert time.monotonic() < deadline, "the earlier transaction was never included"
        time.sleep(0.05)
    height = payer.head()["height"]
    assert payer.transfer("cd" * 32, 1)["height"] > height
    assert ledger.process is not None and ledger.process.poll() is None


def _tx(identity: Identity, nonce: int, call: str, args: dict[str, Any]) -> SignedTransaction:
    return sign_transaction(identity, chain_id="zgrid-dev", nonce=nonce, call=call, args=args)


def test_a_call_that_breaks_is_refused_alone_and_rolled_back(tmp_path: Path) -> None:
    data = tmp_path / "chain"
    init_dev_chain(data)

    def breaks_half_way(ctx: CallContext, args: TransferArgs) -> dict[str, Any]:
        ctx.debit(ctx.signer, args.amount)
        ctx.credit(args.to, args.amount)
        raise RuntimeError("a bug no rule foresaw")

    async def scenario() -> None:
        ledger = Ledger.open(data, block_time=0.1)
        alice, bob = Identity(secrets.token_bytes(32)), Identity(secrets.token_bytes(32))
        ledger.submit(_tx(alice, 0, "accounts.faucet", {"amount": 50 * UNITS_PER_TOKEN}))
        before = ledger.state.accounts.get(alice.address)
        ledger.machine.calls["accounts.transfer"] = Call(TransferArgs, breaks_half_way)
        with pytest.raises(TransactionRejected) as caught:
            ledger.submit(_tx(alice, 1, "accounts.transfer", {"to": bob.address, "amount": 5}))
        assert caught.value.code == RejectCode.FAILED
        assert caught.value.message == (
            "accounts.transfer failed while being applied and was refused, nothing of it kept "
            "(RuntimeError: a bug no rule foresaw)"
        )
        assert ledger.state.accounts.get(alice.address) == before
        assert ledger.state.accounts.get(bob.address) is None
        ledger.machine.calls = build_calls()
        ledger.submit(_tx(alice, 1, "accounts.transfer", {"to": bob.address, "amount": 5}))
        sealed = await ledger.produce_block()
        assert sealed.header.transaction_count == 2
        ledger.close()

    asyncio.run(scenario())
    assert verify_chain(data).transactions == 2


def test_a_result_or_event_the_ledger_cannot_keep_refuses_the_call(tmp_path: Path) -> None:
    data = tmp_path / "chain"
    init_dev_chain(data)

    def returns_too_much(ctx: CallContext, args: TransferArgs) -> dict[str, Any]:
        ctx.credit(args.to, args.amount)
        return {"amount": 2**70}

    def emits_too_much(ctx: CallContext, args: TransferArgs) -> dict[str, Any]:
        ctx.emit("Transfer", amount=-(2**64))
        return {}

    async def scenario() -> None:
        ledger = Ledger.open(data, block_time=0.1)
        alice = Identity(secrets.token_bytes(32))
        ledger.submit(_tx(alice, 0, "accounts.faucet", {"amount": UNITS_PER_TOKEN}))
        for nonce, apply in enumerate([returns_too_much, emits_too_much], start=1):
            ledger.machine.calls["accounts.transfer"] = Call(TransferArgs, apply)
            with pytest.raises(TransactionRejected, match="cannot be kept by the ledger") as caught:
                ledger.submit(_tx(alice, 1, "accounts.transfer", {"to": "cd" * 32, "amount": 5}))
            assert caught.value.code == RejectCode.FAILED, nonce
        assert ledger.state.accounts.get("cd" * 32) is None
        assert (await ledger.produce_block()).header.transaction_count == 1
        ledger.close()

    asyncio.run(scenario())
