"""`zgrid chain verify`: clean on a live ledger under load, one clear line for each kind of tampering."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chain.conftest import LedgerProcess
from tests.processes import run_zgrid
from zgrid.chain import (
    UNITS_PER_TOKEN,
    Ledger,
    LedgerUnavailable,
    SyncChainClient,
    init_dev_chain,
    load_genesis,
    sign_transaction,
)
from zgrid.chain.block import BlockHeader, SignedHeader
from zgrid.chain.genesis import load_validator_key
from zgrid.cli import main
from zgrid.identity import Identity, canonical_dumps

STORE = "chain.sqlite"


def _build_chain(data: Path) -> None:
    """Three blocks on top of genesis, the last with a faucet call and a transfer."""
    init_dev_chain(data)
    genesis = load_genesis(data)
    sender = Identity(secrets.token_bytes(32))

    async def produce() -> None:
        ledger = Ledger.open(data)
        try:
            await ledger.produce_block()
            await ledger.produce_block()
            calls: list[tuple[str, dict[str, Any]]] = [
                ("accounts.faucet", {"amount": UNITS_PER_TOKEN}),
                ("accounts.transfer", {"to": "ab" * 32, "amount": 5}),
            ]
            for nonce, (call, args) in enumerate(calls):
                ledger.submit(
                    sign_transaction(
                        sender, chain_id=genesis.chain_id, nonce=nonce, call=call, args=args
                    )
                )
            await ledger.produce_block()
        finally:
            ledger.close()

    asyncio.run(produce())


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("verify") / "chain"
    _build_chain(data)
    return data


def _head_row(db: sqlite3.Connection) -> tuple[int, dict[str, Any], str, str]:
    height, header, block_hash, signature = db.execute(
        "SELECT height, header, hash, signature FROM blocks ORDER BY height DESC LIMIT 1"
    ).fetchone()
    return height, json.loads(header), block_hash, signature


def _parent_timestamp(db: sqlite3.Connection, height: int) -> int:
    (header,) = db.execute("SELECT header FROM blocks WHERE height = ?", (height - 1,)).fetchone()
    return int(json.loads(header)["timestamp"])


def _resigned(data: Path, change: Callable[[dict[str, Any], sqlite3.Connection], None]) -> None:
    """Change the head block's header and sign it again, as the validator (or someone) would."""
    with sqlite3.connect(data / STORE) as db:
        height, header, _, _ = _head_row(db)
        change(header, db)
        signer = load_validator_key(data)
        if header["validator"] != signer.address:
            signer = OTHER
        signed = SignedHeader.sign(BlockHeader.model_validate(header), signer)
        db.execute(
            "UPDATE blocks SET header = ?, hash = ?, signature = ? WHERE height = ?",
            (
                canonical_dumps(signed.header.model_dump(mode="json")).decode(),
                signed.hash,
                signed.signature,
                height,
            ),
        )


def _raw(data: Path, sql: str) -> None:
    with sqlite3.connect(data / STORE) as db:
        height = db.execute("SELECT MAX(height) FROM blocks").fetchone()[0]
        db.execute(sql.replace("{head}", str(height)))


OTHER = Identity(bytes(range(32)))


def _set(field: str, value: Any) -> Callable[[dict[str, Any], sqlite3.Connection], None]:
    def change(header: dict[str, Any], _: sqlite3.Connection) -> None:
        header[field] = value(header) if callable(value) else value

    return change


def _backwards(header: dict[str, Any], db: sqlite3.Connection) -> None:
    header["timestamp"] = _parent_timestamp(db, header["height"]) - 100


def _new_genesis_time(data: Path) -> None:
    path = data / "genesis.json"
    document = json.loads(path.read_text())
    document["genesis_time"] += 1
    path.write_text(json.dumps(document))


