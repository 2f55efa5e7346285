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


def _prepare_target(target: Path) -> tuple[int, list[Path]]:
    """The target's descriptor, and the directories made for it (to remove on failure)."""
    made: list[Path] = []
    missing = target
    while not missing.exists() and missing != missing.parent:
        made.append(missing)
        missing = missing.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, _DIR_FLAGS)
    except OSError as exc:
        _remove_made_dirs(made)
        raise FlistError(f"cannot use {target} as the target: {exc.strerror}") from exc
    try:
        empty = not os.listdir(fd)
    except OSError as exc:
        os.close(fd)
        raise FlistError(f"cannot list {target}: {exc.strerror}") from exc
    if not empty:
        os.close(fd)
        raise FlistError(f"{target} is not empty; unpack into a new or empty directory")
    return fd, made


def _remove_made_dirs(made: list[Path]) -> None:
    for directory in made:  # deepest first
        with contextlib.suppress(OSError):
            directory.rmdir()


def _remove_tree_at(dir_fd: int, name: str) -> None:
    """Remove ``name`` under ``dir_fd`` and all below it, following no symlink, even in
    directories whose mode was already made read-only."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        os.fchmod(fd, 0o700)
        for child in os.listdir(fd):
            _remove_tree_at(fd, child)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


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
    allow_devices: bool = False,
    allow_setuid: bool = False,
) -> UnpackReport:
    """Recreate the flist's tree under ``target`` (a new or empty directory).

    Device nodes and setuid/setgid files are refused unless allowed (devices need root
    as well): a node unpacking a user's image must not make them. On failure everything
    this call created is removed again (and ``target`` itself when it made it), so the
    same unpack can be tried again.
    """
    as_root = os.geteuid() == 0
    if allow_devices and not as_root:
        raise FlistError("only root can make device nodes; unpack as root or without devices")
    with FlistReader(flist) as reader:
        tree = check_tree(reader, allow_devices=allow_devices, allow_setuid=allow_setuid)
        report = UnpackReport(target=target, inodes=len(tree.entries))
        root_fd, made_dirs = _prepare_target(target)
        target_mode = stat.S_IMODE(os.fstat(root_fd).st_mode)
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
            _clean_up(root_fd, made_dirs, target_mode)
            raise FlistError(f"cannot unpack into {target}: {exc}") from exc
        except BaseException:
            _clean_up(root_fd, made_dirs, target_mode)
            raise
        finally:
            with contextlib.suppress(OSError):
                os.close(root_fd)
    return report


def _clean_up(root_fd: int, made_dirs: list[Path], target_mode: int) -> None:
    """Remove what a failed unpack made: the target was empty, so all it holds is ours."""
    with contextlib.suppress(OSError):
        os.fchmod(root_fd, 0o700)
        for name in os.listdir(root_fd):
            with contextlib.suppress(OSError):
                _remove_tree_at(root_fd, name)
        os.fchmod(root_fd, target_mode)
    _remove_made_dirs(made_dirs)
