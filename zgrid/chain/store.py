"""The block log: blocks, transactions, events and the current state in one SQLite file.

A block and everything it changed are written in one SQLite transaction in WAL
mode with ``synchronous=FULL``, so once ``commit_block`` returns the block
survives a kill -9 or a power cut, and a crash before that leaves no trace of it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from zgrid.chain.block import SignedHeader
from zgrid.chain.errors import ChainStorageError
from zgrid.chain.records import ChainEvent
from zgrid.chain.state import State, WriteSet
from zgrid.identity import canonical_dumps, canonical_loads

__all__ = ["AFTER_ALL_EVENTS", "BlockLog", "StoredTransaction"]

# An event index greater than any real one: the position (h, AFTER_ALL_EVENTS) is
# "after every event of block h", which is how followers resume at a block boundary.
AFTER_ALL_EVENTS = 2**31

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    header TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    hash TEXT PRIMARY KEY,
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    body TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transactions_by_block ON transactions (height, idx);
CREATE TABLE IF NOT EXISTS events (
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    tx_hash TEXT,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (height, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_transaction ON events (tx_hash);
CREATE INDEX IF NOT EXISTS bills_by_contract
    ON events (json_extract(data, '$.contract_id'), json_extract(data, '$.number'))
    WHERE name = 'ContractBilled';
CREATE TABLE IF NOT EXISTS state (
    tbl TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (tbl, key)
) WITHOUT ROWID;
"""

StoredTransaction = tuple[int, int, dict[str, Any]]  # height, index, result


