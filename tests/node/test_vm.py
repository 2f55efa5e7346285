"""Zmachines in vm mode on a real node: qemu boots a busybox flist on the node's guest
kernel, with its disk and planetary address; pause, a daemon crash, a qemu crash and a
cancel; flists that cannot boot end in error naming what is missing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.node.deployer import create, deployment_of, funded_twin, results, wait_result
from tests.node.grid import Grid, NodeDaemon, module_grid, traces
from tests.node.hosts import HostNetwork
from zgrid.chain import UNITS_PER_TOKEN
from zgrid.devnet.images import build_busybox
from zgrid.node.runtime.guest import build_initramfs, find_kernel
from zgrid.types import (
    MIB,
    ComputeCapacity,
    MachineNetwork,
    Mount,
    Workload,
    ZMachine,
    ZMount,
    make_workload,
    workload_id,
)

# Each boot adds a line to the disk, then the machine serves what it sees of itself.
PAGE_SCRIPT = (
    "echo boot >> /data/boots; sync; mkdir -p /www; "
    "{ echo cpus=$(nproc); echo mem=$(free -m | awk '/Mem:/ {print $2}'); "
    "echo boots=$(wc -l < /data/boots); echo kernel=$(uname -r); "
    "echo disk=$(df -k /data | awk 'NR==2 {print $2}'); } > /www/index.html; "
    "exec httpd -f -p [::]:80 -h /www"
)

ONE_CORE = ComputeCapacity(cpu=1, memory=256 * MIB)


@pytest.fixture(scope="module")
def grid(host_network: HostNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grid]:
    require_tool("qemu-system-x86_64")
    yield from module_grid(host_network, tmp_path_factory.mktemp("grid"))


@pytest.fixture(scope="module")
def node(grid: Grid) -> NodeDaemon:
    return grid.add_node("vmnode")


def _run(coroutine: object) -> object:
    return asyncio.run(asyncio.wait_for(coroutine, 400))  # type: ignore[arg-type]


def _vm(grid: Grid, name: str, **fields: object) -> Workload:
    data: dict[str, object] = {
        "flist": grid.busybox_url,
        "compute_capacity": ComputeCapacity(cpu=2, memory=512 * MIB),
        "network": MachineNetwork(planetary=True),
        "mode": "vm",
        **fields,
    }
    return make_workload(name, ZMachine(**data))


def _page(grid: Grid, address: str, needle: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        done = grid.client.http_get(f"http://[{address}]/", timeout=3)
        body = done.stdout if done.returncode == 0 else done.stderr
        if done.returncode == 0 and needle in body:
            return body
        time.sleep(0.3)
    raise AssertionError(f"no page with {needle!r} from [{address}] in {timeout} s: {body}")


def _pings(grid: Grid, address: str) -> bool:
    done = grid.client.exec(["ping", "-6", "-c", "1", "-W", "1", address], timeout=10)
    return done.returncode == 0


def _qemu_pids(node: NodeDaemon, vm_id: str) -> list[int]:
    marker = f"guest={vm_id},".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline and str(node.data).encode() in cmdline:
                found.append(int(entry.name))
    return found


def _taps(node: NodeDaemon) -> list[str]:
    listed = node.host.exec(["ip", "-j", "link", "show"])
    return [
        link["ifname"]
        for link in json.loads(listed.stdout or "[]")
        if link["ifname"].startswith("zt")
    ]


def test_a_vm_boots_with_its_disk_and_address_pauses_survives_crashes_and_leaves_nothing(
    grid: Grid, node: NodeDaemon
) -> None:
    before = traces(node).without_images()

    async def scenario() -> None:
        alice = await funded_twin(grid.ledger.url, UNITS_PER_TOKEN // 2)
        clock = await grid.deployer()
        deployment = deployment_of(
            alice.twin_id,
            [
                make_workload("data", ZMount(size=64 * MIB)),
                _vm(
                    grid,
                    "vm",
                    mounts=[Mount(name="data", mountpoint="/data")],
                    entrypoint=f"/bin/sh -c {shlex.quote(PAGE_SCRIPT)}",
                ),
            ],
        )
        contract = await create(alice, node.node_id, deployment)
        report = await wait_result(alice, contract, timeout=240, where=f"; node log: {node.log}")
        assert report.state == "ok", report
        machine = report.workload("vm")
        assert machine is not None
        data = machine.result.data
        assert data["accelerator"] in ("kvm", "tcg")
        if data["accelerator"] == "tcg":
            assert data["accelerator_note"]  # why not KVM
        address = data["planetary_ip"]
        page = _page(grid, address, "boots=1")
        assert "cpus=2" in page
        assert 400 <= int(page.split("mem=")[1].split()[0]) <= 512, page
        assert f"kernel={find_kernel().version}" in page  # the guest's own kernel
        assert 50_000 <= int(page.split("disk=")[1].split()[0]) <= 64 * 1024, page
        vm_id = workload_id(alice.twin_id, contract, "vm")
        assert len(_qemu_pids(node, vm_id)) == 1
        assert len(_taps(node)) == 1

        # Its twin runs dry: in the grace period the node freezes the guest (no answer
        # at all); a top-up thaws it.
        grace = None
        for _ in range(20):
            await clock.chain.submit("dev.advance_time", {"seconds": 10 * 3600})
            contract_now = await alice.chain.contract(contract)
            if contract_now["state"] == "grace_period":
                grace = contract_now
                break
        assert grace is not None, "the contract never ran out of funds"
        deadline = time.monotonic() + 30
        while _pings(grid, address):
            assert time.monotonic() < deadline, "the guest still answers in the grace period"
        assert not _pings(grid, address) and not _pings(grid, address)
        deadline = time.monotonic() + 30
        while True:  # the machine's result says so (its disk has nothing to pause)
            now = await results(alice, contract)
            held = now.workload("vm") if now is not None else None
            if held is not None and held.result.state == "paused":
                break
            assert time.monotonic() < deadline, now
            await asyncio.sleep(0.2)
        await alice.chain.faucet(int(grace["owed"]) + UNITS_PER_TOKEN)
        deadline = time.monotonic() + 30
        while not _pings(grid, address):
            assert time.monotonic() < deadline, "no answer after the top-up"
        _page(grid, address, "boots=1")  # the same boot, thawed

        # The daemon killed: the same qemu is adopted, none started beside it.
        (qemu_pid,) = _qemu_pids(node, vm_id)
        node.kill9()
        node.start()
        await asyncio.sleep(2)  # a reconcile pass
        assert _qemu_pids(node, vm_id) == [qemu_pid]
        _page(grid, address, "boots=1")

        # qemu killed: the machine boots again, its disk kept.
        os.kill(qemu_pid, signal.SIGKILL)
        _page(grid, address, "boots=2", timeout=120)
        assert len(_qemu_pids(node, vm_id)) == 1

        await alice.chain.cancel_contract(contract)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            traces(node).without_images() != before or _qemu_pids(node, vm_id) or _taps(node)
        ):
            await asyncio.sleep(0.3)
        assert traces(node).without_images() == before
        assert _qemu_pids(node, vm_id) == [] and _taps(node) == []
        assert list((node.data / "disks" / "images").glob("*.img")) == []
        assert not (node.data / "runtime" / "vms" / vm_id).exists()
        await alice.chain.close()
        await clock.chain.close()

    _run(scenario())


def test_a_vm_whose_flist_cannot_boot_ends_in_error_naming_what_is_missing(
    grid: Grid, node: NodeDaemon, tmp_path: Path
) -> None:
    bare = tmp_path / "bare"
    (bare / "etc").mkdir(parents=True)
    (bare / "etc/hostname").write_text("bare\n")
    bare_url = grid.push(bare, "bare")

    async def scenario() -> None:
        alice = await grid.deployer()
        deployment = deployment_of(
            alice.twin_id,
            [
                _vm(grid, "noinit", flist=bare_url, compute_capacity=ONE_CORE),
                _vm(
                    grid,
                    "noentry",
                    flist=bare_url,
                    compute_capacity=ONE_CORE,
                    entrypoint="/usr/bin/missing --flag",
                ),
            ],
        )
        contract = await create(alice, node.node_id, deployment)
        report = await wait_result(alice, contract, timeout=120, where=f"; node log: {node.log}")
        assert report.state == "error", report
        noinit, noentry = report.workload("noinit"), report.workload("noentry")
        assert noinit is not None and noentry is not None
        assert noinit.result.state == "error"
        assert "/boot/vmlinuz" in noinit.result.message
        assert "/sbin/init" in noinit.result.message
        assert noentry.result.state == "error"
        assert "'/usr/bin/missing' is not in the flist" in noentry.result.message
        await alice.chain.cancel_contract(contract)
        await alice.chain.close()

    _run(scenario())


# An image's own initrd: mounts the root its kernel's command line names, then hands over
# to the image's /sbin/init. It is appended to the default guest's archive, whose busybox
# and drivers it uses (the kernel unpacks both archives, the later /init over the former).
IMAGE_INITRD_INIT = """#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module; do insmod "/lib/modules/$module" 2>/dev/null; done </lib/modules/load.order
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        root=*) root="${arg#root=}" ;;
        rootfstype=*) type="${arg#rootfstype=}" ;;
        rootflags=*) flags="${arg#rootflags=}" ;;
    esac
