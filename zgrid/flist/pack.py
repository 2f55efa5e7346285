"""Packing a tree into a .fl file and its blocks, several files and uploads at a time."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from zgrid.canonical import blake2b256
from zgrid.flist.block import BLOCK_SIZE, block_id, seal_chunk
from zgrid.flist.errors import FlistError
from zgrid.flist.meta import FlistWriter
from zgrid.flist.stores import Router
from zgrid.flist.tree import TreeEntry, walk_directory

__all__ = ["PackReport", "pack_directory", "pack_entries"]

PackProgress = Callable[[int], None]


@dataclass(slots=True)
class PackReport:
    path: Path
    inodes: int = 0
    files: int = 0
    bytes: int = 0
    blocks: int = 0
    unique_blocks: int = 0
    tags: dict[str, str] = field(default_factory=dict)


class _BlockWriter:
    """Encodes chunks (in worker threads) and uploads each distinct block once, at most
    ``uploads`` at a time, as tasks of ``group``: a failed upload cancels the pack."""

    def __init__(self, router: Router, *, uploads: int, group: asyncio.TaskGroup) -> None:
        self._router = router
        self._by_key: dict[bytes, bytes] = {}  # key -> id of chunks already encoded
        self._uploads = asyncio.Semaphore(uploads)
        self._group = group

    def _read_encode(self, handle: BinaryIO) -> tuple[bytes, bytes, bytes | None, int] | None:
        chunk = handle.read(BLOCK_SIZE)
        if not chunk:
            return None
        key = blake2b256(chunk)
        known = self._by_key.get(key)
        if known is not None:
            return known, key, None, len(chunk)  # a chunk seen before: not sealed again
        data = seal_chunk(chunk, key)
        return block_id(data), key, data, len(chunk)

    async def _upload(self, id_: bytes, data: bytes) -> None:
        try:
            await self._router.set(id_, data)
        finally:
            self._uploads.release()

    async def write_file(
        self, source: Path, on_progress: PackProgress | None
    ) -> tuple[list[tuple[bytes, bytes]], int]:
        """The (id, key) list of the file's blocks and the number of bytes read."""
        blocks: list[tuple[bytes, bytes]] = []
        size = 0
        try:
            handle = await asyncio.to_thread(open, source, "rb")
        except OSError as exc:
            raise FlistError(f"cannot read {source}: {exc.strerror}") from exc
        try:
            while True:
                try:
                    encoded = await asyncio.to_thread(self._read_encode, handle)
                except OSError as exc:
                    raise FlistError(f"cannot read {source}: {exc.strerror}") from exc
                if encoded is None:
                    break
                id_, key, data, length = encoded
                blocks.append((id_, key))
                size += length
                if data is not None and key not in self._by_key:
                    self._by_key[key] = id_
                    await self._uploads.acquire()
                    self._group.create_task(self._upload(id_, data))
                if on_progress is not None:
                    on_progress(length)
        finally:
            handle.close()
        return blocks, size

    @property
    def unique_blocks(self) -> int:
        return len(self._by_key)


def _add_inode(writer: FlistWriter, entry: TreeEntry, inos: dict[str, int]) -> int:
    parent = 0
    if entry.path:
        found = inos.get(entry.parent)
        if found is None:
            raise FlistError(f"{entry.path}: its parent directory is not in the tree")
        parent = found
    ino = writer.add_inode(
        parent=parent,
        name=entry.name,
        size=entry.size,
        uid=entry.uid,
        gid=entry.gid,
        mode=entry.mode,
        rdev=entry.rdev,
        ctime=entry.ctime,
        mtime=entry.mtime,
    )
    if entry.target is not None:
        writer.set_extra(ino, entry.target)
    inos[entry.path] = ino
    return ino


def _finish(writer: FlistWriter, router: Router, tags: Mapping[str, str]) -> None:
    for route in router.routes():
        writer.add_route(route)
    for key, value in tags.items():
        writer.set_tag(key, value)
    writer.close()


async def pack_entries(
    entries: Iterable[TreeEntry],
    output: Path,
    router: Router,
    *,
    tags: Mapping[str, str] | None = None,
    on_progress: PackProgress | None = None,
    parallel: int = 8,
) -> PackReport:
    """Write the flist of ``entries`` (parents first) to ``output``, its blocks to ``router``."""
    writer = FlistWriter(output)
    report = PackReport(path=output, tags=dict(tags or {}))
    files = asyncio.Semaphore(parallel)
    inos: dict[str, int] = {}
    packed: dict[int, tuple[list[tuple[bytes, bytes]], int]] = {}  # ino -> blocks, size
    links: list[tuple[int, int]] = []

    async def pack_file(blocks_writer: _BlockWriter, ino: int, entry: TreeEntry) -> None:
        try:
            assert entry.source is not None
            blocks, size = await blocks_writer.write_file(entry.source, on_progress)
            packed[ino] = (blocks, size)
            writer.add_blocks(ino, blocks)
            if size != entry.size:
                writer.set_size(ino, size)  # the file changed since it was listed
            report.bytes += size
            report.blocks += len(blocks)
        finally:
            files.release()

    try:
        # Two task groups: the uploads outlive the files that made them; a failure in
        # either cancels everything still running before it is raised.
        async with asyncio.TaskGroup() as uploads:
            blocks_writer = _BlockWriter(router, uploads=parallel * 4, group=uploads)
            async with asyncio.TaskGroup() as file_tasks:
                for entry in entries:
                    ino = _add_inode(writer, entry, inos)
                    report.inodes += 1
                    if not stat.S_ISREG(entry.mode):
                        continue
                    report.files += 1
                    if entry.link is not None:
                        target = inos.get(entry.link)
                        if target is None:
                            raise FlistError(
                                f"{entry.path}: hardlink to {entry.link}, which is not packed"
                            )
                        links.append((ino, target))
                    elif entry.source is not None:
                        await files.acquire()
                        file_tasks.create_task(pack_file(blocks_writer, ino, entry))
        for ino, target in links:
            # rfs knows no hardlinks: give every name the blocks so it reads the same data.
            blocks, size = packed.get(target, ([], 0))
            writer.add_link(ino, target)
            writer.add_blocks(ino, blocks)
            writer.set_size(ino, size)
        _finish(writer, router, report.tags)
    except BaseExceptionGroup as failed:
        writer.abort()
        raise _first(failed) from None
    except BaseException:
        writer.abort()
        raise
    report.unique_blocks = blocks_writer.unique_blocks
    return report


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The failure to report from a task group: the first, unwrapped from nested groups."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


async def pack_directory(
    source: Path,
    output: Path,
    router: Router,
    *,
    tags: Mapping[str, str] | None = None,
    on_progress: PackProgress | None = None,
    parallel: int = 8,
) -> PackReport:
    return await pack_entries(
        walk_directory(source),
        output,
        router,
        tags=tags,
        on_progress=on_progress,
        parallel=parallel,
    )
