"""Fetching blocks for reads: a shared on-disk cache of verified blocks, a small in-memory
cache of decoded chunks, and one fetch per block however many readers ask for it."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import OrderedDict
from pathlib import Path

from zgrid.flist.block import block_id, decode_block
from zgrid.flist.errors import StoreError
from zgrid.flist.stores import Router

__all__ = ["BlockFetcher"]


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
        self._inflight: dict[bytes, asyncio.Future[bytes]] = {}
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
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()  # a cache that cannot be written only costs speed

    async def _load(self, id_: bytes, key: bytes) -> bytes:
        data = await asyncio.to_thread(self._read_cached, id_)
        if data is None:
            data = await self._router.get(id_)
            self.fetched += 1
            await asyncio.to_thread(self._write_cached, id_, data)
        return await asyncio.to_thread(decode_block, id_, key, data)

    async def chunk(self, id_: bytes, key: bytes) -> bytes:
        cache_key = id_ + key
        chunk = self._memory.get(cache_key)
        if chunk is not None:
            self._memory.move_to_end(cache_key)
            return chunk
        pending = self._inflight.get(cache_key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[cache_key] = future
        try:
            chunk = await self._load(id_, key)
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else StoreError("cancelled"))
            future.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            del self._inflight[cache_key]
        future.set_result(chunk)
        self._memory[cache_key] = chunk
        while len(self._memory) > self._memory_blocks:
            self._memory.popitem(last=False)
        return chunk

    async def close(self) -> None:
        await self._router.close()
