"""A busybox root file system and a runc runtime that leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import require_root, require_tool
from zgrid.node.runtime import ContainerStatus, RuncRuntime

T = TypeVar("T")


def run(coroutine: Awaitable[T]) -> T:
    async def wrapped() -> T:
        return await coroutine

    return asyncio.run(wrapped())


def build_rootfs(root: Path) -> None:
    """busybox-static with every applet as a relative symlink, /etc/passwd and /tmp."""
    busybox = require_tool("busybox")
    for directory in ("bin", "etc", "tmp", "proc", "sys", "dev", "root"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin/busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "tmp").chmod(0o1777)


@pytest.fixture(scope="session")
def busybox_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    require_tool("runc")
    root = tmp_path_factory.mktemp("busybox") / "rootfs"
    build_rootfs(root)
    return root


@pytest.fixture
def rootfs(busybox_root: Path, tmp_path: Path) -> Path:
    """A writable copy of the busybox root for one test."""
    copy = tmp_path / "rootfs"
    shutil.copytree(busybox_root, copy, symlinks=True)
    return copy


def runc_ids(runtime: RuncRuntime) -> list[str]:
    out = subprocess.run(
        [runtime.runc, "--root", str(runtime.runc_root), "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [item["id"] for item in json.loads(out or "null") or []]


def scope_cgroups(runtime: RuncRuntime) -> list[Path]:
    """The runtime's cgroup dirs that exist, in every hierarchy."""
    return [path for path in runtime._cgroup_dirs(None) if path.exists()]


@pytest.fixture
def make_runtime(tmp_path: Path) -> Iterator[Callable[[], RuncRuntime]]:
    """RuncRuntimes on one root and scope; every container is stopped afterwards and
    nothing (runc state, cgroup, supervisor) may be left."""
    require_root()
    require_tool("runc")
    made: list[RuncRuntime] = []

    def make() -> RuncRuntime:
        runtime = RuncRuntime(tmp_path / "runtime", scope=f"test {tmp_path}")
        made.append(runtime)
        return runtime

    yield make
    if not made:
        return
    runtime = made[0]
    for container_id in run(runtime.containers()):
        run(runtime.stop(container_id))
    leftovers = runc_ids(runtime)
    for container_id in leftovers:  # stop() failed: clean by hand so nothing leaks
        subprocess.run(
            [runtime.runc, "--root", str(runtime.runc_root), "delete", "-f", container_id],
            check=False,
        )
    cgroups = scope_cgroups(runtime)
    for path in sorted(cgroups, key=lambda p: -len(p.parts)):
        for child in path.iterdir():
            if child.is_dir():
                child.rmdir()
        path.rmdir()
    assert leftovers == []
    assert cgroups == []


@pytest.fixture
def runtime(make_runtime: Callable[[], RuncRuntime]) -> RuncRuntime:
    return make_runtime()


def wait_for(
    runtime: RuncRuntime,
    container_id: str,
    done: Callable[[ContainerStatus], bool],
    timeout: float = 10.0,
) -> ContainerStatus:
    """Poll status() until ``done`` holds; fail with the last status seen."""
    deadline = time.monotonic() + timeout
    while True:
        status = run(runtime.status(container_id))
        if done(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting; last status: {status}")
        time.sleep(0.05)


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)
