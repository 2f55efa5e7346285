"""The nonces of signed requests a hub has accepted, kept (in SQLite, beside the hub's
flists) until their signing time falls out of the allowed clock skew, so that a captured
request cannot be sent again, not even after a restart of the hub."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from zgrid.flist.errors import HubError

__all__ = ["NonceStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonce (twin INTEGER NOT NULL, nonce TEXT NOT NULL,
    expires INTEGER NOT NULL, PRIMARY KEY (twin, nonce)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonce_expires ON nonce (expires);
"""
_PURGE_EVERY = 256  # inserts between removals of expired nonces


class NonceStore:
    """Thread-safe; every call blocks on SQLite: run it in a worker thread."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._inserts = 0
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # Committed nonces survive a crash of the hub; a power loss may lose the last
            # few, which only matters for requests captured in those milliseconds.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise HubError(f"cannot open the hub's nonces in {path}: {exc}") from exc

    def remember(self, twin_id: int, nonce: str, expires: int) -> bool:
        """True when the nonce is new (now remembered), False when it was seen before."""
        now = int(self._clock())
        try:
            with self._lock:
                self._inserts += 1
                if self._inserts % _PURGE_EVERY == 0:
                    self._db.execute("DELETE FROM nonce WHERE expires < ?", (now,))
                try:
                    self._db.execute(
                        "INSERT INTO nonce (twin, nonce, expires) VALUES (?, ?, ?)",
                        (twin_id, nonce, expires),
                    )
                except sqlite3.IntegrityError:
                    return False
        except sqlite3.Error as exc:
            raise HubError(f"the hub's nonces failed: {exc}") from exc
        return True

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()
