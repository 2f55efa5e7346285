"""The zmount primitive on a real DiskPool: provision, repeat, grow, inspect, present, remove."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_root, require_tool
from zgrid.node.disks import DiskPool
from zgrid.node.errors import ProvisionError
from zgrid.node.primitives.base import Primitive, Provisioning, Updatable, WorkloadRef
from zgrid.node.primitives.zmount import ZMountPrimitive
from zgrid.types import Deployment

MiB = 1 << 20


def disk_item(
    kind: str, name: str, size: int, *, twin: int = 7, contract: int = 12
) -> Provisioning:
    doc: dict[str, Any] = {
        "version": 0,
        "twin_id": twin,
        "contract_id": contract,
        "signature_requirement": {
            "requests": [{"twin_id": twin, "required": True, "weight": 1}],
            "weight_required": 1,
            "signatures": [],
        },
        "workloads": [{"version": 0, "name": name, "type": kind, "data": {"size": size}}],
    }
    deployment = Deployment.model_validate(doc)
    return Provisioning(WorkloadRef(twin, contract, name), deployment.workloads[0], deployment)


@pytest.fixture
def zmount_pool(tmp_path: Path) -> Iterator[DiskPool]:
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


def test_zmount_lifecycle(zmount_pool: DiskPool) -> None:
    primitive = ZMountPrimitive(zmount_pool)
    assert isinstance(primitive, Updatable)
    _: Primitive = primitive
    item = disk_item("zmount", "data", 16 * MiB)

    async def scenario() -> None:
        assert await primitive.provision(item) == {"size": 16 * MiB}
        assert await primitive.provision(item) == {"size": 16 * MiB}  # a repeat is a no-op
        assert await primitive.present() == {"7-12-data"}
        assert (await primitive.inspect(item.ref)).exists
        path = zmount_pool.path("7-12-data")
        (path / "kept").write_text("yes")
        grown = disk_item("zmount", "data", 32 * MiB)
        assert await primitive.update(grown) == {"size": 32 * MiB}
        stats = os.statvfs(path)
        assert stats.f_blocks * stats.f_frsize > 28 * MiB
        assert (path / "kept").read_text() == "yes"
        with pytest.raises(ProvisionError, match="shrinking"):
            await primitive.update(item)
        subprocess.run(["umount", str(path)], check=True)
        seen = await primitive.inspect(item.ref)
        assert seen.exists and not seen.healthy and "not mounted" in seen.detail
        await primitive.provision(grown)  # the repair the reconcile loop does
        assert (await primitive.inspect(item.ref)).healthy
        await primitive.deprovision(item.ref)
        await primitive.deprovision(item.ref)
        assert not (await primitive.inspect(item.ref)).exists
        assert await primitive.present() == set()

    asyncio.run(scenario())


def test_zmounts_and_other_disks_of_the_pool_stay_apart(zmount_pool: DiskPool) -> None:
    primitive = ZMountPrimitive(zmount_pool)

    async def scenario() -> None:
        await primitive.provision(disk_item("zmount", "data", 8 * MiB))
        await zmount_pool.create("7-12-web.root", 8 * MiB)  # a zmachine's root volume
        assert await primitive.present() == {"7-12-data"}
        root = WorkloadRef(7, 12, "web.root")
        assert not (await primitive.inspect(root)).exists
        await primitive.deprovision(root)  # not a zmount: left alone
        assert zmount_pool.is_mounted("7-12-web.root")
        with pytest.raises(ProvisionError, match="is not a zmount"):
            await primitive.provision(disk_item("volume", "vol", 8 * MiB))

    asyncio.run(scenario())
