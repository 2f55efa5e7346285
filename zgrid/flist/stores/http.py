"""A read-only block store over HTTP(S): ``<url>/<hex[0:2]>/<hex>``, as a hub or any web
server in front of a directory store serves it."""

from __future__ import annotations

import httpx

from zgrid.flist.block import MAX_BLOCK_DATA
from zgrid.flist.errors import StoreError

__all__ = ["HttpStore"]


class HttpStore:
    read_only = True

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout)

    async def get(self, id_: bytes) -> bytes | None:
        name = id_.hex()
        try:
            found = await self._fetch(f"{self.url}/{name[:2]}/{name}")
            if found is None:
                found = await self._fetch(f"{self.url}/{name}")
        except httpx.HTTPError as exc:
            raise StoreError(f"{self.url}: cannot fetch block {name}: {exc}") from exc
        return found

    async def _fetch(self, url: str) -> bytes | None:
        async with self._client.stream("GET", url) as response:
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise StoreError(f"{url}: HTTP {response.status_code}")
            body = bytearray()
            async for piece in response.aiter_bytes():
                body += piece
                if len(body) > MAX_BLOCK_DATA:  # no block is this big: do not keep reading
                    raise StoreError(f"{url}: answer larger than any block")
            return bytes(body)

    async def has(self, id_: bytes) -> bool:
        return await self.get(id_) is not None

    async def set(self, id_: bytes, data: bytes) -> None:
        raise StoreError(f"{self.url}: an http store is read-only")

    async def close(self) -> None:
        await self._client.aclose()