TAMPERING: dict[str, tuple[Callable[[Path], None], str]] = {
    # Header fields, signed again so only the check of that field can catch them.
    "chain_id": (lambda d: _resigned(d, _set("chain_id", "other-chain")), "chain 'other-chain'"),
    "height": (lambda d: _resigned(d, _set("height", lambda h: h["height"] + 5)), "says height"),
    "parent_hash": (lambda d: _resigned(d, _set("parent_hash", "11" * 32)), "parent hash"),
    "timestamp going backwards": (lambda d: _resigned(d, _backwards), "earlier than its parent"),
    "transactions_root": (
        lambda d: _resigned(d, _set("transactions_root", "22" * 32)),
        "transactions root",
    ),
    "events_root": (lambda d: _resigned(d, _set("events_root", "33" * 32)), "events root"),
    "state_commitment": (
        lambda d: _resigned(d, _set("state_commitment", "44" * 32)),
        "state commitment",
    ),
    "transaction_count": (
        lambda d: _resigned(d, _set("transaction_count", lambda h: h["transaction_count"] + 1)),
        "counts 3 transactions, the block holds 2",
    ),
    "validator": (lambda d: _resigned(d, _set("validator", OTHER.address)), "names validator"),
    # Stored columns and rows changed by hand.
    "non-hex signature": (
        lambda d: _raw(d, "UPDATE blocks SET signature = 'zz' WHERE height = {head}"),
        "the signature does not verify",
    ),
    "wrong signature": (
        lambda d: _raw(d, f"UPDATE blocks SET signature = '{'00' * 64}' WHERE height = {{head}}"),
        "the signature does not verify",
    ),
    "non-hex hash": (
        lambda d: _raw(d, "UPDATE blocks SET hash = 'zz' WHERE height = {head}"),
        "the stored hash is not its header's",
    ),
    "header edited, not signed": (
        lambda d: _raw(
            d,
            "UPDATE blocks SET header = replace(header, '\"transaction_count\":2', "
            "'\"transaction_count\":1') WHERE height = {head}",
        ),
        "the stored hash is not its header's",
    ),
    "header not JSON": (
        lambda d: _raw(d, "UPDATE blocks SET header = 'zz' WHERE height = {head}"),
        "the stored header is damaged",
    ),
    "header with a field of the wrong type": (
        lambda d: _raw(
            d,
            'UPDATE blocks SET header = replace(header, \'"height":\', \'"height":"x","h":\')'
            " WHERE height = {head}",
        ),
        "the stored header is damaged",
    ),
    "transaction body damaged": (
        lambda d: _raw(d, "UPDATE transactions SET body = 'zz' WHERE height = {head}"),
        "is damaged",
    ),
    "state row changed": (
        lambda d: _raw(d, "UPDATE state SET value = replace(value, '\"nonce\":2', '\"nonce\":7')"),
        "stored state differs",
    ),
    "block missing": (
        lambda d: _raw(d, "DELETE FROM blocks WHERE height = 1"),
        "block 1 is missing",
    ),
    "genesis mismatch": (_new_genesis_time, "differs from genesis.json"),
}


def test_the_untampered_chain_verifies(template: Path) -> None:
    result = run_zgrid("chain", "verify", "--data", str(template), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["transactions"] == 2


def _one_error_line(code: int, stderr: str, expected: str) -> None:
    assert code == 1, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampering_is_reported_in_one_line(
    template: Path, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The command's own entry point in this process (an escaping exception fails the
    # test); one case below runs the installed command as a user would.
    data = tmp_path / "chain"
    shutil.copytree(template, data)
    tamper, expected = TAMPERING[case]
    tamper(data)
    capsys.readouterr()
    code = main(["chain", "verify", "--data", str(data)])
    _one_error_line(code, capsys.readouterr().err, expected)


def test_tampering_through_the_installed_command(template: Path, tmp_path: Path) -> None:
    data = tmp_path / "chain"
    shutil.copytree(template, data)
    tamper, expected = TAMPERING["non-hex signature"]
    tamper(data)
    result = run_zgrid("chain", "verify", "--data", str(data))
    _one_error_line(result.returncode, result.stderr, expected)


def _load(url: str, stop: threading.Event, faults: list[str]) -> None:
    client = SyncChainClient(url, identity=Identity(secrets.token_bytes(32)), timeout=10)
    try:
        client.faucet(1000 * UNITS_PER_TOKEN)
        while not stop.is_set():
            batch = [
                client.sign("accounts.transfer", {"to": "cd" * 32, "amount": 1}) for _ in range(50)
            ]
            answers = client.submit_batch(batch)
            if not all("hash" in answer for answer in answers):
                faults.append(str(answers[:2]))
                return
    except LedgerUnavailable as exc:
        faults.append(str(exc))
    finally:
        client.close()


def test_verify_a_live_ledger_under_load(ledger: LedgerProcess) -> None:
    stop = threading.Event()
    faults: list[str] = []
    senders = [threading.Thread(target=_load, args=(ledger.url, stop, faults)) for _ in range(2)]
    # Every verify below runs while blocks with transfers are being committed.
    for sender in senders:
        sender.start()
    try:
        for _ in range(2):
            result = run_zgrid("chain", "verify", "--data", str(ledger.data), "--json")
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout)["ok"] is True
    finally:
        stop.set()
        for sender in senders:
            sender.join(timeout=30)
    assert faults == []
