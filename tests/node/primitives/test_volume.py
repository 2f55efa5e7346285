"""The volume primitive: the same disks as zmounts, of their own kind."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool
from tests.node.primitives.test_zmount import MiB, disk_item
from zgrid.node.disks import DiskPool
from zgrid.node.primitives.base import Updatable
from zgrid.node.primitives.volume import VolumePrimitive
from zgrid.node.primitives.zmount import ZMountPrimitive


@pytest.fixture
def volume_pool(tmp_path: Path) -> Iterator[DiskPool]:
    require_root()
    for tool in ("mkfs.ext4", "resize2fs", "e2fsck", "losetup", "mount"):
        require_tool(tool)
    pool = DiskPool(tmp_path / "disks", scope=str(tmp_path))
    try:
        yield pool
    finally:

        async def remove_all() -> None:
            for disk_id in await pool.ids():
                await pool.remove(disk_id)

        asyncio.run(remove_all())


def test_volume_lifecycle_apart_from_zmounts(volume_pool: DiskPool) -> None:
    volumes = VolumePrimitive(volume_pool)
    zmounts = ZMountPrimitive(volume_pool)
    assert isinstance(volumes, Updatable)
    item = disk_item("volume", "vol", 8 * MiB)

    async def scenario() -> None:
        assert await volumes.provision(item) == {"size": 8 * MiB}
        await zmounts.provision(disk_item("zmount", "disk", 8 * MiB))
        assert await volumes.present() == {"7-12-vol"}
        assert await zmounts.present() == {"7-12-disk"}
        assert await volumes.update(disk_item("volume", "vol", 16 * MiB)) == {"size": 16 * MiB}
        assert volume_pool.size("7-12-vol") == 16 * MiB
        await zmounts.deprovision(item.ref)  # a zmount primitive never removes a volume
        assert (await volumes.inspect(item.ref)).healthy
        await volumes.deprovision(item.ref)
        assert await volumes.present() == set()
        assert await zmounts.present() == {"7-12-disk"}

    asyncio.run(scenario())
