"""Checking an flist's metadata before anything is written or mounted from it.

An flist comes from someone else. :func:`check_tree` walks it from the root and refuses
names that are not one path component, parent loops, children of non-directories,
relative symlinks that climb above the root, sizes its blocks cannot hold, and (unless
allowed) device nodes.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

from zgrid.flist.block import BLOCK_SIZE
from zgrid.flist.errors import UnsafeFlist
from zgrid.flist.meta import ROOT_INO, FlistReader, Inode

__all__ = ["CheckedTree", "check_tree"]

MAX_NAME = 255
MAX_TARGET = 4096
MAX_PATH = 4095  # PATH_MAX less the NUL: deeper trees cannot be made, and cost memory
MAX_TIME = 1 << 40  # seconds either side of 1970; times go to the kernel in nanoseconds
MAX_RDEV = 1 << 32
_TYPES = {stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO}
_TYPES.add(stat.S_IFSOCK)


@dataclass(frozen=True, slots=True)
class CheckedTree:
    """Inodes in an order where parents come first, each with its relative path."""

    entries: list[tuple[str, Inode]]
    links: dict[int, int]


def _check_name(inode: Inode) -> None:
    name = inode.name
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise UnsafeFlist(f"inode {inode.ino} has the name {name!r}, which is not a file name")
    if len(name.encode()) > MAX_NAME:
        raise UnsafeFlist(f"inode {inode.ino} has a name longer than {MAX_NAME} bytes")


def _check_target(path: str, target: bytes) -> None:
    if not target or len(target) > MAX_TARGET or b"\0" in target:
        raise UnsafeFlist(f"{path}: symlink target is empty, too long or contains NUL")
    if target.startswith(b"/"):
        return  # absolute targets name a path of this tree when it is a root filesystem
    depth = path.count("/")  # components of the directory holding the link
    for part in target.split(b"/"):
        if part == b"..":
            depth -= 1
            if depth < 0:
                shown = target.decode(errors="replace")
                raise UnsafeFlist(f"{path}: symlink points outside the tree ({shown})")
        elif part not in (b"", b"."):
            depth += 1


def _check_file(reader: FlistReader, path: str, inode: Inode, max_size: int) -> None:
    if inode.size < 0 or inode.size > max_size:
        raise UnsafeFlist(f"{path}: size {inode.size} is out of range")
    count = len(reader.blocks(inode.ino))
    if count != -(-inode.size // BLOCK_SIZE):
        raise UnsafeFlist(
            f"{path}: size {inode.size} does not match its {count} blocks of {BLOCK_SIZE} bytes"
        )


def _check_entry(
    reader: FlistReader, path: str, child: Inode, *, allow_devices: bool, max_size: int
) -> None:
    if len(path.encode()) > MAX_PATH:
        raise UnsafeFlist(f"{path[:64]}... is longer than {MAX_PATH} bytes")
    for value in (child.mtime, child.ctime):
        if not -MAX_TIME < value < MAX_TIME:
            raise UnsafeFlist(f"{path}: time {value} is out of range")
    if not 0 <= child.rdev < MAX_RDEV:
        raise UnsafeFlist(f"{path}: device number {child.rdev} is out of range")
    kind = stat.S_IFMT(child.mode)
    if kind not in _TYPES or child.mode >> 16 or child.mode < 0:
        raise UnsafeFlist(f"{path}: mode {child.mode:o} is not a file type")
    if kind in (stat.S_IFCHR, stat.S_IFBLK) and not allow_devices:
        raise UnsafeFlist(f"{path}: device nodes can only be made by root")
    if child.uid < 0 or child.gid < 0 or child.uid >> 32 or child.gid >> 32:
        raise UnsafeFlist(f"{path}: owner {child.uid}:{child.gid} is out of range")
    if kind == stat.S_IFLNK:
        _check_target(path, reader.extra(child.ino) or b"")
    elif kind == stat.S_IFREG:
        _check_file(reader, path, child, max_size)


def check_tree(reader: FlistReader, *, allow_devices: bool, max_size: int = 1 << 40) -> CheckedTree:
    """Walk the flist from its root; raise :class:`UnsafeFlist` on anything hostile."""
    root = reader.inode(ROOT_INO)
    if root is None or root.parent != 0 or not root.is_dir:
        raise UnsafeFlist("the flist has no root directory (inode 1, parent 0)")
    entries: list[tuple[str, Inode]] = [("", root)]
    seen = {ROOT_INO}
    index = 0
    while index < len(entries):
        dir_path, directory = entries[index]
        index += 1
        names: set[str] = set()
        children = reader.children(directory.ino)
        if children and not directory.is_dir:
            raise UnsafeFlist(f"{dir_path or '/'} is not a directory but has children")
        for child in children:
            _check_name(child)
            if child.name in names:
                raise UnsafeFlist(f"{dir_path or '/'} holds {child.name!r} twice")
            names.add(child.name)
            if child.ino in seen:
                raise UnsafeFlist(f"inode {child.ino} appears twice in the tree (parent loop)")
            seen.add(child.ino)
            path = f"{dir_path}/{child.name}" if dir_path else child.name
            _check_entry(reader, path, child, allow_devices=allow_devices, max_size=max_size)
            entries.append((path, child))
    total = reader.count()
    if total != len(entries):
        raise UnsafeFlist(
            f"{total - len(entries)} inodes are not reachable from the root (parent loop)"
        )
    links = reader.links()
    by_ino = {inode.ino: inode for _, inode in entries}
    for ino, other in links.items():
        source, dest = by_ino.get(ino), by_ino.get(other)
        if source is None or dest is None or not source.is_file or not dest.is_file:
            raise UnsafeFlist(f"hardlink {ino} -> {other} does not join two files")
        if ino <= other or other in links:
            raise UnsafeFlist(f"hardlink {ino} -> {other} must point to an earlier, plain file")
    return CheckedTree(entries=entries, links=links)
