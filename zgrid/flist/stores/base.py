"""The interface every block store implements."""

from __future__ import annotations

from typing import Protocol

__all__ = ["BlockStore"]


class BlockStore(Protocol):
    """A place that keeps blocks by id.

    ``url`` is the store's address without any password, as written into a published flist.
    """

    url: str
    read_only: bool

    async def get(self, id_: bytes) -> bytes | None:
        """The block's bytes, or None when the store does not have it."""
        ...

    async def set(self, id_: bytes, data: bytes) -> None:
        """Keep ``data`` under ``id_``; keeping a block that is already there is a no-op."""
        ...

    async def has(self, id_: bytes) -> bool: ...

    async def close(self) -> None: ...
