"""The lazy FUSE mount: run busybox from inside it, fetch blocks on first read, once."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool
from tests.flist.blockserver import serving
from tests.flist.rootfs import build_busybox_root, describe
from tests.processes import ZGRID, ServerProcess, run_zgrid
from zgrid.flist import BLOCK_SIZE


class MountProcess(ServerProcess):
    name = "flist mount"

    def __init__(self, flist: Path, mountpoint: Path, cache: Path, *extra: str) -> None:
        self.flist, self.mountpoint, self.cache, self.extra = flist, mountpoint, cache, extra
        mountpoint.mkdir(parents=True, exist_ok=True)
        super().__init__(mountpoint.parent / f"{mountpoint.name}.log")

    def argv(self) -> list[str]:
        return [
            ZGRID,
            "flist",
            "mount",
            str(self.flist),
            str(self.mountpoint),
            "--cache",
            str(self.cache),
            *self.extra,
        ]

    def answers(self) -> bool:
        return os.path.ismount(self.mountpoint)


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(source tree, .fl, block store directory)."""
    require_root()
    require_tool("fusermount3")
    if not os.path.exists("/dev/fuse"):
        pytest.fail("no /dev/fuse")
    base = tmp_path_factory.mktemp("mount")
    root = base / "root"
    build_busybox_root(root)
    flist = base / "busybox.fl"
    result = run_zgrid("flist", "pack", str(root), "-o", str(flist), "-s", f"dir://{base}/store")
    assert result.returncode == 0, result.stderr
    return root, flist, base / "store"


@pytest.fixture
def mounted(packed: tuple[Path, Path, Path], tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(mountpoint, cache) of a fresh mount with a cold cache."""
    _, flist, _ = packed
    process = MountProcess(flist, tmp_path / "mnt", tmp_path / "cache")
    process.start()
    try:
        yield process.mountpoint, process.cache
    finally:
        process.stop()
        if os.path.ismount(process.mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", str(process.mountpoint)], check=False)


def cached_blocks(cache: Path) -> int:
    return sum(1 for path in cache.rglob("*") if path.is_file()) if cache.exists() else 0


def test_busybox_runs_from_the_mount(
    mounted: tuple[Path, Path], packed: tuple[Path, Path, Path]
) -> None:
    mountpoint, _ = mounted
    root = packed[0]
    echo = subprocess.run(
        ["chroot", str(mountpoint), "/bin/echo", "hello from the flist"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert echo.returncode == 0, echo.stderr
    assert echo.stdout == "hello from the flist\n"
    md5 = subprocess.run(
        ["chroot", str(mountpoint), "/bin/sh", "-c", "md5sum /data/big"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert md5.stdout.split()[0] == hashlib.md5((root / "data/big").read_bytes()).hexdigest()


def test_the_mount_shows_the_packed_tree(
    mounted: tuple[Path, Path], packed: tuple[Path, Path, Path]
) -> None:
    mountpoint, _ = mounted
    expected, actual = describe(packed[0]), describe(mountpoint)
    # The mount shows each hardlink as its own inode; everything else is the same.
    expected.pop("<hardlinks>")
    actual.pop("<hardlinks>")
    assert sorted(actual) == sorted(expected)
    for path, value in expected.items():
        assert actual[path] == value, path


def test_blocks_are_fetched_on_first_read_only(mounted: tuple[Path, Path]) -> None:
    mountpoint, cache = mounted
    assert cached_blocks(cache) == 0
    with open(mountpoint / "data/big", "rb") as handle:
        assert len(handle.read(10)) == 10
    assert cached_blocks(cache) == 1  # the first block of one file, nothing else
    with open(mountpoint / "data/big", "rb") as handle:
        handle.seek(2 * BLOCK_SIZE + 5)
        handle.read(100)
    assert cached_blocks(cache) == 2
    with pytest.raises(OSError):
        (mountpoint / "data/new").write_text("no")


def test_concurrent_reads_of_a_block_fetch_it_once(
    packed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, flist, store = packed
    with serving(store) as (url, counts):
        process = MountProcess(flist, tmp_path / "mnt", tmp_path / "cache", "--store", url)
        process.start()
        try:
            big = process.mountpoint / "data/big"
            results: list[bytes] = []

            def read() -> None:
                with open(big, "rb", buffering=0) as handle:
                    handle.seek(BLOCK_SIZE)
                    results.append(handle.read(4096))

            threads = [threading.Thread(target=read) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(set(results)) == 1 and len(results) == 8
            assert sum(counts.values()) == 1
            assert max(counts.values()) == 1
        finally:
            process.stop()


def test_a_missing_block_is_an_io_error(packed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, flist, _ = packed
    empty = tmp_path / "empty-store"
    empty.mkdir()
    process = MountProcess(flist, tmp_path / "mnt", tmp_path / "cache", "--store", f"dir://{empty}")
    process.start()
    try:
        with pytest.raises(OSError) as caught:
            (process.mountpoint / "data/big").read_bytes()
        assert caught.value.errno == 5  # EIO, not a hang
        assert (process.mountpoint / "bin").is_dir()  # metadata needs no block
    finally:
        process.stop()
    assert not os.path.ismount(process.mountpoint)
    assert "is in no store" in process.log.read_text()


def test_sigterm_unmounts(packed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    process = MountProcess(packed[1], tmp_path / "mnt", tmp_path / "cache")
    process.start()
    assert process.process is not None
    process.process.send_signal(signal.SIGTERM)
    assert process.process.wait(timeout=10) == 0
    assert not os.path.ismount(process.mountpoint)
