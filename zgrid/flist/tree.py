"""A file tree to pack, as a list of entries: from a directory on disk, or built from an
image's layers. Parents come before their children."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from zgrid.flist.errors import FlistError

__all__ = ["TreeEntry", "walk_directory"]


@dataclass(slots=True)
class TreeEntry:
    """One path of the tree. ``path`` is relative, "/"-separated; the root is ""."""

    path: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    ctime: int
    rdev: int = 0
    target: bytes | None = None  # a symlink's target
    link: str | None = None  # a hardlink: the earlier path it is another name of
    source: Path | None = None  # where a regular file's content is read from

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2] if self.path else "/"

    @property
    def parent(self) -> str:
        return self.path.rpartition("/")[0]


def _entry(path: str, full: Path, st: os.stat_result) -> TreeEntry:
    return TreeEntry(
        path=path,
        mode=st.st_mode,
        uid=st.st_uid,
        gid=st.st_gid,
        size=st.st_size,
        mtime=int(st.st_mtime),
        ctime=int(st.st_ctime),
        rdev=st.st_rdev if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else 0,
        target=os.readlink(full).encode("utf-8", "surrogateescape")
        if stat.S_ISLNK(st.st_mode)
        else None,
        source=full if stat.S_ISREG(st.st_mode) else None,
    )


def walk_directory(root: Path) -> Iterator[TreeEntry]:
    """Every path under ``root`` in a stable order (names sorted), symlinks not followed.

    A regular file met again through another hardlink becomes a link entry.
    """
    try:
        root_st = os.stat(root)
    except OSError as exc:
        raise FlistError(f"cannot read {root}: {exc.strerror}") from exc
    if not stat.S_ISDIR(root_st.st_mode):
        raise FlistError(f"{root} is not a directory")
    yield _entry("", root, root_st)
    seen: dict[tuple[int, int], str] = {}
    pending = [("", root)]
    while pending:
        rel_dir, dir_path = pending.pop()
        try:
            names = sorted(os.listdir(dir_path))
        except OSError as exc:
            raise FlistError(f"cannot list {dir_path}: {exc.strerror}") from exc
        subdirs: list[tuple[str, Path]] = []
        for name in names:
            try:
                name.encode()
            except UnicodeEncodeError as exc:
                raise FlistError(
                    f"{dir_path / name!s}: file names must be UTF-8 to be packed"
                ) from exc
            full = dir_path / name
            rel = f"{rel_dir}/{name}" if rel_dir else name
            try:
                st = os.lstat(full)
            except OSError as exc:
                raise FlistError(f"cannot read {full}: {exc.strerror}") from exc
            try:
                entry = _entry(rel, full, st)
            except OSError as exc:  # changed while it was listed
                raise FlistError(f"cannot read {full}: {exc.strerror}") from exc
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                first = seen.setdefault((st.st_dev, st.st_ino), rel)
                if first != rel:
                    entry.link = first
            yield entry
            if stat.S_ISDIR(st.st_mode):
                subdirs.append((rel, full))
        pending.extend(reversed(subdirs))
