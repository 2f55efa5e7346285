"""Fetching blocks for reads: a shared on-disk cache of verified blocks, a small in-memory
cache of decoded chunks, and one fetch per block however many readers ask for it."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from pathlib import Path

from zgrid.atomic import replace_durably, temporary_beside
from zgrid.flist.block import block_id, open_block
from zgrid.flist.stores import Router

__all__ = ["BlockFetcher"]


def _retrieve(task: asyncio.Task[bytes]) -> None:
    if not task.cancelled():
        task.exception()


class BlockFetcher:
    """Plain chunks by (id, key).

    The disk cache (``<cache>/<hex[0:2]>/<hex>``) keeps blocks as stored, encrypted and
    checked against their id, so several flists and mounts can share it safely: a chunk is
    decoded and checked against its key on every use.
    """

    def __init__(
        self, router: Router, *, cache: Path | None = None, memory_blocks: int = 64
    ) -> None:
        self._router = router
        self._cache = cache
        self._memory: OrderedDict[bytes, bytes] = OrderedDict()
        self._memory_blocks = memory_blocks
        self._inflight: dict[bytes, asyncio.Task[bytes]] = {}
        self.fetched = 0  # blocks that came from a store, not a cache

    def _cache_path(self, id_: bytes) -> Path | None:
        if self._cache is None:
            return None
        name = id_.hex()
        return self._cache / name[:2] / name

    def _read_cached(self, id_: bytes) -> bytes | None:
        path = self._cache_path(id_)
        if path is None:
            return None
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if block_id(data) != id_:
            with contextlib.suppress(OSError):
                path.unlink()  # a damaged cache entry is fetched again
            return None
        return data

    def _write_cached(self, id_: bytes, data: bytes) -> None:
        path = self._cache_path(id_)
        if path is None:
            return
        tmp = temporary_beside(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            # Not synced: a cache entry torn by a crash fails its id check and is fetched again.
            replace_durably(tmp, path, sync=False)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()  # a cache that cannot be written only costs speed

    async def _load(self, id_: bytes, key: bytes) -> bytes:
        data = await asyncio.to_thread(self._read_cached, id_)
        if data is None:
            data = await self._router.get(id_)
            self.fetched += 1
            await asyncio.to_thread(self._write_cached, id_, data)
        # The cache and the router both checked the id already; the key is checked here.
        return await asyncio.to_thread(open_block, key, data)

    async def chunk(self, id_: bytes, key: bytes) -> bytes:
        cache_key = id_ + key
        chunk = self._memory.get(cache_key)
        if chunk is not None:
            self._memory.move_to_end(cache_key)
            return chunk
        task = self._inflight.get(cache_key)
        if task is None:
            # The load is a task of its own: a reader that gives up (is cancelled) does not
            # cancel it for the others waiting on the same block.
            task = asyncio.create_task(self._load_and_keep(cache_key, id_, key))
            self._inflight[cache_key] = task
            task.add_done_callback(_retrieve)  # its error is the waiters' to see, or nobody's
        return await asyncio.shield(task)

    async def _load_and_keep(self, cache_key: bytes, id_: bytes, key: bytes) -> bytes:
        try:
            chunk = await self._load(id_, key)
        finally:
            del self._inflight[cache_key]
        self._memory[cache_key] = chunk
        while len(self._memory) > self._memory_blocks:
            self._memory.popitem(last=False)
        return chunk

    async def close(self) -> None:
        await self._router.close()
