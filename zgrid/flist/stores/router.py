"""Routing blocks over stores by the first byte of their id.

Every store whose range covers a block gets each write (replication); reads try them in
turn and skip a store that fails or answers with bytes that are not the block.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

from zgrid.flist.block import block_id
from zgrid.flist.errors import BlockNotFound, StoreError, StoreUrlError
from zgrid.flist.meta import Route
from zgrid.flist.stores.base import BlockStore
from zgrid.flist.stores.url import open_store, public_url

__all__ = ["Route", "Router", "parse_route"]

_RANGE = re.compile(r"^([0-9a-fA-F]{2})-([0-9a-fA-F]{2})=(.+)$")


def parse_route(spec: str) -> Route:
    """``[xx-yy=]url`` as rfs spells it: hex bounds of the id's first byte, both inclusive."""
    match = _RANGE.match(spec)
    if match is None:
        return Route(0, 255, spec)
    start, end = int(match[1], 16), int(match[2], 16)
    if start > end:
        raise StoreUrlError(f"bad store range in {spec!r}: {match[1]} is after {match[2]}")
    return Route(start, end, match[3])


@dataclass(frozen=True, slots=True)
class _Leg:
    start: int
    end: int
    store: BlockStore


class Router:
    def __init__(self, legs: Sequence[tuple[int, int, BlockStore]]) -> None:
        if not legs:
            raise StoreUrlError("no block store given")
        self._legs = [_Leg(start, end, store) for start, end, store in legs]

    @classmethod
    def from_routes(cls, routes: Sequence[Route]) -> Router:
        return cls([(route.start, route.end, open_store(route.url)) for route in routes])

    def routes(self) -> list[Route]:
        """The routes to write into an flist, passwords removed."""
        return [Route(leg.start, leg.end, public_url(leg.store.url)) for leg in self._legs]

    def _stores(self, id_: bytes) -> list[BlockStore]:
        stores = [leg.store for leg in self._legs if leg.start <= id_[0] <= leg.end]
        if not stores:
            raise BlockNotFound(f"no store is routed for block {id_.hex()}")
        return stores

    async def get(self, id_: bytes) -> bytes:
        failures: list[str] = []
        for store in self._stores(id_):
            try:
                data = await store.get(id_)
            except StoreError as exc:
                failures.append(str(exc))
                continue
            if data is None:
                failures.append(f"{store.url}: not found")
            elif block_id(data) != id_:
                failures.append(f"{store.url}: returned bytes that are not the block")
            else:
                return data
        raise BlockNotFound(f"block {id_.hex()} is in no store ({'; '.join(failures)})")

    async def set(self, id_: bytes, data: bytes) -> None:
        await asyncio.gather(*(store.set(id_, data) for store in self._stores(id_)))

    async def close(self) -> None:
        for leg in self._legs:
            await leg.store.close()
