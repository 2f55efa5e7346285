"""Root filesystems: overlay mounts (over a plain directory; over a FUSE flist lower in
test_flists.py) and what /proc/self/mountinfo says is mounted."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool
from zgrid.node.errors import ProvisionError
from zgrid.node.rootfs import (
    is_mount_point,
    mount_overlay,
    mounts_under,
    read_mountinfo,
    unmount,
)

LINE = (
    "46 27 0:40 / /srv/with\\040space/a\\134b ro,nosuid,nodev,relatime shared:1 - fuse.flist "
    "zgrid-flist ro,user_id=0,group_id=0,allow_other"
)
OVERLAY = (
    "51 27 0:41 / /srv/root rw,relatime - overlay overlay "
    "rw,lowerdir=/srv/l1:/srv/l2,upperdir=/srv/v/upper,workdir=/srv/v/work"
)


def test_mountinfo_is_parsed_with_escaped_paths() -> None:
    fuse, overlay = read_mountinfo(f"{LINE}\n{OVERLAY}\nnot a mountinfo line\n")
    assert fuse.mount_point == Path("/srv/with space/a\\b")
    assert (fuse.fstype, fuse.source) == ("fuse.flist", "zgrid-flist")
    assert fuse.super_option("user_id") == "0"
    assert fuse.super_option("absent") is None
    assert overlay.super_option("lowerdir") == "/srv/l1:/srv/l2"
    assert overlay.mount_point == Path("/srv/root")


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A directory whose mounts are all gone after the test, whatever happened."""
    require_root()
    require_tool("mount")
    try:
        yield tmp_path
    finally:
        for mount_point in mounts_under(tmp_path):
            subprocess.run(["umount", "-l", str(mount_point)], check=False)
        assert mounts_under(tmp_path) == []


def tmpfs(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(path)], check=True)


def test_mounts_under_lists_deepest_first_and_reads_odd_names(scratch: Path) -> None:
    odd = scratch / "a dir\twith\\odd"
    tmpfs(odd)
    tmpfs(odd / "inner")
    tmpfs(scratch / "ab")  # a sibling whose name starts like "a dir...", not under it
    assert mounts_under(odd) == [odd / "inner", odd]
    assert set(mounts_under(scratch)) == {odd / "inner", odd, scratch / "ab"}
    assert is_mount_point(odd) and not is_mount_point(scratch)
    asyncio.run(unmount(odd / "inner"))
    asyncio.run(unmount(odd / "inner"))  # nothing there any more: fine
    assert mounts_under(odd) == [odd]


def test_an_overlay_is_mounted_once_and_never_stacked(scratch: Path) -> None:
    lower, other_lower = scratch / "lower", scratch / "other"
    for directory in (lower, other_lower):
        (directory / "etc").mkdir(parents=True)
        (directory / "etc/hostname").write_text("image\n")
    volume, target = scratch / "volume", scratch / "rootfs"

    async def scenario() -> None:
        await mount_overlay(lower, volume, target)
        await mount_overlay(lower, volume, target)
        assert mounts_under(target) == [target]
        (target / "etc/hostname").write_text("box\n")
        assert (volume / "upper/etc/hostname").read_text() == "box\n"
        assert (lower / "etc/hostname").read_text() == "image\n"
        with pytest.raises(
            ProvisionError, match=r"something else mounted on it already \(overlay of overlay\)"
        ):
            await mount_overlay(other_lower, volume, target)
        await unmount(target)
        await unmount(target)
        assert not is_mount_point(target)
        tmpfs(target)
        with pytest.raises(
            ProvisionError, match=r"something else mounted on it already \(tmpfs of tmpfs\)"
        ):
            await mount_overlay(lower, volume, target)
        await unmount(target)
        with pytest.raises(ProvisionError, match="cannot be given to overlayfs"):
            await mount_overlay(scratch / "a,b", volume, target)
        with pytest.raises(ProvisionError, match="cannot mount the container's root"):
            await mount_overlay(scratch / "missing", volume, target)
        assert not is_mount_point(target)

    asyncio.run(scenario())
