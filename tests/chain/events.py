"""Following the event stream in tests, with a deadline so a missing event fails instead of hanging."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from zgrid.chain import ChainClient, ChainEvent


def collect(
    url: str, from_height: int, until: Callable[[list[ChainEvent]], bool], timeout: float = 30
) -> list[ChainEvent]:
    async def follow() -> list[ChainEvent]:
        seen: list[ChainEvent] = []
        async with ChainClient(url) as client:
            async for event in client.events(from_height):
                seen.append(event)
                if until(seen):
                    return seen
        return seen

    return asyncio.run(asyncio.wait_for(follow(), timeout))


def positions(events: list[ChainEvent]) -> list[tuple[int, int]]:
    return [(event.height, event.index) for event in events]