class BlockLog:
    """SQLite storage; one writer connection, and one reader connection per thread."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """Open (and create) the log at ``path``; ``readonly`` only reads one that exists,
        also while a ledger writes to it."""
        self.path = path
        self.readonly = readonly
        self._local = threading.local()
        self._writer: sqlite3.Connection | None = None
        try:
            if readonly:
                self._reader.execute("SELECT 1 FROM blocks LIMIT 1")
            else:
                self._writer = self._connect()
                self._writer.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise ChainStorageError(f"cannot open the block store {path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            connection = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                check_same_thread=False,
                isolation_level=None,
            )
        else:
            connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA busy_timeout=10000")
        return connection

    @property
    def _reader(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        return connection

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._reader
        except sqlite3.Error as exc:
            raise ChainStorageError(f"cannot read the block store {self.path}: {exc}") from exc

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read of this thread inside the block sees the log as it was at its start,
        whatever a writer commits meanwhile (one SQLite read transaction)."""
        with self._reading() as db:
            db.execute("BEGIN")
            db.execute("SELECT 1 FROM blocks LIMIT 1")  # the snapshot is taken at the first read
        try:
            yield
        finally:
            with self._reading() as db:
                db.execute("ROLLBACK")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()

    # -- writing ---------------------------------------------------------------------------

    def commit_block(
        self,
        signed: SignedHeader,
        transactions: list[tuple[str, bytes, bytes]],
        events: list[ChainEvent],
        writes: WriteSet,
        *,
        meta: dict[str, str] | None = None,
    ) -> None:
        """Persist one block atomically. ``transactions`` holds (hash, tx JSON, result JSON)."""
        header = signed.header
        if self._writer is None:
            raise ChainStorageError(f"{self.path} is open read-only")
        try:
            cursor = self._writer.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                cursor.execute(
                    "INSERT INTO blocks (height, hash, header, signature) VALUES (?, ?, ?, ?)",
                    (
                        header.height,
                        signed.hash,
                        canonical_dumps(header.model_dump(mode="json")).decode(),
                        signed.signature,
                    ),
                )
                cursor.executemany(
                    "INSERT INTO transactions (hash, height, idx, body, result) VALUES (?, ?, ?, ?, ?)",
                    [
                        (tx_hash, header.height, index, body.decode(), result.decode())
                        for index, (tx_hash, body, result) in enumerate(transactions)
                    ],
                )
                cursor.executemany(
                    "INSERT INTO events (height, idx, tx_hash, name, data) VALUES (?, ?, ?, ?, ?)",
                    [
                        (e.height, e.index, e.tx_hash, e.name, canonical_dumps(e.data).decode())
                        for e in events
                    ],
                )
                cursor.executemany(
                    "INSERT OR REPLACE INTO state (tbl, key, value) VALUES (?, ?, ?)",
                    [
                        (table, key, value.decode())
                        for (table, key), value in writes.items()
                        if value is not None
                    ],
                )
                cursor.executemany(
                    "DELETE FROM state WHERE tbl = ? AND key = ?",
                    [(table, key) for (table, key), value in writes.items() if value is None],
                )
                for key, value in (meta or {}).items():
                    cursor.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)
                    )
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise ChainStorageError(
                f"cannot write block {header.height} to {self.path}: {exc}"
            ) from exc

    # -- reading ---------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with self._reading() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def load_state(self, state: State) -> None:
        for (table, key), value in self.state_rows().items():
            state.load(table, key, value)

    def state_rows(self) -> dict[tuple[str, str], bytes]:
        with self._reading() as db:
            return {
                (t, k): v.encode() for t, k, v in db.execute("SELECT tbl, key, value FROM state")
            }

    def head(self) -> SignedHeader | None:
        with self._reading() as db:
            row = db.execute(
                "SELECT header, hash, signature FROM blocks ORDER BY height DESC LIMIT 1"
            ).fetchone()
        return None if row is None else _signed(row)

    def head_height(self) -> int | None:
        with self._reading() as db:
            row = db.execute("SELECT MAX(height) FROM blocks").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def block(self, height: int) -> SignedHeader | None:
        with self._reading() as db:
            row = db.execute(
                "SELECT header, hash, signature FROM blocks WHERE height = ?", (height,)
            ).fetchone()
        return None if row is None else _signed(row)

    def blocks(self, start: int, limit: int) -> list[SignedHeader]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT header, hash, signature FROM blocks WHERE height >= ? ORDER BY height LIMIT ?",
                (start, limit),
            ).fetchall()
        return [_signed(row) for row in rows]

    def block_rows(self, start: int, limit: int) -> list[tuple[int, str, str, str]]:
        """(height, header JSON, hash, signature) as stored, unchecked: what verify reads."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT height, header, hash, signature FROM blocks WHERE height >= ?"
                " ORDER BY height LIMIT ?",
                (start, limit),
            ).fetchall()
        return [(int(h), str(header), str(digest), str(sig)) for h, header, digest, sig in rows]

    def block_transactions(self, height: int) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT hash, body, result FROM transactions WHERE height = ? ORDER BY idx",
                (height,),
            ).fetchall()
        return [(h, canonical_loads(body), canonical_loads(result)) for h, body, result in rows]

    def transaction(self, tx_hash: str) -> StoredTransaction | None:
        with self._reading() as db:
            row = db.execute(
                "SELECT height, idx, result FROM transactions WHERE hash = ?", (tx_hash,)
            ).fetchone()
        if row is None:
            return None
        return int(row[0]), int(row[1]), canonical_loads(row[2])

    def events(
        self,
        *,
        after: tuple[int, int] = (-1, -1),
        until_height: int | None = None,
        limit: int = 1000,
    ) -> list[ChainEvent]:
        """Events strictly after position ``after`` (height, index), in order."""
        height, index = after
        query = "SELECT height, idx, tx_hash, name, data FROM events WHERE (height > ? OR (height = ? AND idx > ?))"
        params: list[Any] = [height, height, index]
        if until_height is not None:
            query += " AND height <= ?"
            params.append(until_height)
        query += " ORDER BY height, idx LIMIT ?"
        params.append(limit)
        with self._reading() as db:
            rows = db.execute(query, params).fetchall()
        return _events(rows)

    def event_documents(
        self, *, after: tuple[int, int], until_height: int, limit: int
    ) -> list[tuple[int, int, str]]:
        """Like :meth:`events`, as (height, index, the event's JSON): what the stream sends."""
        height, index = after
        with self._reading() as db:
            rows = db.execute(
                "SELECT height, idx, tx_hash, name, data FROM events"
                " WHERE (height > ? OR (height = ? AND idx > ?)) AND height <= ?"
                " ORDER BY height, idx LIMIT ?",
                (height, height, index, until_height, limit),
            ).fetchall()
        # ``data`` is stored as canonical JSON already; only the envelope is written here.
        return [
            (
                h,
                i,
                f'{{"height":{h},"index":{i},"tx_hash":{json.dumps(t)},'
                f'"name":{json.dumps(n)},"data":{d}}}',
            )
            for h, i, t, n, d in rows
        ]

    def contract_bills(self, contract_id: int, first: int, last: int) -> list[dict[str, Any]]:
        """The ``ContractBilled`` events of ``contract_id`` numbered ``first`` to ``last``:
        each bill as it was made (a bill owed then is also in the state's bills)."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT data FROM events WHERE name = 'ContractBilled'"
                " AND json_extract(data, '$.contract_id') = ?"
                " AND json_extract(data, '$.number') BETWEEN ? AND ?"
                " ORDER BY json_extract(data, '$.number')",
                (contract_id, first, last),
            ).fetchall()
        return [canonical_loads(data) for (data,) in rows]

    def transaction_events(self, tx_hash: str) -> list[ChainEvent]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT height, idx, tx_hash, name, data FROM events WHERE tx_hash = ? ORDER BY height, idx",
                (tx_hash,),
            ).fetchall()
        return _events(rows)


def _events(rows: list[tuple[int, int, str | None, str, str]]) -> list[ChainEvent]:
    return [
        ChainEvent(height=h, index=i, tx_hash=t, name=n, data=canonical_loads(d))
        for h, i, t, n, d in rows
    ]


def _signed(row: tuple[str, str, str]) -> SignedHeader:
    header, block_hash, signature = row
    return SignedHeader.model_validate(
        {"header": canonical_loads(header), "hash": block_hash, "signature": signature}
    )
