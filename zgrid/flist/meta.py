"""The .fl metadata file: rfs's SQLite schema, written by :class:`FlistWriter` and read by
:class:`FlistReader`.

Hardlinks are kept in one extra table, ``link``: rfs ignores it and sees two files with the
same blocks, while zgrid's unpack makes them one file again.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zgrid.flist.block import DIGEST_SIZE
from zgrid.flist.errors import FormatError

__all__ = [
    "ROOT_INO",
    "SQLITE_FAILURES",
    "FlistReader",
    "FlistWriter",
    "Inode",
    "Route",
    "sqlite_connect",
    "sqlite_failure",
]

ROOT_INO = 1
# The longest string or blob SQLite hands back from a file someone else wrote: more than
# any column rfs writes (a symlink target is at most 4 KiB), little enough to allocate.
MAX_VALUE = 1 << 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inode (ino INTEGER PRIMARY KEY AUTOINCREMENT, parent INTEGER,
    name VARCHAR(255), size INTEGER, uid INTEGER, gid INTEGER, mode INTEGER, rdev INTEGER,
    ctime INTEGER, mtime INTEGER);
CREATE INDEX IF NOT EXISTS parents ON inode (parent);
CREATE INDEX IF NOT EXISTS names ON inode (name);
CREATE TABLE IF NOT EXISTS extra (ino INTEGER PRIMARY KEY, data VARCHAR(4096));
CREATE TABLE IF NOT EXISTS block (ino INTEGER, id VARCHAR(32), key VARCHAR(32));
CREATE INDEX IF NOT EXISTS block_ino ON block (ino);
CREATE TABLE IF NOT EXISTS tag (key VARCHAR(10) PRIMARY KEY, value VARCHAR(255));
CREATE TABLE IF NOT EXISTS route (start integer, end integer, url VARCHAR(2048));
CREATE TABLE IF NOT EXISTS link (ino INTEGER PRIMARY KEY, target INTEGER);
"""
_REQUIRED_TABLES = {"inode", "extra", "block", "tag", "route"}
_INODE_COLUMNS = "ino, parent, name, size, uid, gid, mode, rdev, ctime, mtime"


@dataclass(frozen=True, slots=True)
class Inode:
    ino: int
    parent: int
    name: str
    size: int
    uid: int
    gid: int
    mode: int
    rdev: int
    ctime: int
    mtime: int

    # Plain arithmetic, not stat.S_ISDIR: the mode is any 64-bit integer until
    # check_tree has seen it, and the stat functions overflow beyond a C mode_t.
    @property
    def kind(self) -> int:
        """The file type bits of the mode (``stat.S_IFDIR``...)."""
        return self.mode & 0o170000

    @property
    def is_dir(self) -> bool:
        return self.kind == stat.S_IFDIR

    @property
    def is_file(self) -> bool:
        return self.kind == stat.S_IFREG

    @property
    def is_symlink(self) -> bool:
        return self.kind == stat.S_IFLNK


@dataclass(frozen=True, slots=True)
class Route:
    """Blocks whose id starts with a byte in ``start..end`` (inclusive) live at ``url``."""

    start: int
    end: int
    url: str

    def covers(self, first_byte: int) -> bool:
        return self.start <= first_byte <= self.end


# What Python's sqlite3 raises on a damaged or hostile file: beside sqlite3.Error,
# UnicodeDecodeError when SQLite's error message quotes non-UTF-8 bytes of the file (a
# table name, say), and MemoryError when a corrupt record makes SQLite report that it is
# out of memory.
SQLITE_FAILURES = (sqlite3.Error, UnicodeDecodeError, MemoryError)


def sqlite_failure(what: str, exc: BaseException) -> FormatError:
    """The :class:`FormatError` for one of ``SQLITE_FAILURES``, its message starting with
    ``what`` (raise it ``from exc``)."""
    if isinstance(exc, UnicodeDecodeError):
        return FormatError(f"{what}: SQLite reports a damaged schema (its names are not UTF-8)")
    if isinstance(exc, MemoryError):
        return FormatError(f"{what}: a corrupt record (SQLite ran out of memory reading it)")
    return FormatError(f"{what}: {exc}")


