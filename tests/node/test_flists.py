"""Container images from a real hub: download, one shared FUSE lower per flist, overlays on
it, clear errors, and recovery from a killed mount process and from a reboot."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool
from tests.node.flisthub import HubWithFlist, running_hub_with_busybox
from tests.processes import free_port
from zgrid.flist.hub import limits
from zgrid.node.errors import ProvisionError
from zgrid.node.flists import MAX_FLIST_BYTES, FlistManager, ImageConfig, Lower
from zgrid.node.rootfs import is_mount_point, lower_is_dead, mount_overlay, mounts_under, unmount

Scenario = Callable[[FlistManager], Awaitable[None]]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubWithFlist]:
    require_root()
    for tool in ("setsid", "umount", "mount"):
        require_tool(tool)
    if not os.path.exists("/dev/fuse"):
        pytest.fail("no /dev/fuse")
    with running_hub_with_busybox(tmp_path_factory.mktemp("flisthub")) as hub:
        yield hub


def force_cleanup(root: Path) -> None:
    """Whatever a failed test left: every mount process killed, every mount under root gone."""
    for pid_file in root.glob("**/run/*.pid"):
        with contextlib.suppress(ValueError, OSError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    for mount_point in mounts_under(root):
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Callable[[Scenario], None]]:
    """Runs a scenario against a fresh manager (in its own event loop), then unmounts every
    overlay and lower it left, also when it failed."""
    root = tmp_path / "node"
    managers: list[FlistManager] = []

    def run(scenario: Scenario) -> None:
        async def main() -> None:
            manager = FlistManager(root / "flists", scope="test", mount_timeout=20)
            managers.append(manager)
            try:
                await scenario(manager)
            finally:
                await manager.aclose()

        asyncio.run(main())

    try:
        yield run
    finally:

        async def tidy() -> None:
            for target in mounts_under(root / "targets"):
                await unmount(target)
            manager = FlistManager(root / "flists", scope="test")
            await manager.sweep(set())

        try:
            asyncio.run(tidy())
        finally:
            force_cleanup(root)
        assert mounts_under(root) == []
        assert not any(Path("/proc", pid, "cmdline").exists() for pid in _mount_pids(root))


def _mount_pids(root: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if str(root).encode() in (entry / "cmdline").read_bytes():
                    found.append(entry.name)
    return found


def read(path: Path) -> bytes:
    return path.read_bytes()


def kill_server(manager: FlistManager, lower: Lower) -> None:
    """kill -9 the process serving ``lower``, and wait until it is gone."""
    pid = int((manager.root / "run" / f"{lower.hash}.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.01)
    raise AssertionError(f"mount process {pid} outlived kill -9")


def test_a_pushed_flist_mounts_once_and_reads_right(
    published: HubWithFlist, node: Callable[[Scenario], None]
) -> None:
    source = published.source

    async def scenario(manager: FlistManager) -> None:
        stale = manager.root / "fl" / ".999999999.0badcafe.part"  # a crashed download's
        stale.parent.mkdir(parents=True)
        stale.write_bytes(b"half")
        started = time.perf_counter()
        first = await manager.lower(published.flist_url)
        assert not stale.exists()
        cold = time.perf_counter() - started
        assert first.hash == published.flist_hash
        assert first.config == ImageConfig()  # packed from a directory: no tags
        assert read(first.path / "etc/passwd") == read(source / "etc/passwd")
        assert read(first.path / "bin/busybox") == read(source / "bin/busybox")
        assert os.readlink(first.path / "bin/sh") == "busybox"
        started = time.perf_counter()
        again, *parallel = await asyncio.gather(
            *(manager.lower(published.flist_url) for _ in range(3))
        )
        warm = time.perf_counter() - started
        assert {again.path, *(p.path for p in parallel)} == {first.path}
        pinned_started = time.perf_counter()
        pinned = await manager.lower(published.flist_url, pinned=first.hash)
        pinned_warm = time.perf_counter() - pinned_started
        assert pinned == first
        assert await manager.mounted() == {first.hash: first.path}
        assert len(_mount_pids(manager.root)) == 1
        # A restarted daemon (a new manager on the same root) finds the mount still served.
        serving = _mount_pids(manager.root)
        restarted = FlistManager(manager.root, scope="test")
        started = time.perf_counter()
        found = await restarted.lower(published.flist_url, pinned=first.hash)
        after_restart = time.perf_counter() - started
        assert found == first
        assert _mount_pids(manager.root) == serving
        print(f"lower() by a restarted daemon, mount alive: {after_restart:.3f} s")
        print(
            f"lower(): cold {cold:.3f} s, warm by URL x3 {warm:.3f} s, pinned {pinned_warm:.4f} s"
        )

    node(scenario)


def test_overlay_writes_land_in_the_volume_and_the_lower_stays(
    published: HubWithFlist, node: Callable[[Scenario], None], tmp_path: Path
) -> None:
    volume = tmp_path / "node" / "volumes" / "one"
    target = tmp_path / "node" / "targets" / "one"
    original = read(published.source / "etc/passwd")

    async def scenario(manager: FlistManager) -> None:
        lower = await manager.lower(published.flist_url)
        await mount_overlay(lower.path, volume, target)
        await mount_overlay(lower.path, volume, target)  # a repeat changes nothing
        assert mounts_under(target) == [target]
        (target / "etc/passwd").write_bytes(b"changed\n")
        (target / "data/new").write_text("new\n")
        (target / "bin/ls").unlink()
        assert read(volume / "upper/etc/passwd") == b"changed\n"
        assert (volume / "upper/data/new").read_text() == "new\n"
        assert read(lower.path / "etc/passwd") == original
        assert (lower.path / "bin/ls").is_symlink()
        assert not await manager.unmount(lower.hash)  # the overlay still uses it
        assert is_mount_point(lower.path)
        await unmount(target)
        await unmount(target)
        assert not is_mount_point(target)
        # The same upper over a freshly mounted lower: the container's changes are back.
        assert await manager.unmount(lower.hash)
        lower = await manager.lower(published.flist_url)
        await mount_overlay(lower.path, volume, target)
        assert read(target / "etc/passwd") == b"changed\n"
        assert not (target / "bin/ls").exists()
        await unmount(target)

    node(scenario)


def test_a_missing_flist_names_the_url_and_the_404(
    published: HubWithFlist, node: Callable[[Scenario], None]
) -> None:
    url = f"{published.url}/flists/{published.twin.twin_id}/nope.fl"

    async def scenario(manager: FlistManager) -> None:
        with pytest.raises(ProvisionError) as caught:
            await manager.lower(url)
        assert str(caught.value) == f"flist {url} not found on hub (404)"

    node(scenario)


def test_an_unreachable_hub_and_a_non_flist_are_told_plainly(
    published: HubWithFlist, node: Callable[[Scenario], None]
) -> None:
    port = free_port()

    async def scenario(manager: FlistManager) -> None:
        with pytest.raises(ProvisionError) as caught:
            await manager.lower(f"http://127.0.0.1:{port}/flists/1/web.fl")
        assert (
            str(caught.value)
            == f"cannot reach the hub at http://127.0.0.1:{port}: connection refused"
        )
        with pytest.raises(ProvisionError) as caught:
            await manager.lower(f"{published.url}/health")
        assert str(caught.value).startswith(f"{published.url}/health is not an flist: ")
        with pytest.raises(ProvisionError, match="is not an http"):
            await manager.lower("file:///etc/passwd")
        with pytest.raises(ProvisionError, match="is not a valid URL"):
            await manager.lower("http://[::1/flists/1/x.fl")
        with pytest.raises(ProvisionError, match="is not an flist hash"):
            await manager.lower(published.flist_url, pinned="abc")
        assert list((manager.root / "fl").glob("*")) == []  # nothing half-downloaded kept

    node(scenario)


def test_a_killed_mount_process_is_remounted(
    published: HubWithFlist, node: Callable[[Scenario], None], tmp_path: Path
) -> None:
    volume = tmp_path / "node" / "volumes" / "one"
    target = tmp_path / "node" / "targets" / "one"

    async def scenario(manager: FlistManager) -> None:
        lower = await manager.lower(published.flist_url)
        await mount_overlay(lower.path, volume, target)
        read(target / "bin/busybox")
        assert not await lower_is_dead(target)
        kill_server(manager, lower)
        deadline = time.monotonic() + 5
        while True:
            try:
                os.listdir(lower.path)  # stat may be answered from the kernel's caches
            except OSError as exc:
                assert exc.errno in (errno.ENOTCONN, errno.ECONNABORTED)
                break
            assert time.monotonic() < deadline, "the mount outlived its process"
            await asyncio.sleep(0.02)
        started = time.perf_counter()
        again = await manager.lower(published.flist_url, pinned=lower.hash)
        remount = time.perf_counter() - started
        assert again.path == lower.path
        assert read(again.path / "etc/passwd") == read(published.source / "etc/passwd")
        assert len(_mount_pids(manager.root)) == 1
        print(f"lower() after kill -9 of the mount (blocks cached): {remount:.3f} s")
        # The overlay still holds the dead mount: it is told, and mounted anew.
        assert await lower_is_dead(target)
        await unmount(target)
        await mount_overlay(again.path, volume, target)
        assert not await lower_is_dead(target)
        assert read(target / "etc/passwd") == read(published.source / "etc/passwd")
        await unmount(target)

    node(scenario)


def test_after_a_reboot_the_cached_flist_mounts_with_the_hub_down(
    published: HubWithFlist, node: Callable[[Scenario], None]
) -> None:
    hashes: list[str] = []

    async def before(manager: FlistManager) -> None:
        lower = await manager.lower(published.flist_url)
        hashes.append(lower.hash)
        for path in ("bin/busybox", "etc/passwd", "data/big"):
            read(lower.path / path)  # a running container has read what it uses
        kill_server(manager, lower)  # the machine goes down

    async def after(manager: FlistManager) -> None:
        for url, pinned in ((published.flist_url, None), (published.flist_url, hashes[0])):
            started = time.perf_counter()
            lower = await manager.lower(url, pinned=pinned)
            took = time.perf_counter() - started
            assert lower.hash == hashes[0]
            assert read(lower.path / "data/big") == read(published.source / "data/big")
            assert read(lower.path / "bin/busybox") == read(published.source / "bin/busybox")
            print(f"lower() from cache, hub down, pinned={pinned is not None}: {took:.3f} s")
            kill_server(manager, lower)

    node(before)
    published.hub.stop()
    try:
        node(after)
    finally:
        published.hub.start()


def test_a_workload_keeps_its_image_and_sweep_drops_unused_ones(
    published: HubWithFlist, node: Callable[[Scenario], None], tmp_path: Path
) -> None:
    trees = []
    for version in ("one", "two"):
        tree = tmp_path / version
        (tree / "etc").mkdir(parents=True)
        (tree / "etc/version").write_text(version)
        trees.append(tree)
    url, first_hash = published.push(trees[0], "app.fl")
    tags = {"entrypoint": '["/bin/sh","-c"]', "cmd": '["echo hi"]', "env": '["A=1","PATH=/bin"]'}
    tags["workdir"] = "/data"
    hashes: list[str] = []

    async def scenario(manager: FlistManager) -> None:
        first = await manager.lower(url)
        assert first.hash == first_hash
        hashes.append((await published.apush(trees[1], "app.fl", tags))[1])
        newer = await manager.lower(url)
        assert newer.hash == hashes[0] != first.hash
        assert (newer.path / "etc/version").read_text() == "two"
        assert newer.config == ImageConfig(
            entrypoint=("/bin/sh", "-c"),
            cmd=("echo hi",),
            env=(("A", "1"), ("PATH", "/bin")),
            workdir="/data",
        )
        kept = await manager.lower(url, pinned=first.hash)
        assert kept == first
        assert (kept.path / "etc/version").read_text() == "one"
        # The old image's workload is gone: sweep drops its lower, keeps the one in use.
        assert set(await manager.mounted()) == {first.hash, newer.hash}
        assert await manager.sweep({newer.hash}) == [first.hash]
        assert await manager.mounted() == {newer.hash: newer.path}
        assert not is_mount_point(first.path)
        assert len(_mount_pids(manager.root)) == 1
        assert await manager.sweep({newer.hash}) == []

    async def elsewhere(manager: FlistManager) -> None:
        # A node without the old .fl cannot get it: the hub serves the name's latest push
        # only, and the workload is never switched to it silently.
        with pytest.raises(ProvisionError) as caught:
            await manager.lower(url, pinned=first_hash)
        assert str(caught.value) == (
            f"flist {url} is now {hashes[0]}, not the {first_hash} this workload was deployed "
            "with, and the hub no longer has that one"
        )

    node(scenario)
    node(lambda manager: _with_fresh_cache(manager, elsewhere))


async def _with_fresh_cache(manager: FlistManager, scenario: Scenario) -> None:
    await manager.sweep(set())
    for path in (manager.root / "fl").glob("*.fl"):
        path.unlink()
    await scenario(manager)


def test_image_config_tags_are_checked() -> None:
    assert MAX_FLIST_BYTES == limits.MAX_FLIST_BYTES
    assert ImageConfig.from_tags({}) == ImageConfig()
    assert ImageConfig.from_tags({"env": '["A=b=c"]', "user": "1000:1000"}) == ImageConfig(
        env=(("A", "b=c"),), user="1000:1000"
    )
    for tags, message in (
        ({"entrypoint": "sh"}, "entrypoint tag is not JSON"),
        ({"cmd": '{"a": 1}'}, "cmd tag is not a list of strings"),
        ({"env": '["NOEQUALS"]'}, "not NAME=value"),
        ({"workdir": "relative"}, "not an absolute path"),
    ):
        with pytest.raises(ValueError, match=message):
            ImageConfig.from_tags(tags)
