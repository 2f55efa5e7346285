"""Accepting a pushed flist: check the uploaded file as it will be served (its routes
already point at the hub, nothing in it runs code), check its tree, and find the blocks
the hub lacks.

The file is served byte for byte as it was pushed, so the publisher's signature over its
content hash holds for every puller; the checks run on a scratch copy, which may get the
indexes a walk of the tree needs. They are CPU work on someone else's file and run in
worker processes (:func:`check_upload`), never on the event loop that serves reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Sequence
from pathlib import Path

from zgrid.flist.errors import FormatError
from zgrid.flist.meta import SQLITE_FAILURES, FlistReader, sqlite_connect, sqlite_failure
from zgrid.flist.safety import check_tree
from zgrid.flist.stores import BlockStore

__all__ = ["UploadRefused", "check_upload", "missing_blocks", "point_at_hub"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_ID_SIZE = 32


class UploadRefused(Exception):
    """The pushed file is not an flist the hub serves; the message says why (a 400).

    A plain exception with one argument, so it crosses a process pool intact.
    """


def point_at_hub(path: Path, blocks_url: str) -> None:
    """Make the flist at ``path`` route every block to ``blocks_url`` (what a push sends)."""
    db = sqlite_connect(path, mode="rw")
    try:
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("BEGIN")
        db.execute("DELETE FROM route")
        db.execute("INSERT INTO route (start, end, url) VALUES (0, 255, ?)", (blocks_url,))
        db.execute("COMMIT")
    except SQLITE_FAILURES as exc:
        raise sqlite_failure(f"{path}: cannot set its block route", exc) from exc
    finally:
        db.close()


def _check_as_served(path: Path, blocks_url: str) -> None:
    with path.open("rb") as handle:
        header = handle.read(20)
    if header[: len(_SQLITE_MAGIC)] != _SQLITE_MAGIC:
        raise UploadRefused("not an flist: the body is not an SQLite file")
    if header[18:20] != b"\x01\x01":
        raise UploadRefused("refused flist: it is in WAL mode; serve it in rollback-journal mode")
    db = sqlite_connect(path, mode="ro")
    try:
        triggers = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'")
        if triggers.fetchone()[0]:
            raise UploadRefused("refused flist: it holds SQL triggers")
        routes = db.execute("SELECT start, end, url FROM route").fetchall()
    except SQLITE_FAILURES as exc:
        raise UploadRefused(str(sqlite_failure("not an flist", exc))) from exc
    finally:
        db.close()
    if routes != [(0, 255, blocks_url)]:
        raise UploadRefused(
            f"refused flist: its blocks must be routed to this hub, 00-ff={blocks_url} "
            f"(it routes {', '.join(f'{a}-{b}={url}' for a, b, url in routes) or 'nowhere'})"
        )


def _index(path: Path) -> None:
    db = sqlite_connect(path, mode="rw")
    try:
        # A scratch copy, removed after the check: nothing to make durable.
        db.execute("PRAGMA journal_mode=MEMORY")
        db.execute("PRAGMA synchronous=OFF")
        # Checking the tree looks children up by parent; without these it is quadratic.
        db.execute("CREATE INDEX IF NOT EXISTS parents ON inode (parent)")
        db.execute("CREATE INDEX IF NOT EXISTS block_ino ON block (ino)")
    except SQLITE_FAILURES as exc:
        raise UploadRefused(str(sqlite_failure("not an flist", exc))) from exc
    finally:
        db.close()


def check_upload(path: Path, scratch: Path, *, blocks_url: str) -> list[bytes]:
    """Check the uploaded flist at ``path`` (left as it is); return the ids of its blocks.

    Raises :class:`UploadRefused`. Blocking: run it in a worker process or thread.
    """
    try:
        _check_as_served(path, blocks_url)
        shutil.copyfile(path, scratch)
        _index(scratch)
        with FlistReader(scratch) as reader:
            check_tree(reader, allow_devices=True, allow_setuid=True)
            ids = [id_ for id_, _ in reader.all_blocks()]
    except FormatError as exc:
        raise UploadRefused(f"refused flist: {exc}") from exc
    except OSError as exc:
        raise UploadRefused(f"cannot check the flist: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            scratch.unlink()
    bad = next((id_ for id_ in ids if len(id_) != _ID_SIZE), None)
    if bad is not None:
        raise UploadRefused(f"refused flist: block id {bad.hex()!r} is not {_ID_SIZE} bytes")
    return ids


async def missing_blocks(
    store: BlockStore,
    ids: Sequence[bytes],
    *,
    parallel: int = 32,
    slots: asyncio.Semaphore | None = None,
) -> list[bytes]:
    """The ids in ``ids`` that ``store`` does not hold, in their order. With ``slots``,
    every lookup holds one of them (the hub bounds what pushes ask of its store at once)."""
    lacking = [False] * len(ids)
    positions = iter(range(len(ids)))

    async def lookup(position: int) -> None:
        if slots is None:
            lacking[position] = not await store.has(ids[position])
            return
        async with slots:
            lacking[position] = not await store.has(ids[position])

    async def worker() -> None:
        for position in positions:  # shared: each id is asked once
            await lookup(position)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(parallel, len(ids))):
            group.create_task(worker())
    return [id_ for id_, missing in zip(ids, lacking, strict=True) if missing]
