"""The .fl reader under fuzzing: any bytes, read as an flist, checked, taken in by the hub's
ingest and unpacked, must end in the flist package's own errors, and a refused unpack
must leave nothing in its target.

``one_input`` is the harness of atheris (``python -m tests.fuzz.atheris_run flist``) and of
the hypothesis properties in test_flist.py. ``write_seed`` writes the small valid .fl the
mutations start from (its one block is in the store every input is unpacked from).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import stat
import tempfile
from pathlib import Path

from zgrid.flist import (
    BlockFetcher,
    FlistError,
    FlistReader,
    FlistWriter,
    Route,
    Router,
    check_tree,
    encode_block,
    unpack,
)
from zgrid.flist.hub.ingest import UploadRefused, check_upload

__all__ = ["BLOCKS_URL", "one_input", "write_seed"]

# The seed routes its blocks here, so that the hub's ingest takes it in and checks its tree.
BLOCKS_URL = "http://hub.invalid/blocks"
CONTENT = b"zgrid fuzz\n"
_BLOCK = encode_block(CONTENT)
_store: Path | None = None


def _store_dir() -> Path:
    """A block store holding the seed's one block, made once per process."""
    global _store  # noqa: PLW0603 - one store for every input of a fuzzing process
    if _store is None:
        _store = Path(tempfile.mkdtemp(prefix="zgrid-fuzz-store-"))
        name = _BLOCK.id.hex()
        (_store / name[:2]).mkdir()
        (_store / name[:2] / name).write_bytes(_BLOCK.data)
    return _store


def write_seed(path: Path) -> None:
    """A small .fl using every kind of entry: /etc/hostname (one block), /etc/link ->
    hostname, /etc/alias (a hardlink of hostname), /run/pipe (a FIFO), tags and a route."""
    writer = FlistWriter(path)
    dir_mode, file_mode = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o644
    root = writer.add_inode(parent=0, name="/", size=0, uid=0, gid=0, mode=dir_mode, mtime=1)
    etc = writer.add_inode(parent=root, name="etc", size=0, uid=0, gid=0, mode=dir_mode)
    size = len(CONTENT)
    hostname = writer.add_inode(
        parent=etc, name="hostname", size=size, uid=1000, gid=1000, mode=file_mode, mtime=7
    )
    writer.add_blocks(hostname, [(_BLOCK.id, _BLOCK.key)])
    alias = writer.add_inode(parent=etc, name="alias", size=size, uid=0, gid=0, mode=file_mode)
    writer.add_blocks(alias, [(_BLOCK.id, _BLOCK.key)])
    writer.add_link(alias, hostname)
    link = writer.add_inode(
        parent=etc, name="link", size=8, uid=0, gid=0, mode=stat.S_IFLNK | 0o777
    )
    writer.set_extra(link, b"hostname")
    run = writer.add_inode(parent=root, name="run", size=0, uid=0, gid=0, mode=dir_mode)
    writer.add_inode(parent=run, name="pipe", size=0, uid=0, gid=0, mode=stat.S_IFIFO | 0o600)
    writer.set_tag("version", "1")
    writer.add_route(Route(0, 255, BLOCKS_URL))
    writer.close()
    # Small pages make a small file: a few kilobytes for the fuzzer to mutate.
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA page_size=512")
        db.execute("VACUUM")
    finally:
        db.close()


def _read(flist: Path) -> bool:
    """Read everything the tools read; whether the tree passes its checks."""
    try:
        with FlistReader(flist) as reader:
            reader.count()
            for read in (reader.tags, reader.routes, reader.all_blocks, reader.links):
                with contextlib.suppress(FlistError):
                    read()
            tree = check_tree(reader, allow_devices=True, allow_setuid=True)
            for _, inode in tree.entries:  # what unpack and a mount read of each
                if inode.is_file:
                    reader.blocks(inode.ino)
                else:
                    reader.extra(inode.ino)
    except FlistError:
        return False
    return True


def _ingest(flist: Path, work: Path) -> None:
    with contextlib.suppress(UploadRefused):
        check_upload(flist, work / "scratch.fl", blocks_url=BLOCKS_URL)


async def _unpack(flist: Path, target: Path) -> None:
    fetcher = BlockFetcher(Router.from_routes([Route(0, 255, f"dir://{_store_dir()}")]))
    try:
        await unpack(flist, target, fetcher)
    finally:
        await fetcher.close()


def one_input(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="zgrid-fuzz-flist-") as scratch:
        work = Path(scratch)
        flist = work / "input.fl"
        flist.write_bytes(data)
        checked = _read(flist)
        _ingest(flist, work)
        target = work / "out"
        try:
            asyncio.run(_unpack(flist, target))
        except FlistError:
            assert not target.exists(), "a refused unpack left its target behind"
            return
        assert checked, "unpack took an flist that check_tree refuses"
