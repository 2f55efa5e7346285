"""Event-stream readers that come and go never stop block production or a clean shutdown."""

from __future__ import annotations

import asyncio
import random
import secrets
import time

import httpx

from tests.chain.conftest import LedgerProcess
from zgrid.chain import UNITS_PER_TOKEN, SyncChainClient
from zgrid.identity import Identity

READERS = 100
CHURN_SECONDS = 6.0


async def _reader(port: int, stay: float) -> None:
    """Open the event stream, read a little, and drop the connection after ``stay`` seconds."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return
    try:
        writer.write(f"GET /events/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        await writer.drain()
        deadline = time.monotonic() + stay
        while (left := deadline - time.monotonic()) > 0:
            try:
                if not await asyncio.wait_for(reader.read(4096), left):
                    break
            except TimeoutError:
                break
    except OSError:
        pass
    finally:
        writer.transport.abort()


async def _churn(port: int, seconds: float) -> None:
    end = time.monotonic() + seconds

    async def slot() -> None:
        while time.monotonic() < end:
            await _reader(port, random.uniform(0.5, 2.5))

    await asyncio.gather(*(slot() for _ in range(READERS)))


def test_blocks_keep_coming_while_stream_readers_churn(ledger: LedgerProcess) -> None:
    asyncio.run(_churn(ledger.port, CHURN_SECONDS))
    before = httpx.get(f"{ledger.url}/chain/head", timeout=5).json()["height"]
    with SyncChainClient(ledger.url, identity=Identity(secrets.token_bytes(32))) as client:
        included = client.submit("accounts.faucet", {"amount": UNITS_PER_TOKEN}, timeout=10)
    assert included["status"] == "included"
    time.sleep(4 * ledger.block_time)
    after = httpx.get(f"{ledger.url}/chain/head", timeout=5).json()["height"]
    assert after > before + 1, f"the head stayed at {before} -> {after}"
    assert ledger.stop() == 0, "the ledger did not stop on SIGTERM"
