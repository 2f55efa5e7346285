"""DiskPool against the real kernel: sparse images, loop mounts, size limits, crash repeats."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool
from zgrid.node.disks import DiskPool
from zgrid.node.errors import CapacityExceeded, ProvisionError

MiB = 1 << 20


def sh(*argv: str, check: bool = True) -> str:
    """A system tool run synchronously (also from inside a scenario's event loop)."""
    done = subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60)
    return done.stdout


def loops_of(image: Path) -> list[str]:
    return [line for line in sh("losetup", "-j", str(image), check=False).splitlines() if line]


def mounted_under(root: Path) -> list[str]:
    return [
        line for line in Path("/proc/self/mounts").read_text().splitlines() if str(root) in line
    ]


def clean_pool(pool: DiskPool) -> None:
    async def remove_all() -> None:
        for disk_id in await pool.ids():
            await pool.remove(disk_id)

    asyncio.run(remove_all())
    for line in mounted_under(pool.root):  # a failed test may leave a mount the pool forgot
        subprocess.run(["umount", "-l", line.split()[1]], check=False)


@pytest.fixture
def disk_pool(tmp_path: Path) -> Iterator[DiskPool]:
    require_root()
    for tool in ("mkfs.ext4", "resize2fs", "e2fsck", "losetup", "mount"):
        require_tool(tool)
    pool = DiskPool(tmp_path / "disks", scope=str(tmp_path))
    try:
        yield pool
    finally:
        clean_pool(pool)


def fill(directory: Path, size: int) -> int:
    """Write up to ``size`` bytes into a file there; return what was written before ENOSPC."""
    written = 0
    chunk = b"\xa5" * MiB
    with (directory / "fill").open("wb") as file:
        try:
            while written < size:
                written += file.write(chunk)
                file.flush()
                os.fsync(file.fileno())
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
            return written
    return written


def test_create_is_sparse_mounted_enforced_and_repeatable(disk_pool: DiskPool) -> None:
    async def scenario() -> None:
        path = await disk_pool.create("7-12-data", 64 * MiB, kind="zmount")
        assert path == disk_pool.path("7-12-data") and disk_pool.is_mounted("7-12-data")
        image = disk_pool.image("7-12-data")
        assert image.stat().st_size == 64 * MiB
        assert image.stat().st_blocks * 512 < 8 * MiB  # sparse: no zeros written
        assert len(loops_of(image)) == 1
        assert await disk_pool.create("7-12-data", 64 * MiB, kind="zmount") == path
        assert len(loops_of(image)) == 1
        written = await asyncio.to_thread(fill, path, 100 * MiB)
        assert 50 * MiB < written <= 64 * MiB  # ENOSPC at the size, not at the host's
        assert await disk_pool.used_bytes("7-12-data") >= 50 * MiB
        assert await disk_pool.ids() == {"7-12-data"}
        assert await disk_pool.ids(kind="zmount") == {"7-12-data"}
        assert await disk_pool.ids(kind="volume") == set()
        with pytest.raises(ProvisionError, match="already exists as a zmount"):
            await disk_pool.create("7-12-data", 64 * MiB, kind="volume")

    asyncio.run(scenario())


def test_remount_after_reboot_keeps_data(disk_pool: DiskPool) -> None:
    async def scenario() -> None:
        path = await disk_pool.create("7-12-keep", 16 * MiB)
        (path / "note").write_text("kept")
        image = disk_pool.image("7-12-keep")
        sh("umount", str(path))  # what a reboot leaves: the image, no mount
        assert not disk_pool.is_mounted("7-12-keep") and loops_of(image) == []
        assert await disk_pool.create("7-12-keep", 16 * MiB) == path
        assert (path / "note").read_text() == "kept"
        assert len(loops_of(image)) == 1

    asyncio.run(scenario())


def test_grow_keeps_data_and_shrink_is_refused(disk_pool: DiskPool) -> None:
    async def scenario() -> None:
        path = await disk_pool.create("7-12-grow", 16 * MiB)
        (path / "note").write_text("kept")
        before = os.statvfs(path).f_blocks * os.statvfs(path).f_frsize
        await disk_pool.create("7-12-grow", 48 * MiB)
        after = os.statvfs(path).f_blocks * os.statvfs(path).f_frsize
        assert after > before + 28 * MiB
        assert (path / "note").read_text() == "kept"
        assert disk_pool.size("7-12-grow") == 48 * MiB
        assert len(loops_of(disk_pool.image("7-12-grow"))) == 1
        with pytest.raises(ProvisionError, match=r"shrinking it to 16\.0 MiB is refused"):
            await disk_pool.create("7-12-grow", 16 * MiB)
        assert disk_pool.is_mounted("7-12-grow")

    asyncio.run(scenario())


