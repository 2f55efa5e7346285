"""Checking an flist's metadata before anything is written or mounted from it.

An flist comes from someone else. :func:`check_tree` walks it from the root and refuses
names that are not one path component, parent loops, children of non-directories,
relative symlinks that lead above the root (resolved through the tree's own symlinks),
sizes its blocks cannot hold, and (unless allowed) device nodes and setuid files.
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
MAX_MODE = 1 << 16  # file type and permission bits; Linux's mode_t holds no more
MAX_ID = 1 << 32  # uid_t, gid_t
_TYPES = {stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO}
_TYPES.add(stat.S_IFSOCK)
_MAX_LINK_DEPTH = 40  # symlinks followed in one resolution, as the kernel's MAXSYMLINKS
_SET_ID = stat.S_ISUID | stat.S_ISGID


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


class _Resolver:
    """Resolves relative symlinks the way the kernel would in the unpacked tree, following
    the tree's own symlinks, and refuses one that ends up above the root.

    A position is the list of inodes from the root down (``None`` for a name the tree
    does not hold: the rest is followed as text). An absolute target leaves the tree as
    any absolute link does, and a loop fails in the kernel (ELOOP): both end the walk.
    """

    def __init__(self, reader: FlistReader, entries: list[tuple[str, Inode]]) -> None:
        self._reader = reader
        self._paths = {inode.ino: path for path, inode in entries}
        self._children: dict[int, dict[str, Inode]] = {}
        for _, inode in entries[1:]:
            self._children.setdefault(inode.parent, {})[inode.name] = inode
        self._parents = {inode.ino: inode.parent for _, inode in entries}
        self._done: dict[int, list[int | None] | None] = {}  # link -> where it leads
        self._active: set[int] = set()

    def _position_of(self, ino: int) -> list[int | None]:
        chain: list[int | None] = []
        while ino != ROOT_INO:
            chain.append(ino)
            ino = self._parents[ino]
        return [ROOT_INO, *reversed(chain)]

    def check(self, link: Inode) -> None:
        self._resolve_link(link, link)

    def _resolve_link(self, link: Inode, origin: Inode) -> list[int | None] | None:
        if link.ino in self._done:
            return self._done[link.ino]
        if link.ino in self._active or len(self._active) > _MAX_LINK_DEPTH:
            return None  # a loop: the kernel stops it with ELOOP
        target = self._reader.extra(link.ino) or b""
        if target.startswith(b"/"):
            self._done[link.ino] = None
            return None
        self._active.add(link.ino)
        try:
            start = self._position_of(link.parent)
            found = self._walk(start, target.split(b"/"), link, origin)
        finally:
            self._active.discard(link.ino)
        self._done[link.ino] = found
        return found

    def _walk(
        self, position: list[int | None], parts: list[bytes], link: Inode, origin: Inode
    ) -> list[int | None] | None:
        position = list(position)
        for part in parts:
            if part in (b"", b"."):
                continue
            if part == b"..":
                if len(position) == 1:
                    self._escape(link, origin)
                position.pop()
                continue
            here = position[-1]
            child = None
            if here is not None:
                child = self._children.get(here, {}).get(part.decode(errors="surrogateescape"))
            if child is not None and child.is_symlink:
                through = self._resolve_link(child, origin)
                if through is None:
                    return None  # through an absolute link or a loop: not this tree's path
                position = list(through)
            else:
                position.append(None if child is None else child.ino)
        return position

    def _escape(self, link: Inode, origin: Inode) -> None:
        target = (self._reader.extra(origin.ino) or b"").decode(errors="replace")
        where = self._paths.get(origin.ino, origin.name)
        via = "" if link.ino == origin.ino else f" through {self._paths.get(link.ino)}"
        raise UnsafeFlist(f"{where}: symlink points outside the tree ({target}{via})")


def _check_file(reader: FlistReader, path: str, inode: Inode, max_size: int) -> None:
    if inode.size < 0 or inode.size > max_size:
        raise UnsafeFlist(f"{path}: size {inode.size} is out of range")
    count = len(reader.blocks(inode.ino))
    if count != -(-inode.size // BLOCK_SIZE):
        raise UnsafeFlist(
            f"{path}: size {inode.size} does not match its {count} blocks of {BLOCK_SIZE} bytes"
        )


def _check_attributes(path: str, inode: Inode, *, allow_devices: bool, allow_setuid: bool) -> int:
    """Check what every entry (the root too) hands to the kernel; return its file type."""
    for value in (inode.mtime, inode.ctime):
        if not -MAX_TIME < value < MAX_TIME:
            raise UnsafeFlist(f"{path}: time {value} is out of range")
    if not 0 <= inode.rdev < MAX_RDEV:
        raise UnsafeFlist(f"{path}: device number {inode.rdev} is out of range")
    # The range first: stat's functions overflow on what does not fit a C mode_t.
    if not 0 <= inode.mode < MAX_MODE or inode.kind not in _TYPES:
        raise UnsafeFlist(f"{path}: mode {inode.mode:o} is not a file type")
    kind = inode.kind
    if kind in (stat.S_IFCHR, stat.S_IFBLK) and not allow_devices:
        raise UnsafeFlist(
            f"{path}: the flist holds a device node; refused unless devices are allowed "
            "(--allow-devices, as root)"
        )
    if inode.mode & _SET_ID and kind != stat.S_IFDIR and not allow_setuid:
        raise UnsafeFlist(
            f"{path}: mode {stat.S_IMODE(inode.mode):o} is setuid or setgid; refused unless "
            "allowed (--allow-setuid)"
        )
    if not (0 <= inode.uid < MAX_ID and 0 <= inode.gid < MAX_ID):
        raise UnsafeFlist(f"{path}: owner {inode.uid}:{inode.gid} is out of range")
    return kind


def _check_entry(
    reader: FlistReader,
    path: str,
    child: Inode,
    *,
    allow_devices: bool,
    allow_setuid: bool,
    max_size: int,
) -> None:
    if len(path.encode()) > MAX_PATH:
        raise UnsafeFlist(f"{path[:64]}... is longer than {MAX_PATH} bytes")
    kind = _check_attributes(path, child, allow_devices=allow_devices, allow_setuid=allow_setuid)
    if kind == stat.S_IFLNK:
        _check_target(path, reader.extra(child.ino) or b"")
    elif kind == stat.S_IFREG:
        _check_file(reader, path, child, max_size)


def check_tree(
    reader: FlistReader,
    *,
    allow_devices: bool,
    allow_setuid: bool = False,
    max_size: int = 1 << 40,
) -> CheckedTree:
    """Walk the flist from its root; raise :class:`UnsafeFlist` on anything hostile.

    Device nodes and setuid/setgid files are refused unless allowed: an image's own
    ``/dev`` and ``su`` are fine to keep (a hub, a FUSE mount with nosuid), not to make
    on a host from a stranger's flist.
    """
    root = reader.inode(ROOT_INO)
    if root is None or root.parent != 0:
        raise UnsafeFlist("the flist has no root directory (inode 1, parent 0)")
    # The root's owner, mode and time go to the target directory itself.
    _check_attributes("/", root, allow_devices=allow_devices, allow_setuid=allow_setuid)
    if not root.is_dir:
        raise UnsafeFlist(f"the flist's root (inode 1) is not a directory (mode {root.mode:o})")
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
            _check_entry(
                reader,
                path,
                child,
                allow_devices=allow_devices,
                allow_setuid=allow_setuid,
                max_size=max_size,
            )
            entries.append((path, child))
    total = reader.count()
    if total != len(entries):
        raise UnsafeFlist(
            f"{total - len(entries)} inodes are not reachable from the root (parent loop)"
        )
    resolver = _Resolver(reader, entries)
    for _, inode in entries:
        if inode.is_symlink:
            resolver.check(inode)
    links = reader.links()
    by_ino = {inode.ino: inode for _, inode in entries}
    for ino, other in links.items():
        source, dest = by_ino.get(ino), by_ino.get(other)
        if source is None or dest is None or not source.is_file or not dest.is_file:
            raise UnsafeFlist(f"hardlink {ino} -> {other} does not join two files")
        if ino <= other or other in links:
            raise UnsafeFlist(f"hardlink {ino} -> {other} must point to an earlier, plain file")
    return CheckedTree(entries=entries, links=links)
