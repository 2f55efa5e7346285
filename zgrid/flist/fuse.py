"""The FUSE operations of a mounted flist: metadata from the .fl, data through a fetcher."""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pyfuse3

from zgrid.flist.block import BLOCK_SIZE
from zgrid.flist.fetch import BlockFetcher
from zgrid.flist.meta import FlistReader, Inode

__all__ = ["FlistOperations"]

_TIMEOUT = 3600.0  # nothing in an flist changes while it is mounted


_Op = TypeVar("_Op", bound=Callable[..., Awaitable[Any]])


def _guarded(operation: _Op) -> _Op:
    """Answer every failure with an errno: pyfuse3 leaves a request unanswered (and the
    caller hung) when an operation raises anything but FUSEError."""

    @functools.wraps(operation)
    async def guarded(*args: Any) -> Any:
        try:
            return await operation(*args)
        except pyfuse3.FUSEError:
            raise
        except Exception as exc:
            print(f"zgrid flist mount: {operation.__name__}: {exc}", file=sys.stderr, flush=True)
            raise pyfuse3.FUSEError(errno.EIO) from exc

    return guarded  # type: ignore[return-value]


class FlistOperations(pyfuse3.Operations):
    def __init__(self, reader: FlistReader, fetcher: BlockFetcher) -> None:
        super().__init__()
        self._reader = reader
        self._fetcher = fetcher
        self._dirs: dict[int, list[Inode]] = {}
        self._files: dict[int, tuple[Inode, list[tuple[bytes, bytes]]]] = {}
        self._next_fh = 1

    def _inode(self, ino: int) -> Inode:
        inode = self._reader.inode(ino)
        if inode is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return inode

    @staticmethod
    def _attributes(inode: Inode) -> pyfuse3.EntryAttributes:
        attrs = pyfuse3.EntryAttributes()
        attrs.st_ino = inode.ino
        attrs.st_mode = inode.mode
        attrs.st_nlink = 2 if inode.is_dir else 1
        attrs.st_uid = inode.uid
        attrs.st_gid = inode.gid
        attrs.st_rdev = inode.rdev
        attrs.st_size = inode.size
        attrs.st_blksize = 4096
        attrs.st_blocks = -(-inode.size // 512)
        attrs.st_atime_ns = attrs.st_mtime_ns = inode.mtime * 1_000_000_000
        attrs.st_ctime_ns = inode.ctime * 1_000_000_000
        attrs.entry_timeout = attrs.attr_timeout = _TIMEOUT
        return attrs

    def _handle(self) -> int:
        self._next_fh += 1
        return self._next_fh

    @_guarded
    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        if name == b".":
            return self._attributes(self._inode(parent_inode))
        if name == b"..":
            parent = self._inode(parent_inode)
            return self._attributes(self._inode(parent.parent or parent.ino))
        try:
            text = name.decode()
        except UnicodeDecodeError:
            raise pyfuse3.FUSEError(errno.ENOENT) from None  # an flist holds UTF-8 names only
        found = self._reader.lookup(parent_inode, text)
        if found is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self._attributes(found)

    @_guarded
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return self._attributes(self._inode(inode))

    @_guarded
    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        target = self._reader.extra(inode)
        if target is None:
            raise pyfuse3.FUSEError(errno.EINVAL)
        return target

    @_guarded
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        fh = self._handle()
        self._dirs[fh] = self._reader.children(inode)
        return fh

    @_guarded
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        children = self._dirs.get(fh, [])
        for index in range(start_id, len(children)):
            child = children[index]
            if not pyfuse3.readdir_reply(
                token, os.fsencode(child.name), self._attributes(child), index + 1
            ):
                return

    async def releasedir(self, fh: int) -> None:
        self._dirs.pop(fh, None)

    @_guarded
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND):
            raise pyfuse3.FUSEError(errno.EROFS)
        found = self._inode(inode)
        if not found.is_file:
            raise pyfuse3.FUSEError(errno.EINVAL)
        fh = self._handle()
        self._files[fh] = (found, self._reader.blocks(inode))
        return pyfuse3.FileInfo(fh=fh, keep_cache=True)

    @_guarded
    async def read(self, fh: int, off: int, size: int) -> bytes:
        inode, blocks = self._files[fh]
        end = min(off + size, inode.size)
        parts: list[bytes] = []
        position = off
        while position < end:
            index, start = divmod(position, BLOCK_SIZE)
            if index >= len(blocks):
                break
            chunk = await self._fetcher.chunk(*blocks[index])  # failures: EIO by _guarded
            piece = chunk[start : start + (end - position)]
            if not piece:
                break
            parts.append(piece)
            position += len(piece)
        return b"".join(parts)

    async def release(self, fh: int) -> None:
        self._files.pop(fh, None)

    @_guarded
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        data = pyfuse3.StatvfsData()
        data.f_bsize = data.f_frsize = 4096
        data.f_files = self._reader.count()
        data.f_namemax = 255
        return data
