"""A block store in a Zero-DB namespace (zgrid's zdb or any 0-db): key = the 32 raw id bytes."""

from __future__ import annotations

import asyncio
import contextlib

from zgrid.flist.errors import StoreError
from zgrid.zdb import ClientError, CommandError, ZdbClient

__all__ = ["ZdbStore"]


class ZdbStore:
    read_only = False

    def __init__(
        self, *, host: str, port: int, namespace: str | None, password: str | None, url: str
    ) -> None:
        self.host = host
        self.port = port
        self.namespace = namespace
        self.password = password
        self.url = url
        self._client: ZdbClient | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> ZdbClient:
        # One pipelined connection carries every request; it is remade after a loss.
        async with self._lock:
            if self._client is None:
                namespace = self.namespace if self.namespace not in (None, "default") else None
                try:
                    self._client = await ZdbClient.connect(
                        self.host, self.port, namespace=namespace, password=self.password
                    )
                except ClientError as exc:
                    raise StoreError(f"{self.url}: {exc}") from exc
            return self._client

    async def _execute(self, *args: bytes | str) -> object:
        client = await self._connected()
        try:
            return await client.execute(*args)
        except CommandError as exc:  # an error reply: the connection is fine
            raise StoreError(f"{self.url}: {exc}") from exc
        except ClientError as exc:
            # Anything else the client raises may have left the connection unusable (lost,
            # or out of step with its replies): make a new one for the next request.
            await self._drop(client)
            raise StoreError(f"{self.url}: {exc}") from exc

    async def _drop(self, client: ZdbClient) -> None:
        async with self._lock:
            if self._client is client:
                self._client = None
        with contextlib.suppress(ClientError, OSError):
            await client.close()

    async def get(self, id_: bytes) -> bytes | None:
        reply = await self._execute("GET", id_)
        return reply if isinstance(reply, bytes) and reply else None

    async def has(self, id_: bytes) -> bool:
        return bool(await self._execute("EXISTS", id_))

    async def set(self, id_: bytes, data: bytes) -> None:
        if not await self.has(id_):
            await self._execute("SET", id_, data)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
