"""The mount process of a lower: its failures are reported with its own words, and a mount
that takes too long is stopped, not left to appear later."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool
from zgrid.node.errors import NodeError
from zgrid.node.lowermount import LowerMount
from zgrid.node.rootfs import mounts_under


@pytest.fixture
def packed(tmp_path: Path) -> Iterator[Path]:
    """A small .fl under tmp_path; every mount and mount process under it gone after."""
    require_root()
    require_tool("setsid")
    source = tmp_path / "src"
    (source / "etc").mkdir(parents=True)
    (source / "etc/motd").write_text("hi\n")
    flist = tmp_path / "small.fl"
    command = [sys.executable, "-m", "zgrid", "flist", "pack", str(source), "-o", str(flist)]
    subprocess.run([*command, "-s", f"dir://{tmp_path}/store"], check=True, capture_output=True)
    try:
        yield flist
    finally:
        for pid_file in tmp_path.glob("run/*.pid"):
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
        for mount_point in mounts_under(tmp_path):
            subprocess.run(["umount", "-l", str(mount_point)], check=False)
        assert mounts_under(tmp_path) == []


def lower_mount(tmp_path: Path, flist: Path) -> LowerMount:
    return LowerMount(
        flist=flist,
        mount_point=tmp_path / "lowers" / "one",
        pid_file=tmp_path / "run" / "one.pid",
        log_file=tmp_path / "run" / "one.log",
        cache=tmp_path / "blocks",
    )


def test_a_failing_mount_process_is_quoted(packed: Path, tmp_path: Path) -> None:
    mount = lower_mount(tmp_path, tmp_path / "missing.fl")
    with pytest.raises(NodeError, match=r"failed: error: .*missing.fl: no such flist file"):
        asyncio.run(mount.start(sys.executable, timeout=30))
    assert not mount.is_mounted() and mount.server_pid() is None


def test_a_slow_mount_is_stopped_at_its_time_limit(packed: Path, tmp_path: Path) -> None:
    mount = lower_mount(tmp_path, packed)

    async def scenario() -> None:
        with pytest.raises(NodeError, match=r"was not mounted on .* within 0.01 s"):
            await mount.start(sys.executable, timeout=0.01)
        await asyncio.sleep(1.5)  # longer than a mount takes: nothing appears late
        assert not mount.is_mounted()
        await mount.start(sys.executable, timeout=30)
        assert mount.is_served()
        assert (mount.mount_point / "etc/motd").read_text() == "hi\n"
        await mount.stop()
        await mount.stop()
        assert not mount.is_mounted() and mount.server_pid() is None

    asyncio.run(scenario())
