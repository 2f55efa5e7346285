"""A block store in a local directory: ``<root>/<hex[0:2]>/<hex>``."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from zgrid.flist.errors import StoreError

__all__ = ["DirStore"]


class DirStore:
    read_only = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"dir://{root}"
        self._made: set[str] = set()  # fan-out folders known to exist

    def path_of(self, id_: bytes) -> Path:
        name = id_.hex()
        return self.root / name[:2] / name

    def _read(self, id_: bytes) -> bytes | None:
        try:
            return self.path_of(id_).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"{self.url}: cannot read block {id_.hex()}: {exc}") from exc

    def _write(self, id_: bytes, data: bytes) -> None:
        path = self.path_of(id_)
        if path.exists():
            return
        # Write aside and rename, so a reader never sees half a block and a crash leaves
        # at worst a stray temporary file, never a short block under a valid id.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}")
        try:
            if path.parent.name not in self._made:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._made.add(path.parent.name)
            with open(tmp, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StoreError(f"{self.url}: cannot write block {id_.hex()}: {exc}") from exc

    async def get(self, id_: bytes) -> bytes | None:
        return await asyncio.to_thread(self._read, id_)

    async def set(self, id_: bytes, data: bytes) -> None:
        await asyncio.to_thread(self._write, id_, data)

    async def has(self, id_: bytes) -> bool:
        return self.path_of(id_).exists()

    async def close(self) -> None:
        return None
