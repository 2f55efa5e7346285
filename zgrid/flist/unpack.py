"""Unpacking a .fl into a directory: the same tree, modes, owners and times as was packed.

The metadata is checked first (:mod:`zgrid.flist.safety`), so a hostile flist is refused
before anything is written; every path is then made relative to the target's own file
descriptor without following symlinks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zgrid.flist.block import BLOCK_SIZE
from zgrid.flist.errors import FlistError, FormatError
from zgrid.flist.fetch import BlockFetcher
from zgrid.flist.meta import FlistReader, Inode
from zgrid.flist.safety import check_tree

__all__ = ["UnpackReport", "unpack"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(slots=True)
class UnpackReport:
    target: Path
    inodes: int = 0
    files: int = 0
    bytes: int = 0
    skipped: int = 0  # sockets: nothing to make of them


def _prepare_target(target: Path) -> int:
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, _DIR_FLAGS)
    except OSError as exc:
        raise FlistError(f"cannot use {target} as the target: {exc.strerror}") from exc
    try:
        empty = not os.listdir(fd)
    except OSError as exc:
        os.close(fd)
        raise FlistError(f"cannot list {target}: {exc.strerror}") from exc
    if not empty:
        os.close(fd)
        raise FlistError(f"{target} is not empty; unpack into a new or empty directory")
    return fd


class _Unpacker:
    def __init__(self, root_fd: int, *, as_root: bool) -> None:
        self.root_fd = root_fd
        self.as_root = as_root

    def open_dir(self, path: str) -> int:
        return os.open(path or ".", _DIR_FLAGS, dir_fd=self.root_fd)

    def make(self, path: str, inode: Inode, target: bytes | None) -> bool:
        """Create one non-regular entry; False when it is skipped."""
        parent, _, name = path.rpartition("/")
        fd = self.open_dir(parent)
        try:
            kind = stat.S_IFMT(inode.mode)
            if kind == stat.S_IFDIR:
                os.mkdir(name, 0o700, dir_fd=fd)
            elif kind == stat.S_IFLNK:
                assert target is not None
                os.symlink(target, name, dir_fd=fd)
            elif kind in (stat.S_IFCHR, stat.S_IFBLK):
                os.mknod(name, kind | 0o600, inode.rdev, dir_fd=fd)
            elif kind == stat.S_IFIFO:
                os.mkfifo(name, 0o600, dir_fd=fd)
            else:
                return False
        finally:
            os.close(fd)
        return True

    def finish(self, path: str, inode: Inode) -> None:
        """Owner, mode and mtime, once the entry's content is complete."""
        parent, _, name = path.rpartition("/")
        fd = self.open_dir(parent)
        try:
            target = name or "."
            if self.as_root:
                os.chown(target, inode.uid, inode.gid, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISLNK(inode.mode):
                os.chmod(target, stat.S_IMODE(inode.mode), dir_fd=fd)
            times = (inode.mtime * 1_000_000_000, inode.mtime * 1_000_000_000)
            os.utime(target, ns=times, dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(fd)

    def link(self, path: str, existing: str) -> None:
        parent, _, name = path.rpartition("/")
        fd = self.open_dir(parent)
        try:
            os.link(existing, name, src_dir_fd=self.root_fd, dst_dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(fd)

    def create_file(self, path: str) -> int:
        parent, _, name = path.rpartition("/")
        fd = self.open_dir(parent)
        try:
            return os.open(name, _FILE_FLAGS, 0o600, dir_fd=fd)
        finally:
            os.close(fd)


async def _write_file(
    unpacker: _Unpacker,
    reader: FlistReader,
    fetcher: BlockFetcher,
    *,
    path: str,
    inode: Inode,
    on_progress: Callable[[int], None] | None,
) -> None:
    # Every call on the target's descriptors runs here, in the loop's thread, never in a
    # worker thread that could outlive a cancelled unpack and its closed descriptors.
    fd = unpacker.create_file(path)
    try:
        remaining = inode.size
        for id_, key in reader.blocks(inode.ino):
            chunk = await fetcher.chunk(id_, key)
            if len(chunk) != min(BLOCK_SIZE, remaining):
                raise FormatError(f"{path}: a block holds {len(chunk)} bytes, not {BLOCK_SIZE}")
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
            remaining -= len(chunk)
            if on_progress is not None:
                on_progress(len(chunk))
        if remaining:
            raise FormatError(f"{path}: its blocks hold {remaining} bytes less than its size")
    finally:
        os.close(fd)


async def unpack(
    flist: Path,
    target: Path,
    fetcher: BlockFetcher,
    *,
    on_progress: Callable[[int], None] | None = None,
    parallel: int = 8,
) -> UnpackReport:
    """Recreate the flist's tree under ``target`` (a new or empty directory)."""
    as_root = os.geteuid() == 0
    with FlistReader(flist) as reader:
        tree = check_tree(reader, allow_devices=as_root)
        report = UnpackReport(target=target, inodes=len(tree.entries))
        root_fd = _prepare_target(target)
        unpacker = _Unpacker(root_fd, as_root=as_root)
        paths = {inode.ino: path for path, inode in tree.entries}
        try:
            made: list[tuple[str, Inode]] = []
            files: list[tuple[str, Inode]] = []
            for path, inode in tree.entries[1:]:
                if inode.is_file:
                    files.append((path, inode))
                elif unpacker.make(path, inode, reader.extra(inode.ino)):
                    made.append((path, inode))
                else:
                    report.skipped += 1
            slots = asyncio.Semaphore(parallel)

            async def one(path: str, inode: Inode) -> None:
                async with slots:
                    await _write_file(
                        unpacker, reader, fetcher, path=path, inode=inode, on_progress=on_progress
                    )

            # A task group: when one file fails, the others are cancelled before the
            # descriptors they use are closed below.
            try:
                async with asyncio.TaskGroup() as group:
                    for path, inode in files:
                        if inode.ino not in tree.links:
                            group.create_task(one(path, inode))
            except BaseExceptionGroup as failed:
                raise failed.exceptions[0] from failed  # the first failure is the one to report
            for path, inode in files:
                if inode.ino in tree.links:
                    unpacker.link(path, paths[tree.links[inode.ino]])
                else:
                    unpacker.finish(path, inode)
                    report.bytes += inode.size
                report.files += 1
            # Directories last and deepest first: making their entries changed their mtime.
            for path, inode in reversed([*tree.entries[:1], *made]):
                unpacker.finish(path, inode)
        except OSError as exc:
            raise FlistError(f"cannot unpack into {target}: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                os.close(root_fd)
    return report
