"""The state machine without a server: journaling, commitments, replay, tampering, units, genesis."""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zgrid.chain import (
    UNITS_PER_TOKEN,
    GenesisError,
    Ledger,
    RejectCode,
    SignedTransaction,
    TransactionRejected,
    VerificationFailed,
    format_tokens,
    init_dev_chain,
    load_genesis,
    parse_tokens,
    sign_transaction,
    verify_chain,
)
from zgrid.chain.records import Account
from zgrid.chain.state import GENESIS_PARENT, WriteSet, next_commitment
from zgrid.chain.tables import LedgerState
from zgrid.identity import Identity


@given(st.integers(min_value=0, max_value=10**18))
def test_token_text_round_trip(units: int) -> None:
    assert parse_tokens(format_tokens(units)) == units


@pytest.mark.parametrize(
    ("text", "units"),
    [("1", UNITS_PER_TOKEN), ("0.0000001", 1), ("12.5", 125_000_000), (" 3 ", 30_000_000)],
)
def test_parse_tokens(text: str, units: int) -> None:
    assert parse_tokens(text) == units


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("abc", "not an amount"),
        ("-1", "non-negative"),
        ("0.00000001", "at most 7 decimals"),
        ("inf", "non-negative"),
    ],
)
def test_parse_tokens_refuses(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_tokens(text)


def test_rollback_undoes_writes_and_leaves_the_write_set_as_replay_makes_it() -> None:
    state = LedgerState()
    state.accounts.put("a", Account(address="a", free=5))
    state.begin()
    state.accounts.put("a", Account(address="a", free=1))
    state.accounts.put("b", Account(address="b", free=4))
    state.accounts.delete("a")
    state.rollback()
    assert state.accounts.get("a") == Account(address="a", free=5)
    assert state.accounts.get("b") is None
    assert set(state.take_writes()) == {("accounts", "a")}


def test_commitment_depends_on_writes_and_history() -> None:
    one: WriteSet = {("accounts", "a"): b'{"x":1}'}
    two: WriteSet = {("accounts", "a"): b'{"x":2}'}
    assert next_commitment(GENESIS_PARENT, one) != next_commitment(GENESIS_PARENT, two)
    assert next_commitment(GENESIS_PARENT, one) == next_commitment(GENESIS_PARENT, dict(one))
    assert next_commitment(bytes(31) + b"\x01", one) != next_commitment(GENESIS_PARENT, one)


def _tx(identity: Identity, nonce: int, call: str, args: dict[str, object]) -> SignedTransaction:
    return sign_transaction(identity, chain_id="zgrid-dev", nonce=nonce, call=call, args=args)


def _fill_chain(data: Path, blocks: int = 3) -> list[Identity]:
    async def scenario() -> list[Identity]:
        ledger = Ledger.open(data, block_time=0.1)
        people = [Identity(secrets.token_bytes(32)) for _ in range(3)]
        for person in people:
            ledger.submit(_tx(person, 0, "accounts.faucet", {"amount": 50 * UNITS_PER_TOKEN}))
        for number in range(blocks):
            for index, person in enumerate(people):
                target = people[(index + 1) % len(people)]
                ledger.submit(
                    _tx(
                        person,
                        number + 1,
                        "accounts.transfer",
                        {"to": target.address, "amount": 7 + number},
                    )
                )
            await ledger.produce_block()
        ledger.close()
        return people

    return asyncio.run(scenario())


def test_verify_replays_to_the_same_commitment(tmp_path: Path) -> None:
    data = tmp_path / "chain"
    init_dev_chain(data)
    _fill_chain(data)
    report = verify_chain(data)
    assert report.height == 3
    assert report.transactions == 12
    genesis = load_genesis(data)
    assert report.burned > 0 and report.burned % genesis.transaction_fee == 0
    assert report.supply == genesis.supply + report.minted - report.burned
    reopened = Ledger.open(data)
    assert reopened.head.header.state_commitment == report.state_commitment
    reopened.close()


@pytest.mark.parametrize(
    ("statement", "fragment"),
    [
        (
            "UPDATE state SET value = replace(value, '\"nonce\":4', '\"nonce\":9') WHERE tbl = 'accounts'",
            "stored state differs",
        ),
        (
            "UPDATE blocks SET header = replace(header, '\"timestamp\":', '\"timestamp\":1') WHERE height = 2",
            "hash or validator signature",
        ),
        ("DELETE FROM transactions WHERE height = 2 AND idx = 0", "transactions root"),
        (
            "UPDATE transactions SET result = '{\"amount\":1}' WHERE height = 2 AND idx = 1",
            "different result",
        ),
        ("DELETE FROM events WHERE height = 1 AND idx = 1", "stored events differ"),
    ],
)
def test_verify_catches_tampering(tmp_path: Path, statement: str, fragment: str) -> None:
    data = tmp_path / "chain"
    init_dev_chain(data)
    _fill_chain(data)
    with sqlite3.connect(data / "chain.sqlite") as db:
        db.execute(statement)
    with pytest.raises(VerificationFailed, match=fragment):
        verify_chain(data)


def test_refused_transactions_are_not_in_blocks(tmp_path: Path) -> None:
    data = tmp_path / "chain"
    init_dev_chain(data)

    async def scenario() -> None:
        ledger = Ledger.open(data, block_time=0.1)
        poor = Identity(secrets.token_bytes(32))
        with pytest.raises(TransactionRejected) as caught:
            ledger.submit(_tx(poor, 0, "accounts.transfer", {"to": "ab" * 32, "amount": 5}))
        assert caught.value.code == RejectCode.INSUFFICIENT_BALANCE
        signed = await ledger.produce_block()
        assert signed.header.transaction_count == 0
        assert ledger.next_nonce(poor.address) == 0
        ledger.close()

    asyncio.run(scenario())
    verify_chain(data)


def test_genesis_problems(tmp_path: Path) -> None:
    with pytest.raises(GenesisError, match=r"no genesis\.json"):
        load_genesis(tmp_path)
    init_dev_chain(tmp_path / "a")
    with pytest.raises(GenesisError, match="refusing to overwrite"):
        init_dev_chain(tmp_path / "a")
    document = json.loads((tmp_path / "a" / "genesis.json").read_text())
    document["token_price"] = 0
    (tmp_path / "a" / "genesis.json").write_text(json.dumps(document))
    with pytest.raises(GenesisError, match="token_price"):
        load_genesis(tmp_path / "a")


def test_a_store_of_another_chain_is_refused(tmp_path: Path) -> None:
    init_dev_chain(tmp_path / "a")
    init_dev_chain(tmp_path / "b")
    Ledger.open(tmp_path / "a").close()
    (tmp_path / "b" / "chain.sqlite").write_bytes((tmp_path / "a" / "chain.sqlite").read_bytes())
    (tmp_path / "b" / "validator.key").write_bytes((tmp_path / "a" / "validator.key").read_bytes())
    genesis_a = json.loads((tmp_path / "a" / "genesis.json").read_text())
    genesis_b = json.loads((tmp_path / "b" / "genesis.json").read_text())
    genesis_b["validator"] = genesis_a["validator"]
    (tmp_path / "b" / "genesis.json").write_text(json.dumps(genesis_b))
    with pytest.raises(GenesisError, match="holds a different chain"):
        Ledger.open(tmp_path / "b")


def test_a_dev_chain_is_written_privately_and_whole(tmp_path: Path) -> None:
    data = tmp_path / "chain"
    genesis = init_dev_chain(data)
    assert sorted(path.name for path in data.iterdir()) == ["genesis.json", "validator.key"]
    for name in ("genesis.json", "validator.key"):
        assert (data / name).stat().st_mode & 0o777 == 0o600, name
    assert load_genesis(data) == genesis
    assert genesis.transaction_fee > 0


def test_a_genesis_keeps_its_numbers_in_64_bits(tmp_path: Path) -> None:
    init_dev_chain(tmp_path / "a")
    path = tmp_path / "a" / "genesis.json"
    document = json.loads(path.read_text())
    changes: list[tuple[dict[str, object], str]] = [
        ({"balances": {"ab" * 32: 2**63, "cd" * 32: 2**63}}, "the supply is more than"),
        ({"transaction_fee": -1}, "transaction_fee"),
        ({"genesis_time": 2**64}, "genesis_time"),
    ]
    for change, fragment in changes:
        path.write_text(json.dumps({**document, **change}))
        with pytest.raises(GenesisError, match=fragment):
            load_genesis(tmp_path / "a")