def test_grow_of_a_disk_in_use_elsewhere_is_refused_or_done_online(
    disk_pool: DiskPool, tmp_path: Path
) -> None:
    async def scenario() -> None:
        path = await disk_pool.create("7-12-busy", 16 * MiB)
        bind = tmp_path / "bind"
        bind.mkdir()
        sh("mount", "--bind", str(path), str(bind))  # as a container holds it
        try:
            try:
                await disk_pool.create("7-12-busy", 32 * MiB)
            except ProvisionError as exc:
                assert "while it is in use" in str(exc)
            else:  # the kernel allowed an online resize
                assert os.statvfs(bind).f_blocks * os.statvfs(bind).f_frsize > 20 * MiB
            assert disk_pool.is_mounted("7-12-busy")
        finally:
            sh("umount", str(bind))

    asyncio.run(scenario())


def test_remove_is_idempotent_and_leaves_nothing(disk_pool: DiskPool) -> None:
    async def scenario() -> None:
        path = await disk_pool.create("7-12-gone", 16 * MiB)
        image = disk_pool.image("7-12-gone")
        sh("umount", str(path))
        (path / "stray").write_text("written while it was not mounted")
        await disk_pool.remove("7-12-gone")
        await disk_pool.remove("7-12-gone")
        await disk_pool.remove("never-made")
        assert not path.exists() and not image.exists() and loops_of(image) == []
        assert await disk_pool.ids() == set()
        assert mounted_under(disk_pool.root) == []

    asyncio.run(scenario())


def test_stale_loop_and_partial_image_are_cleaned(disk_pool: DiskPool) -> None:
    async def scenario() -> None:
        await disk_pool.create("7-12-stale", 16 * MiB)
        image = disk_pool.image("7-12-stale")
        sh("umount", str(disk_pool.path("7-12-stale")))
        # A loop attached without autoclear, as a crashed attach could leave one.
        sh("losetup", "-f", str(image))
        assert len(loops_of(image)) == 1
        await disk_pool.create("7-12-stale", 16 * MiB)
        assert len(loops_of(image)) == 1 and disk_pool.is_mounted("7-12-stale")
        partial = image.with_name("7-12-half.img.partial")  # mkfs killed halfway
        partial.write_bytes(b"junk")
        await disk_pool.create("7-12-half", 16 * MiB)
        assert not partial.exists() and disk_pool.is_mounted("7-12-half")

    asyncio.run(scenario())


def test_bad_ids_and_sizes_are_clear_errors(disk_pool: DiskPool) -> None:
    async def scenario() -> None:
        for bad in ("../x", "a/b", "", "..", "white space"):
            with pytest.raises(ProvisionError, match="invalid disk id"):
                await disk_pool.create(bad, 16 * MiB)
        with pytest.raises(ProvisionError, match=r"at least 4\.0 MiB"):
            await disk_pool.create("7-12-tiny", 1000)

    asyncio.run(scenario())


def test_no_room_on_the_node_is_a_capacity_error(tmp_path: Path) -> None:
    require_root()
    small = tmp_path / "small"
    small.mkdir()
    sh("mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(small))
    pool = DiskPool(small / "disks", scope="small")
    try:
        with pytest.raises(CapacityExceeded, match=r"not enough disk space on the node: asks 64"):
            asyncio.run(pool.create("7-12-big", 64 * MiB))
        assert asyncio.run(pool.create("7-12-fits", 8 * MiB)) == pool.path("7-12-fits")
        with pytest.raises(CapacityExceeded, match="not enough disk space"):
            asyncio.run(pool.create("7-12-fits", 64 * MiB))
    finally:
        clean_pool(pool)
        sh("umount", str(small))


_CREATE = """
import asyncio, sys
from pathlib import Path
from zgrid.node.disks import DiskPool
pool = DiskPool(Path(sys.argv[1]), scope="crash")
asyncio.run(pool.create("7-12-crash", int(sys.argv[2])))
"""


def test_kill_9_at_any_step_converges_without_leaks(disk_pool: DiskPool) -> None:
    image = disk_pool.image("7-12-crash")

    def start(size: int) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-c", _CREATE, str(disk_pool.root), str(size)]
        return subprocess.Popen(argv, start_new_session=True)

    began = time.monotonic()
    assert start(16 * MiB).wait(timeout=60) == 0
    whole = time.monotonic() - began  # interpreter start included: kills spread over it
    asyncio.run(disk_pool.remove("7-12-crash"))
    sizes = [16 * MiB] * 6 + [24 * MiB] * 3 + [32 * MiB] * 3
    for attempt, size in enumerate(sizes):
        process = start(size)
        time.sleep(whole * (0.5 + 0.5 * (attempt % 6) / 5))
        os.killpg(process.pid, signal.SIGKILL)  # the tools it started die with it
        process.wait()
        if attempt % 2 and disk_pool.is_mounted("7-12-crash"):
            sh("umount", str(disk_pool.path("7-12-crash")))  # and a reboot on top
        path = asyncio.run(disk_pool.create("7-12-crash", size))
        assert disk_pool.is_mounted("7-12-crash") and path.is_dir()
        assert len(loops_of(image)) == 1, loops_of(image)
        assert disk_pool.size("7-12-crash") == size
        assert not image.with_name(image.name + ".partial").exists()
    asyncio.run(disk_pool.remove("7-12-crash"))
    assert loops_of(image) == [] and mounted_under(disk_pool.root) == []
