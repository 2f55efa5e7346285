"""A block store in a local directory: ``<root>/<hex[0:2]>/<hex>``.

Blocks are written durably (fsync, rename, fsync of the directory) and checked against
their id before they are trusted: a torn or damaged file under a valid id is removed, so
it reads as missing and is fetched or written again.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from zgrid.atomic import replace_durably, temporary_beside
from zgrid.flist.block import block_id
from zgrid.flist.errors import StoreError

__all__ = ["DirStore"]

_MAX_VERIFIED = 1 << 20  # ids remembered as checked; past it the memory starts over


class DirStore:
    read_only = False

    def __init__(self, root: Path, *, sync: bool = True) -> None:
        self.root = root
        self.url = f"dir://{root}"
        self.sync = sync
        self._made: set[str] = set()  # fan-out folders known to exist
        self._verified: set[bytes] = set()  # ids whose file this process checked or wrote

    def path_of(self, id_: bytes) -> Path:
        name = id_.hex()
        return self.root / name[:2] / name

    def _remember(self, id_: bytes) -> None:
        if len(self._verified) >= _MAX_VERIFIED:
            self._verified.clear()
        self._verified.add(id_)

    def _read(self, id_: bytes) -> bytes | None:
        path = self.path_of(id_)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self._verified.discard(id_)
            return None
        except OSError as exc:
            raise StoreError(f"{self.url}: cannot read block {id_.hex()}: {exc}") from exc
        if block_id(data) != id_:
            # Torn by a crash or damaged on disk: gone, so that it is fetched again.
            self._verified.discard(id_)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        self._remember(id_)
        return data

    def _has(self, id_: bytes) -> bool:
        if id_ in self._verified:
            if self.path_of(id_).exists():
                return True
            self._verified.discard(id_)
            return False
        return self._read(id_) is not None

    def _write(self, id_: bytes, data: bytes) -> None:
        if self._has(id_):
            return
        path = self.path_of(id_)
        tmp = temporary_beside(path)
        try:
            if path.parent.name not in self._made:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._made.add(path.parent.name)
            with open(tmp, "wb") as handle:
                handle.write(data)
            replace_durably(tmp, path, sync=self.sync)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StoreError(f"{self.url}: cannot write block {id_.hex()}: {exc}") from exc
        if block_id(data) == id_:
            self._remember(id_)

    async def get(self, id_: bytes) -> bytes | None:
        return await asyncio.to_thread(self._read, id_)

    async def set(self, id_: bytes, data: bytes) -> None:
        await asyncio.to_thread(self._write, id_, data)

    async def has(self, id_: bytes) -> bool:
        return await asyncio.to_thread(self._has, id_)

    async def close(self) -> None:
        return None