done
mkdir -p /newroot
mount -t "$type" -o "$flags,ro" "$root" /newroot || { echo "image-initrd: no root"; poweroff -f; }
echo "image-initrd: root $root ($type) mounted"
for fs in proc sys dev; do mount --move "/$fs" "/newroot/$fs"; done
exec switch_root /newroot /sbin/init
"""
IMAGE_INIT = """#!/bin/sh
echo "image-init: $(uname -r) on $(cat /etc/image-name), pid $$"
exec sleep 1000000
"""


def _image_flist(grid: Grid, work: Path) -> str:
    """A busybox tree that carries a kernel (Debian's) and an initrd of its own."""
    root = build_busybox(work, lambda _: None)
    kernel = find_kernel()
    (root / "boot").mkdir()
    shutil.copy(kernel.kernel, root / "boot/vmlinuz")
    extra = work / "initrd-extra"
    extra.mkdir()
    (extra / "init").write_text(IMAGE_INITRD_INIT)
    (extra / "init").chmod(0o755)
    archive = subprocess.run(
        ["cpio", "--quiet", "-o", "-H", "newc"],
        input=b"init\n",
        cwd=extra,
        capture_output=True,
        check=True,
    ).stdout
    guest_archive = build_initramfs(work / "guest", kernel).read_bytes()
    (root / "boot/initrd.img").write_bytes(guest_archive + archive)
    (root / "sbin/init").unlink()
    (root / "sbin/init").write_text(IMAGE_INIT)
    (root / "sbin/init").chmod(0o755)
    (root / "etc/image-name").write_text("an image flist\n")
    return grid.push(root, "image")


def test_an_image_flist_boots_its_own_kernel_and_initrd(
    grid: Grid, node: NodeDaemon, tmp_path: Path
) -> None:
    require_tool("cpio")
    image_url = _image_flist(grid, tmp_path)

    async def scenario() -> None:
        alice = await grid.deployer()
        deployment = deployment_of(
            alice.twin_id, [_vm(grid, "image", flist=image_url, compute_capacity=ONE_CORE)]
        )
        contract = await create(alice, node.node_id, deployment)
        report = await wait_result(alice, contract, timeout=120, where=f"; node log: {node.log}")
        assert report.state == "ok", report
        console = node.data / "machines" / workload_id(alice.twin_id, contract, "image")
        deadline = time.monotonic() + 120
        text = ""
        while "image-init: " not in text:
            assert time.monotonic() < deadline, f"the image's init never ran: {text[-2000:]}"
            await asyncio.sleep(0.5)
            with contextlib.suppress(OSError):
                text = (console / "output.log").read_text(errors="replace")
        # Its initrd found the root the node named; its init runs on its own kernel.
        assert "image-initrd: root zroot (9p) mounted" in text, text[-2000:]
        assert f"image-init: {find_kernel().version} on an image flist, pid 1" in text
        assert "zgrid-init" not in text  # the node's own first process had no part in it
        await alice.chain.cancel_contract(contract)
        await alice.chain.close()

    _run(scenario())