def _integer(value: object, column: str, *, default: int | None = None) -> int:
    # The file comes from someone else and SQLite columns take any type: only accept
    # what rfs writes, never convert (bytes(2**30) would allocate a GiB).
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not -(1 << 63) <= value < 1 << 63:
        kind = "NULL" if value is None else type(value).__name__
        raise FormatError(f"column {column} holds {kind}, not a 64-bit integer")
    return value


def _text(value: object, column: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError as exc:
            raise FormatError(f"column {column} is not UTF-8") from exc
    kind = "NULL" if value is None else type(value).__name__
    raise FormatError(f"column {column} holds {kind}, not text")


def _digest(value: object, column: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != DIGEST_SIZE:
        raise FormatError(f"block {column} must be a {DIGEST_SIZE}-byte blob")
    return value


def _row_to_inode(row: Sequence[Any]) -> Inode:
    ino, parent, name, size, uid, gid, mode, rdev, ctime, mtime = row
    return Inode(
        ino=_integer(ino, "inode.ino"),
        parent=_integer(parent, "inode.parent"),
        name=_text(name, "inode.name"),
        size=_integer(size, "inode.size"),
        uid=_integer(uid, "inode.uid"),
        gid=_integer(gid, "inode.gid"),
        mode=_integer(mode, "inode.mode"),
        rdev=_integer(rdev, "inode.rdev", default=0),
        ctime=_integer(ctime, "inode.ctime", default=0),
        mtime=_integer(mtime, "inode.mtime", default=0),
    )


def sqlite_connect(path: Path, *, mode: str) -> sqlite3.Connection:
    """A connection to the .fl at ``path`` (``mode`` "ro" or "rw") that treats the file as
    someone else's: no function of its schema runs, no value beyond ``MAX_VALUE`` is read.
    """
    uri = f"file:{urllib.parse.quote(str(path))}?mode={mode}"  # a "?" or "#" in a name
    try:
        db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    except SQLITE_FAILURES as exc:
        raise sqlite_failure(f"{path} is not an flist (cannot open it)", exc) from exc
    try:
        db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE)
        db.execute("PRAGMA trusted_schema=OFF")
    except SQLITE_FAILURES as exc:
        db.close()
        raise sqlite_failure(f"{path} is not an flist (not an SQLite file)", exc) from exc
    return db


class FlistWriter:
    """Builds a new .fl file; nothing appears at ``path`` until :meth:`close` succeeds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()
        try:
            self._db = sqlite3.connect(self._tmp, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=DELETE")
            self._db.executescript(_SCHEMA)
            self._db.execute("BEGIN")
        except sqlite3.Error as exc:
            raise FormatError(f"cannot create {path}: {exc}") from exc

    def add_inode(
        self,
        *,
        parent: int,
        name: str,
        size: int,
        uid: int,
        gid: int,
        mode: int,
        rdev: int = 0,
        ctime: int = 0,
        mtime: int = 0,
    ) -> int:
        cursor = self._db.execute(
            "INSERT INTO inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (parent, name, size, uid, gid, mode, rdev, ctime, mtime),
        )
        ino = cursor.lastrowid
        assert ino is not None
        return ino

    def set_extra(self, ino: int, data: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO extra (ino, data) VALUES (?, ?)", (ino, data))

    def add_blocks(self, ino: int, blocks: Sequence[tuple[bytes, bytes]]) -> None:
        self._db.executemany(
            "INSERT INTO block (ino, id, key) VALUES (?, ?, ?)",
            [(ino, id_, key) for id_, key in blocks],
        )

    def set_size(self, ino: int, size: int) -> None:
        self._db.execute("UPDATE inode SET size = ? WHERE ino = ?", (size, ino))

    def add_link(self, ino: int, target: int) -> None:
        self._db.execute("INSERT INTO link (ino, target) VALUES (?, ?)", (ino, target))

    def set_tag(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO tag (key, value) VALUES (?, ?)", (key, value))

    def add_route(self, route: Route) -> None:
        self._db.execute(
            "INSERT INTO route (start, end, url) VALUES (?, ?, ?)",
            (route.start, route.end, route.url),
        )

    def close(self) -> None:
        """Commit and move the finished file into place."""
        try:
            self._db.execute("COMMIT")
            self._db.close()
            os.replace(self._tmp, self.path)
        except (sqlite3.Error, OSError) as exc:
            self.abort()
            raise FormatError(f"cannot write {self.path}: {exc}") from exc

    def abort(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink()


class FlistReader:
    """Read access to a .fl file (opened read-only; the file is never changed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            is_file = stat.S_ISREG(os.stat(path).st_mode)
        except FileNotFoundError:
            is_file = False
        except OSError as exc:
            raise FormatError(f"cannot read {path}: {exc.strerror}") from exc
        if not is_file:
            raise FormatError(f"{path}: no such flist file")
        self._db = sqlite_connect(path, mode="ro")
        try:
            tables = {
                row[0]
                for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except SQLITE_FAILURES as exc:
            self._db.close()
            raise sqlite_failure(f"{path} is not an flist (not an SQLite file)", exc) from exc
        missing = _REQUIRED_TABLES - tables
        if missing:
            self._db.close()
            raise FormatError(
                f"{path} is not an flist (missing tables: {', '.join(sorted(missing))})"
            )
        self._has_links = "link" in tables

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, args).fetchall()
        except SQLITE_FAILURES as exc:
            raise sqlite_failure(f"{self.path}: cannot read metadata", exc) from exc

    def inode(self, ino: int) -> Inode | None:
        rows = self._query(f"SELECT {_INODE_COLUMNS} FROM inode WHERE ino = ?", (ino,))
        return _row_to_inode(rows[0]) if rows else None

    def lookup(self, parent: int, name: str) -> Inode | None:
        rows = self._query(
            f"SELECT {_INODE_COLUMNS} FROM inode WHERE parent = ? AND name = ?", (parent, name)
        )
        return _row_to_inode(rows[0]) if rows else None

    def children(self, parent: int) -> list[Inode]:
        rows = self._query(
            f"SELECT {_INODE_COLUMNS} FROM inode WHERE parent = ? AND ino != ? ORDER BY ino",
            (parent, ROOT_INO),
        )
        return [_row_to_inode(row) for row in rows]

    def inodes(self) -> Iterator[Inode]:
        """Every inode, in ino order."""
        for row in self._query(f"SELECT {_INODE_COLUMNS} FROM inode ORDER BY ino"):
            yield _row_to_inode(row)

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM inode")[0][0])

    def blocks(self, ino: int) -> list[tuple[bytes, bytes]]:
        """The (id, key) of each block of a file, in file order."""
        rows = self._query("SELECT id, key FROM block WHERE ino = ? ORDER BY rowid", (ino,))
        return [(_digest(id_, "id"), _digest(key, "key")) for id_, key in rows]

    def all_blocks(self) -> list[tuple[bytes, bytes]]:
        """Every distinct (id, key) the flist refers to."""
        rows = self._query("SELECT DISTINCT id, key FROM block")
        return [(_digest(id_, "id"), _digest(key, "key")) for id_, key in rows]

    def extra(self, ino: int) -> bytes | None:
        rows = self._query("SELECT data FROM extra WHERE ino = ?", (ino,))
        if not rows:
            return None
        data = rows[0][0]
        if isinstance(data, str):
            return data.encode()
        if not isinstance(data, bytes):
            raise FormatError(f"extra data of inode {ino} is not text")
        return data

    def links(self) -> dict[int, int]:
        """Hardlinks: inode -> the inode it is another name of."""
        if not self._has_links:
            return {}
        rows = self._query("SELECT ino, target FROM link")
        return {_integer(ino, "link.ino"): _integer(target, "link.target") for ino, target in rows}

    def tags(self) -> dict[str, str]:
        rows = self._query("SELECT key, value FROM tag")
        return {_text(key, "tag.key"): _text(value, "tag.value") for key, value in rows}

    def routes(self) -> list[Route]:
        rows = self._query("SELECT start, end, url FROM route ORDER BY rowid")
        routes = []
        for start, end, url in rows:
            first, last = _integer(start, "route.start"), _integer(end, "route.end")
            if not 0 <= first <= last <= 255:
                raise FormatError(f"{self.path}: route range {first}-{last} is not within 0-255")
            routes.append(Route(first, last, _text(url, "route.url")))
        return routes

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> FlistReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
