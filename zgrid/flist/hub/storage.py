"""Where the hub keeps flists: ``<data>/flists/<hash[0:2]>/<hash>.fl`` by content hash, and
an SQLite index ``<data>/hub.db`` of who published which name under which hash."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zgrid.atomic import fsync_directory
from zgrid.flist.errors import HubError
from zgrid.flist.hub.limits import NAME_PATTERN
from zgrid.web import RequestRefused

__all__ = ["FlistRecord", "FlistStorage", "check_name", "file_hash"]

_HASH_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS flist (owner INTEGER NOT NULL, name TEXT NOT NULL,
    hash TEXT NOT NULL, size INTEGER NOT NULL, updated INTEGER NOT NULL,
    PRIMARY KEY (owner, name));
CREATE INDEX IF NOT EXISTS flist_hash ON flist (hash);
"""
# Stored records only gain fields: the publisher's signature came after the first hubs.
_SIGNATURE_COLUMN = "ALTER TABLE flist ADD COLUMN signature TEXT NOT NULL DEFAULT ''"
_COLUMNS = "owner, name, hash, size, updated, signature"


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name) or name in (".", ".."):
        raise RequestRefused(
            400,
            "bad_name",
            f"bad flist name {name!r}: use 1 to 128 of A-Z a-z 0-9 . _ - (like base.fl)",
        )
    return name


def file_hash(path: Path) -> str:
    """BLAKE2b-256 hex of a file's bytes: the content address of an flist."""
    digest = hashlib.blake2b(digest_size=32)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class FlistRecord:
    owner: int
    name: str
    hash: str
    size: int
    updated: int  # unix seconds of the last push
    signature: str = ""  # the publisher's, over owner, name and hash (hex; "" from old hubs)


class FlistStorage:
    """The flist files and their index. Thread-safe: the server calls it from worker threads."""

    def __init__(self, root: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self._files = root / "flists"
        self._tmp = root / "tmp"
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self._files.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
            for stale in self._tmp.iterdir():  # uploads cut short by a crash
                with contextlib.suppress(OSError):
                    stale.unlink()
            self._db = sqlite3.connect(
                root / "hub.db", isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(flist)")}
            if "signature" not in columns:
                self._db.execute(_SIGNATURE_COLUMN)
        except (OSError, sqlite3.Error) as exc:
            raise HubError(f"cannot open the hub's data in {root}: {exc}") from exc

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            with self._lock:
                return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise HubError(f"the hub's index failed: {exc}") from exc

    def temp_path(self) -> Path:
        """A fresh path for an upload in progress (removed again at the next start)."""
        return self._tmp / f"upload-{uuid.uuid4().hex}"

    def path_of(self, flist_hash: str) -> Path:
        return self._files / flist_hash[:2] / f"{flist_hash}.fl"

    def store(
        self, owner: int, name: str, prepared: Path, *, flist_hash: str, signature: str
    ) -> FlistRecord:
        """Move a checked flist file (whose content hash is ``flist_hash``) into place,
        durably, and publish it as ``owner``/``name`` with its publisher's signature."""
        path = self.path_of(flist_hash)
        updated = int(self._clock())
        try:
            size = prepared.stat().st_size
            fd = os.open(prepared, os.O_RDONLY)
            try:
                os.fsync(fd)  # before the rename: never a torn file under a valid hash
            finally:
                os.close(fd)
            with self._lock:
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(prepared, path)  # same bytes when it is already there
                fsync_directory(path.parent)
                replaced = self._db.execute(
                    "SELECT hash FROM flist WHERE owner = ? AND name = ?", (owner, name)
                ).fetchone()
                self._db.execute(
                    f"INSERT OR REPLACE INTO flist ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    (owner, name, flist_hash, size, updated, signature),
                )
                if replaced is not None and replaced[0] != flist_hash:
                    self._drop_unused(str(replaced[0]))
        except (OSError, sqlite3.Error) as exc:
            raise HubError(f"cannot store the flist: {exc}") from exc
        return FlistRecord(owner, name, flist_hash, size, updated, signature)

    def _drop_unused(self, flist_hash: str) -> None:
        # Called with the lock held: the file goes once no name refers to it any more.
        used = self._db.execute("SELECT 1 FROM flist WHERE hash = ? LIMIT 1", (flist_hash,))
        if used.fetchone() is None:
            with contextlib.suppress(OSError):
                self.path_of(flist_hash).unlink()

    def get(self, owner: int, name: str) -> FlistRecord | None:
        rows = self._query(
            f"SELECT {_COLUMNS} FROM flist WHERE owner = ? AND name = ?", (owner, name)
        )
        return _record(rows[0]) if rows else None

    def by_hash(self, flist_hash: str) -> FlistRecord | None:
        """A publication of this content hash; None when no name refers to it."""
        if not _HASH_PATTERN.match(flist_hash):
            raise RequestRefused(
                400, "bad_hash", f"bad flist hash {flist_hash!r}: 64 lower-case hex digits"
            )
        rows = self._query(
            f"SELECT {_COLUMNS} FROM flist WHERE hash = ? ORDER BY owner, name LIMIT 1",
            (flist_hash,),
        )
        return _record(rows[0]) if rows else None

    def flists_of(self, owner: int) -> list[FlistRecord]:
        rows = self._query(
            f"SELECT {_COLUMNS} FROM flist WHERE owner = ? ORDER BY name",
            (owner,),
        )
        return [_record(row) for row in rows]

    def owners(self) -> list[tuple[int, int]]:
        """(owner, number of flists) of every twin that published something."""
        rows = self._query("SELECT owner, count(*) FROM flist GROUP BY owner ORDER BY owner")
        return [(int(str(owner)), int(str(count))) for owner, count in rows]

    def delete(self, owner: int, name: str) -> bool:
        try:
            with self._lock:
                row = self._db.execute(
                    "DELETE FROM flist WHERE owner = ? AND name = ? RETURNING hash", (owner, name)
                ).fetchone()
                if row is not None:
                    self._drop_unused(str(row[0]))
        except sqlite3.Error as exc:
            raise HubError(f"the hub's index failed: {exc}") from exc
        return row is not None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _record(row: tuple[object, ...]) -> FlistRecord:
    owner, name, flist_hash, size, updated, signature = row
    return FlistRecord(
        owner=int(str(owner)),
        name=str(name),
        hash=str(flist_hash),
        size=int(str(size)),
        updated=int(str(updated)),
        signature=str(signature),
    )
