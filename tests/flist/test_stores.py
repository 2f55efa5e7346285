"""One suite for every block store (directory, Zero-DB, HTTP), then routing and fetching."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import cramjam
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.flist.blockserver import serving
from tests.zdb.conftest import ZdbProcess
from zgrid.flist import (
    BLOCK_SIZE,
    BlockError,
    BlockFetcher,
    BlockNotFound,
    Route,
    Router,
    StoreError,
    StoreUrlError,
    decode_block,
    encode_block,
    open_store,
    parse_route,
    public_url,
)
from zgrid.flist.block import MAX_BLOCK_DATA

BLOCKS = [encode_block(bytes([n]) * (1000 + n)) for n in range(8)]


@pytest.fixture(scope="module")
def zdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZdbProcess]:
    server = ZdbProcess(tmp_path_factory.mktemp("zdb"))
    server.start()
    client = server.client()
    client.execute_command("NSNEW", "blocks")
    client.execute_command("NSSET", "blocks", "password", "s3cret")
    yield server
    server.stop()


@pytest.fixture(params=["dir", "zdb"])
def writable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "dir":
        return f"dir://{tmp_path}/store"
    server: ZdbProcess = request.getfixturevalue("zdb_server")
    return f"zdb://user:s3cret@127.0.0.1:{server.port}/blocks"


def test_a_store_keeps_and_returns_blocks(writable_url: str) -> None:
    async def run() -> None:
        store = open_store(writable_url)
        try:
            assert "s3cret" not in store.url
            for block in BLOCKS:
                await store.set(block.id, block.data)
                await store.set(block.id, block.data)  # again: a no-op
            for block in BLOCKS:
                assert await store.has(block.id)
                assert await store.get(block.id) == block.data
            missing = encode_block(b"never stored")
            assert await store.get(missing.id) is None
            assert not await store.has(missing.id)
        finally:
            await store.close()

    asyncio.run(run())


def test_an_http_store_serves_a_directory_store_and_is_read_only(tmp_path: Path) -> None:
    async def fill() -> None:
        store = open_store(f"dir://{tmp_path}/store")
        for block in BLOCKS:
            await store.set(block.id, block.data)

    asyncio.run(fill())

    async def read(url: str) -> None:
        store = open_store(url)
        try:
            for block in BLOCKS:
                assert await store.get(block.id) == block.data
            assert await store.get(encode_block(b"nope").id) is None
            with pytest.raises(StoreError, match="read-only"):
                await store.set(BLOCKS[0].id, BLOCKS[0].data)
        finally:
            await store.close()

    with serving(tmp_path / "store") as (url, _counts):
        asyncio.run(read(url))


def test_a_zdb_store_with_a_wrong_password_is_refused(zdb_server: ZdbProcess) -> None:
    async def run() -> None:
        store = open_store(f"zdb://u:wrong@127.0.0.1:{zdb_server.port}/blocks")
        with pytest.raises(StoreError, match="blocks"):
            await store.set(BLOCKS[0].id, BLOCKS[0].data)
        await store.close()

    asyncio.run(run())


def test_an_unreachable_store_is_a_store_error() -> None:
    async def run() -> None:
        for url in ("zdb://127.0.0.1:1/ns", "http://127.0.0.1:1/blocks"):
            store = open_store(url)
            with pytest.raises(StoreError, match=r"127\.0\.0\.1"):
                await store.get(BLOCKS[0].id)
            await store.close()

    asyncio.run(run())


def test_store_urls() -> None:
    assert public_url("zdb://alice:pw@host:9900/ns") == "zdb://alice@host:9900/ns"
    assert public_url("zdb://:pw@host/ns") == "zdb://host/ns"
    assert public_url("dir:///a/b") == "dir:///a/b"
    assert parse_route("00-7f=dir:///a") == Route(0, 0x7F, "dir:///a")
    assert parse_route("dir:///a") == Route(0, 255, "dir:///a")
    for bad, message in [
        ("s3://key:secret@host:9000/bucket", "scheme"),
        ("dir://relative/path", "absolute"),
        ("zdb:///ns", "host"),
        ("zdb://host/a/b", "one namespace"),
        ("zdb://host:99999/ns", "bad store URL"),
    ]:
        with pytest.raises(StoreUrlError, match=message):
            open_store(bad)
    with pytest.raises(StoreUrlError, match="after"):
        parse_route("80-10=dir:///a")


def test_routing_shards_replicates_and_falls_back(tmp_path: Path) -> None:
    async def run() -> None:
        low, high, mirror = (f"dir://{tmp_path}/{name}" for name in ("low", "high", "mirror"))
        router = Router.from_routes(
            [Route(0, 0x7F, low), Route(0x80, 0xFF, high), Route(0, 0xFF, mirror)]
        )
        for block in BLOCKS:
            await router.set(block.id, block.data)
        for block in BLOCKS:
            name = block.id.hex()
            shard = "low" if block.id[0] < 0x80 else "high"
            other = "high" if shard == "low" else "low"
            assert (tmp_path / shard / name[:2] / name).exists()
            assert not (tmp_path / other / name[:2] / name).exists()
            assert (tmp_path / "mirror" / name[:2] / name).exists()
            # A damaged copy in the shard: the read falls back to the mirror, and the
            # damaged file is gone (so the next write puts the block back).
            (tmp_path / shard / name[:2] / name).write_bytes(b"garbage")
            assert await router.get(block.id) == block.data
            assert not (tmp_path / shard / name[:2] / name).exists()
            (tmp_path / "mirror" / name[:2] / name).unlink()
            with pytest.raises(BlockNotFound, match="not found"):
                await router.get(block.id)
        only_low = Router.from_routes([Route(0, 0x0F, low)])
        high_block = next(b for b in BLOCKS if b.id[0] > 0x0F)
        with pytest.raises(BlockNotFound, match="no store is routed"):
            await only_low.get(high_block.id)
        await router.close()

    asyncio.run(run())


def test_block_format_follows_rfs() -> None:
    chunk = b"zgrid " * 10_000
    block = encode_block(chunk)
    key = hashlib.blake2b(chunk, digest_size=32).digest()
    assert block.key == key
    assert block.id == hashlib.blake2b(block.data, digest_size=32).digest()
    plain = AESGCM(key).decrypt(key[:12], block.data, None)
    assert bytes(cramjam.snappy.decompress_raw(plain)) == chunk
    assert decode_block(block.id, block.key, block.data) == chunk
    assert encode_block(chunk) == block  # convergent: the same chunk, the same block
    with pytest.raises(BlockError, match="does not match its id"):
        decode_block(block.id, block.key, block.data + b"x")
    other = encode_block(b"other")
    with pytest.raises(BlockError, match="cannot be decrypted"):
        decode_block(block.id, other.key, block.data)


def test_the_fetcher_fetches_a_block_once_and_caches_it_verified(tmp_path: Path) -> None:
    async def fill() -> None:
        store = open_store(f"dir://{tmp_path}/store")
        for block in BLOCKS:
            await store.set(block.id, block.data)

    asyncio.run(fill())
    block = BLOCKS[3]
    cache = tmp_path / "cache"

    async def read_many(url: str) -> list[bytes]:
        fetcher = BlockFetcher(Router.from_routes([Route(0, 255, url)]), cache=cache)
        try:
            return await asyncio.gather(*(fetcher.chunk(block.id, block.key) for _ in range(20)))
        finally:
            await fetcher.close()

    with serving(tmp_path / "store") as (url, counts):
        chunks = asyncio.run(read_many(url))
        assert set(chunks) == {bytes([3]) * 1003}
        assert counts[block.id.hex()] == 1
        # A second fetcher shares the disk cache: no request at all.
        asyncio.run(read_many(url))
        assert counts[block.id.hex()] == 1
        # A damaged cache entry is noticed and fetched again.
        name = block.id.hex()
        (cache / name[:2] / name).write_bytes(b"damaged")
        asyncio.run(read_many(url))
        assert counts[block.id.hex()] == 2


def test_a_cancelled_reader_does_not_fail_the_others(tmp_path: Path) -> None:
    async def fill() -> None:
        store = open_store(f"dir://{tmp_path}/store")
        await store.set(BLOCKS[0].id, BLOCKS[0].data)

    asyncio.run(fill())
    block = BLOCKS[0]

    async def run() -> bytes:
        fetcher = BlockFetcher(Router.from_routes([Route(0, 255, f"dir://{tmp_path}/store")]))
        first = asyncio.create_task(fetcher.chunk(block.id, block.key))
        second = asyncio.create_task(fetcher.chunk(block.id, block.key))
        await asyncio.sleep(0)
        first.cancel()
        return await second

    assert asyncio.run(run()) == bytes([0]) * 1000


def test_an_oversized_block_is_refused_before_decoding() -> None:
    chunk = bytes(BLOCK_SIZE * 3)  # an author can encode any size under their own key
    key = hashlib.blake2b(chunk, digest_size=32).digest()
    data = AESGCM(key).encrypt(key[:12], bytes(cramjam.snappy.compress_raw(chunk)), None)
    with pytest.raises(BlockError, match="decodes to more than"):
        decode_block(hashlib.blake2b(data, digest_size=32).digest(), key, data)
    with pytest.raises(BlockError, match="more than a chunk can make"):
        decode_block(BLOCKS[0].id, BLOCKS[0].key, bytes(MAX_BLOCK_DATA + 1))


def test_a_torn_block_in_a_dir_store_is_removed_and_written_again(tmp_path: Path) -> None:
    """A file under a valid id whose bytes are not the block (torn by a crash, damaged) is
    neither trusted by has() nor served; the next write or copy puts the block back."""
    block = BLOCKS[0]
    url = f"dir://{tmp_path}/store"
    path = tmp_path / "store" / block.id.hex()[:2] / block.id.hex()

    async def scenario() -> None:
        store = open_store(url)
        await store.set(block.id, block.data)
        path.write_bytes(block.data[:-5])  # torn
        fresh = open_store(url)  # a new process: nothing remembered
        assert not await fresh.has(block.id)
        assert not path.exists()
        path.write_bytes(block.data[:-5])
        assert await fresh.get(block.id) is None
        assert not path.exists()
        path.write_bytes(block.data[:-5])
        await fresh.set(block.id, block.data)  # not skipped because a file is there
        assert path.read_bytes() == block.data
        assert await open_store(url).has(block.id)
        # A copy (as pull --blocks makes) replaces a torn one through the router.
        path.write_bytes(b"garbage")
        router = Router([(0, 255, open_store(url))])
        with pytest.raises(BlockNotFound):
            await router.get(block.id)
        await router.set(block.id, block.data)
        assert await router.get(block.id) == block.data

    asyncio.run(scenario())


def test_dir_store_blocks_are_synced_before_they_are_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    async def scenario() -> None:
        await open_store(f"dir://{tmp_path}/store").set(BLOCKS[1].id, BLOCKS[1].data)

    asyncio.run(scenario())
    assert len(synced) >= 2  # the block's bytes, then its directory
    assert [p.name for p in (tmp_path / "store").rglob("*") if p.is_file()] == [BLOCKS[1].id.hex()]


def test_a_zdb_store_makes_a_new_connection_after_losing_one(tmp_path: Path) -> None:
    server = ZdbProcess(tmp_path / "zdb")
    server.start()
    try:

        async def scenario() -> None:
            store = open_store(f"zdb://127.0.0.1:{server.port}")
            await store.set(BLOCKS[2].id, BLOCKS[2].data)
            assert await store.get(BLOCKS[2].id) == BLOCKS[2].data
            server.kill9()
            server.start()
            with pytest.raises(StoreError):
                await store.get(BLOCKS[2].id)  # the old connection is gone ...
            assert await store.get(BLOCKS[2].id) == BLOCKS[2].data  # ... and remade
            await store.close()

        asyncio.run(scenario())
    finally:
        server.stop()
