"""Packing a busybox root filesystem and unpacking it again, through the `zgrid` command:
the console script unpacks once, the other commands run in-process (``zgrid.cli.main``,
the same command and output without a Python start-up each)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from tests.conftest import require_root
from tests.flist.rootfs import BIG_SIZE, assert_same_tree, build_busybox_root
from tests.processes import run_zgrid, zgrid_here
from zgrid.flist import BLOCK_SIZE, FlistReader, Router, StoreError, open_store, pack_directory


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    root = tmp_path_factory.mktemp("rootfs") / "root"
    build_busybox_root(root)
    return root


def pack(
    source: Path, output: Path, *stores: str, extra: tuple[str, ...] = ()
) -> dict[str, object]:
    args = ["flist", "pack", str(source), "-o", str(output), "--json", *extra]
    for store in stores:
        args += ["--store", store]
    result = zgrid_here(*args)
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def block_files(store: Path) -> set[str]:
    return {path.name for path in store.rglob("*") if path.is_file()}


def test_unpack_gives_back_the_same_tree(rootfs: Path, tmp_path: Path) -> None:
    flist = tmp_path / "busybox.fl"
    report = pack(rootfs, flist, f"dir://{tmp_path}/store", extra=("--tag", "os=busybox"))
    assert report["tags"] == {"os": "busybox"}
    result = run_zgrid(
        "flist",
        "unpack",
        str(flist),
        str(tmp_path / "out"),
        "--json",
        "--allow-setuid",
        "--allow-devices",
    )
    assert result.returncode == 0, result.stderr
    assert_same_tree(rootfs, tmp_path / "out")
    unpacked = json.loads(result.stdout)
    assert unpacked["bytes"] == report["bytes"]


def test_the_flist_keeps_rfs_layout(rootfs: Path, tmp_path: Path) -> None:
    flist = tmp_path / "busybox.fl"
    pack(rootfs, flist, f"dir://{tmp_path}/store")
    with FlistReader(flist) as reader:
        root = reader.inode(1)
        assert root is not None
        assert (root.parent, root.name) == (0, "/")
        big = reader.lookup(reader.lookup(1, "data").ino, "big")  # type: ignore[union-attr]
        assert big is not None
        assert big.size == BIG_SIZE
        assert len(reader.blocks(big.ino)) == -(-BIG_SIZE // BLOCK_SIZE)
        sh = reader.lookup(reader.lookup(1, "bin").ino, "sh")  # type: ignore[union-attr]
        assert sh is not None
        assert reader.extra(sh.ino) == b"busybox"
        assert [r.url for r in reader.routes()] == [f"dir://{tmp_path}/store"]
    for id_, _key in FlistReader(flist).all_blocks():
        name = id_.hex()
        assert (tmp_path / "store" / name[:2] / name).is_file()


def test_repacking_stores_only_changed_blocks(rootfs: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = pack(rootfs, tmp_path / "a.fl", f"dir://{store}")
    before = block_files(store)
    assert len(before) == first["unique_blocks"]

    pack(rootfs, tmp_path / "b.fl", f"dir://{store}")
    assert block_files(store) == before

    variant = tmp_path / "variant"
    unpacked = zgrid_here(
        "flist", "unpack", str(tmp_path / "a.fl"), str(variant), "--allow-setuid", "--allow-devices"
    )
    assert unpacked.returncode == 0, unpacked.stderr
    big = variant / "data/big"
    content = bytearray(big.read_bytes())
    content[BLOCK_SIZE + 10] ^= 0xFF  # one byte in the second block
    big.write_bytes(bytes(content))
    pack(variant, tmp_path / "c.fl", f"dir://{store}")
    grown = block_files(store) - before
    assert len(grown) == 1
    assert len(block_files(store)) == len(before) + 1


def test_replicated_and_sharded_stores(rootfs: Path, tmp_path: Path) -> None:
    low, high, mirror = tmp_path / "low", tmp_path / "high", tmp_path / "mirror"
    report = pack(
        rootfs,
        tmp_path / "x.fl",
        f"00-7f=dir://{low}",
        f"80-ff=dir://{high}",
        f"00-ff=dir://{mirror}",
    )
    assert all(int(name[:2], 16) < 0x80 for name in block_files(low))
    assert all(int(name[:2], 16) >= 0x80 for name in block_files(high))
    assert block_files(low) | block_files(high) == block_files(mirror)
    assert len(block_files(mirror)) == report["unique_blocks"]
    # Lose one shard: reads fall back to the mirror.
    for path in low.rglob("*"):
        if path.is_file():
            os.unlink(path)
    result = zgrid_here(
        "flist",
        "unpack",
        str(tmp_path / "x.fl"),
        str(tmp_path / "out"),
        "--allow-setuid",
        "--allow-devices",
    )
    assert result.returncode == 0, result.stderr
    assert_same_tree(rootfs, tmp_path / "out")


def test_inspect_shows_tags_routes_and_paths(rootfs: Path, tmp_path: Path) -> None:
    flist = tmp_path / "x.fl"
    pack(rootfs, flist, "dir:///nowhere", extra=("--tag", "a=1"))
    result = zgrid_here("flist", "inspect", str(flist), "--tree", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["tags"] == {"a": "1"}
    assert document["routes"] == [{"start": 0, "end": 255, "url": "dir:///nowhere"}]
    paths = {item["path"] for item in document["paths"]}
    assert {"/", "/bin/busybox", "/dev/null", "/data/fifo"} <= paths
    text = zgrid_here("flist", "inspect", str(flist))
    assert "tag a = 1" in text.stdout


def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    cases = [
        (["flist", "pack", str(tmp_path / "src"), "-o", str(tmp_path / "x.fl")], "--store"),
        (
            ["flist", "pack", str(tmp_path / "nope"), "-o", "x.fl", "-s", "dir:///tmp/s"],
            "no such directory",
        ),
        (["flist", "pack", str(tmp_path / "src"), "-o", "x.fl", "-s", "ftp://x"], "scheme"),
        (["flist", "pack", str(tmp_path / "src"), "-o", "x.fl", "-s", "f0-0f=dir:///a"], "range"),
        (
            ["flist", "pack", str(tmp_path / "src"), "-o", "x.fl", "-s", "dir:///a", "-t", "x"],
            "key=value",
        ),
        (["flist", "unpack", str(tmp_path / "missing.fl"), str(tmp_path / "o")], "no such flist"),
        (["flist", "inspect", str(tmp_path / "src")], "no such flist"),
    ]
    (tmp_path / "junk.fl").write_bytes(b"not sqlite at all" * 100)
    cases.append((["flist", "inspect", str(tmp_path / "junk.fl")], "not an flist"))
    for args, message in cases:
        result = zgrid_here(*args)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_a_failed_upload_stops_the_pack_and_is_raised_as_itself(tmp_path: Path) -> None:
    """Blocks go to a read-only store: the pack ends with that store's error (not a group
    of errors), leaves no .fl behind, and no upload is left running."""
    source = tmp_path / "src"
    source.mkdir()
    for index in range(20):
        (source / f"f{index}").write_bytes(os.urandom(70_000))
    router = Router([(0, 255, open_store("http://127.0.0.1:9/blocks"))])
    output = tmp_path / "out.fl"

    async def run() -> None:
        try:
            with pytest.raises(StoreError, match="read-only"):
                await pack_directory(source, output, router, parallel=2)
            left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            assert left == []
        finally:
            await router.close()

    asyncio.run(run())
    assert not output.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["src"]
