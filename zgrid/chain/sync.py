"""SyncChainClient: the blocking form of ChainClient, generated from it.

Each coroutine method of :class:`ChainClient` becomes a blocking call run on a
private event loop thread, and each async iterator a plain iterator; nothing is
written twice.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator
from typing import Any, TypeVar

from zgrid.chain.client import ChainClient

__all__ = ["SyncChainClient"]

T = TypeVar("T")


class SyncChainClient:
    """``SyncChainClient(url, identity=...)`` has every method of ChainClient, blocking."""

    def __init__(self, url: str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="chain-client", daemon=True
        )
        self._thread.start()

        async def make() -> ChainClient:
            return ChainClient(url, **options)

        self._client = self._run(make())

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    yield self._run(_await(iterator.__anext__()))
                except StopAsyncIteration:
                    return
        finally:
            closer = getattr(iterator, "aclose", None)
            if closer is not None and self._loop.is_running():
                self._run(closer())

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if inspect.iscoroutinefunction(attribute):
            return lambda *args, **kwargs: self._run(attribute(*args, **kwargs))
        if inspect.isasyncgenfunction(attribute):
            return lambda *args, **kwargs: self._iterate(attribute(*args, **kwargs))
        return attribute

    def __enter__(self) -> SyncChainClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._client.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable
