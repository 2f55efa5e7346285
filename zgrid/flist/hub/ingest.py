"""Accepting a pushed flist: make the uploaded copy safe to serve, point its blocks at the
hub, check its tree, and find the blocks the hub lacks."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from zgrid.flist.errors import FormatError
from zgrid.flist.hub.errors import HubRefused
from zgrid.flist.meta import FlistReader
from zgrid.flist.safety import check_tree
from zgrid.flist.stores import BlockStore

__all__ = ["missing_blocks", "prepare_flist"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_ID_SIZE = 32


def _rewrite_routes(path: Path, blocks_url: str) -> None:
    with path.open("rb") as handle:
        if handle.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
            raise HubRefused(400, "not an flist: the body is not an SQLite file")
    db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
    try:
        # The file is someone else's: nothing in it may run code while it is changed, and
        # what is checked afterwards must be exactly what is stored.
        db.execute("PRAGMA trusted_schema=OFF")
        db.execute("PRAGMA journal_mode=DELETE")
        triggers = db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
        db.execute("BEGIN")
        for (trigger,) in triggers:
            db.execute(f'DROP TRIGGER "{str(trigger).replace(chr(34), chr(34) * 2)}"')
        db.execute("DELETE FROM route")
        db.execute("INSERT INTO route (start, end, url) VALUES (0, 255, ?)", (blocks_url,))
        # Checking the tree looks children up by parent; without these it is quadratic.
        db.execute("CREATE INDEX IF NOT EXISTS parents ON inode (parent)")
        db.execute("CREATE INDEX IF NOT EXISTS block_ino ON block (ino)")
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise HubRefused(400, f"not an flist: {exc}") from exc
    finally:
        db.close()


def prepare_flist(path: Path, *, blocks_url: str) -> list[bytes]:
    """Point the uploaded copy at ``blocks_url``, check it; return the ids of its blocks.

    Blocking (SQLite, a walk of the whole tree): run it in a worker thread.
    """
    try:
        _rewrite_routes(path, blocks_url)
        with FlistReader(path) as reader:
            check_tree(reader, allow_devices=True)
            ids = [id_ for id_, _ in reader.all_blocks()]
    except FormatError as exc:
        raise HubRefused(400, f"refused flist: {exc}") from exc
    except sqlite3.Error as exc:  # pragma: no cover - FlistReader translates what it runs
        raise HubRefused(400, f"not an flist: {exc}") from exc
    bad = next((id_ for id_ in ids if len(id_) != _ID_SIZE), None)
    if bad is not None:
        raise HubRefused(400, f"refused flist: block id {bad.hex()!r} is not {_ID_SIZE} bytes")
    return ids


async def missing_blocks(
    store: BlockStore, ids: Sequence[bytes], *, parallel: int = 32
) -> list[bytes]:
    """The ids in ``ids`` that ``store`` does not hold, in their order."""
    lacking = [False] * len(ids)
    positions = iter(range(len(ids)))

    async def worker() -> None:
        for position in positions:  # shared: each id is asked once
            lacking[position] = not await store.has(ids[position])

    await asyncio.gather(*(worker() for _ in range(min(parallel, len(ids)))))
    return [id_ for id_, missing in zip(ids, lacking, strict=True) if missing]
