"""The event stream survives the ledger restarting: a follower resumes with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import secrets

import httpx

from tests.chain.conftest import LedgerProcess
from zgrid.chain import UNITS_PER_TOKEN, ChainClient, ChainEvent
from zgrid.identity import Identity

TRANSFERS = 16


async def _scenario(ledger: LedgerProcess) -> list[ChainEvent]:
    sender = ChainClient(ledger.url, identity=Identity(secrets.token_bytes(32)))
    seen: list[ChainEvent] = []

    async def follow() -> None:
        async with ChainClient(ledger.url) as follower:
            async for event in follower.events(0):
                seen.append(event)
                if (
                    sum(1 for e in seen if e.name == "Transfer" and e.data["amount"] == 1)
                    == TRANSFERS
                ):
                    return

    follower_task = asyncio.create_task(follow())
    await sender.faucet(10 * UNITS_PER_TOKEN)
    recipient = "aa" * 32
    for number in range(TRANSFERS):
        if number == TRANSFERS // 2:
            # A clean restart: the follower's connection drops and must resume where it was.
            await asyncio.to_thread(ledger.stop)
            await asyncio.to_thread(ledger.start)
        await sender.transfer(recipient, 1)
    await asyncio.wait_for(follower_task, 30)
    await sender.close()
    return seen


def test_follower_resumes_across_a_ledger_restart(ledger: LedgerProcess) -> None:
    seen = asyncio.run(_scenario(ledger))
    stored = httpx.get(f"{ledger.url}/events", params={"limit": 1000}).json()
    stored_positions = [(e["height"], e["index"]) for e in stored]
    seen_positions = [(e.height, e.index) for e in seen]
    assert len(seen_positions) == len(set(seen_positions)), "an event was delivered twice"
    assert seen_positions == stored_positions[: len(seen_positions)], (
        "an event was skipped or reordered"
    )
    assert sum(1 for e in seen if e.name == "Transfer" and e.data["amount"] == 1) == TRANSFERS


def test_stream_from_a_height_and_from_an_event_id(ledger: LedgerProcess) -> None:
    async def scenario() -> None:
        async with ChainClient(ledger.url, identity=Identity(secrets.token_bytes(32))) as client:
            await client.faucet(UNITS_PER_TOKEN)
            for _ in range(3):
                await client.transfer("bb" * 32, 1)

    asyncio.run(scenario())
    events = httpx.get(f"{ledger.url}/events").json()
    second = events[1]
    with httpx.stream(
        "GET",
        f"{ledger.url}/events/stream",
        headers={"Last-Event-ID": f"{second['height']}-{second['index']}"},
        timeout=10,
    ) as response:
        ids = []
        for line in response.iter_lines():
            if line.startswith("id: "):
                ids.append(line[4:])
            if line.startswith("event: head"):
                break
    expected = [f"{e['height']}-{e['index']}" for e in events[2:]]
    assert ids[: len(expected)] == expected
    bad = httpx.get(f"{ledger.url}/events/stream", headers={"Last-Event-ID": "junk"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "malformed"
