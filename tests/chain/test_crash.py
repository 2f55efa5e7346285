"""kill -9 the ledger while transfers stream in: nothing acknowledged is lost, the chain verifies."""

from __future__ import annotations

import random
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.chain.conftest import LedgerProcess
from tests.processes import ZGRID
from zgrid.chain import (
    UNITS_PER_TOKEN,
    LedgerUnavailable,
    SyncChainClient,
    TransactionRejected,
    init_dev_chain,
    load_genesis,
)
from zgrid.identity import Identity

SENDERS = 4
BATCH = 25
RECIPIENTS = [f"{n:064x}" for n in range(1, 6)]


def _send_until_stopped(
    url: str, identity: Identity, acknowledged: list[str], stop: threading.Event, faults: list[str]
) -> None:
    """Submit batches of transfers and record a batch as acknowledged once the ledger says it is included."""
    client = SyncChainClient(url, identity=identity, timeout=5)
    try:
        while not stop.is_set():
            batch = [
                client.sign(
                    "accounts.transfer",
                    {"to": random.choice(RECIPIENTS), "amount": random.randint(1, 1000)},
                )
                for _ in range(BATCH)
            ]
            answers = client.submit_batch(batch)
            if not all("hash" in answer for answer in answers):
                faults.append(f"a batch was refused while the ledger ran: {answers}")
                return
            for tx in batch:
                client.wait_included(tx.hash, timeout=5)
                acknowledged.append(tx.hash)
    except (LedgerUnavailable, TransactionRejected, httpx.HTTPError):
        pass  # the ledger died under us: whatever was not acknowledged may be gone
    finally:
        client.close()


def test_kill_9_loses_nothing_acknowledged(ledger: LedgerProcess) -> None:
    senders = [Identity(secrets.token_bytes(32)) for _ in range(SENDERS)]
    for identity in senders:
        with SyncChainClient(ledger.url, identity=identity) as client:
            client.faucet(1000 * UNITS_PER_TOKEN)
    acknowledged: list[str] = []
    faults: list[str] = []
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_send_until_stopped, args=(ledger.url, identity, acknowledged, stop, faults)
        )
        for identity in senders
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 15
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    ledger.kill9()  # mid-stream: batches are in flight and blocks are being written
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(acknowledged) >= 100, "the load did not get going before the kill"

    ledger.start()
    with httpx.Client(base_url=ledger.url) as http:
        for tx_hash in acknowledged:
            status = http.get(f"/transactions/{tx_hash}")
            assert status.status_code == 200, f"acknowledged transaction {tx_hash} is gone"
            assert status.json()["status"] == "included"
        genesis = load_genesis(ledger.data)
        holders = [genesis.faucet, *(s.address for s in senders), *RECIPIENTS]
        balances = [http.get(f"/accounts/{address}").json() for address in holders]
        supply = http.get("/economy").json()["supply"]
    assert supply["genesis"] == genesis.supply and supply["burned"] > 0
    assert sum(b["free"] + b["reserved"] for b in balances) == supply["total"]
    # Every sender continues where the ledger says it is: its next transfer is included.
    for identity in senders:
        with SyncChainClient(ledger.url, identity=identity) as client:
            assert client.transfer(RECIPIENTS[0], 1)["status"] == "included"
    assert faults == []

    ledger.stop()
    verified = subprocess.run(
        [ZGRID, "chain", "verify", "--data", str(ledger.data), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert '"ok": true' in verified.stdout


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_clean_stop_seals_what_was_accepted(tmp_path: Path, stop_signal: signal.Signals) -> None:
    data = tmp_path / "chain"
    init_dev_chain(data)
    ledger = LedgerProcess(data, block_time=30)  # nothing is sealed by the clock during the test
    ledger.stop_signal = stop_signal
    ledger.start()
    identity = Identity(secrets.token_bytes(32))
    with SyncChainClient(ledger.url, identity=identity) as client:
        accepted = client.submit("accounts.faucet", {"amount": UNITS_PER_TOKEN}, wait=False)
    assert accepted["status"] == "pending"
    assert ledger.stop() == 0
    ledger.start()
    try:
        status = httpx.get(f"{ledger.url}/transactions/{accepted['hash']}").json()
        assert status["status"] == "included"
    finally:
        ledger.stop()
