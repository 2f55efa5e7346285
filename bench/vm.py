"""VM benchmark: contract submission → state `ok` → first SSH answer, per Debian VM.

It starts, on this machine: a ledger (1 s blocks), an flist hub with the devnet's Debian
flist (debootstrap root with openssh-server, built once and cached), one node daemon in
its own network namespace and a client namespace on yggdrasil (the harness of the node's
tests). Then it deploys N Debian VMs (2 cores, 512 MiB, the flist's SSH server as the
entrypoint) one after the other, each cancelled before the next, and times:

* inclusion: submit → the contract in a committed block;
* node: the node's own time from seeing the contract to its report (flist mount, root
  volume, qemu started, the guest's first process ready);
* to_ok: submit → the client reads state ok;
* to_ssh: submit → `ssh root@<planetary address> true` answers from the client namespace.

The peer is the same guest booted by hand: qemu started directly with the same kernel,
initramfs, cores and memory, the Debian tree shared over plain 9p (no ledger, no node, no
FUSE flist), timed from qemu's start to the first SSH answer. The ratio ours/peer is what
the grid adds to a bare boot. The accelerator both used (KVM or TCG) is printed.

Target on this machine (TCG): p50 submission → SSH ≤ 10 s.

Run as root from the project root: ``.venv/bin/python bench/vm.py [--count 10] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.node.deployer import create, deployment_of, wait_result
from tests.node.grid import Grid, NodeDaemon
from tests.node.hosts import Host, HostNetwork
from zgrid.devnet.images import SSHD_FOREGROUND, build_debian
from zgrid.node.runtime.guest import build_initramfs, find_kernel, unpack_kernel
from zgrid.types import (
    MIB,
    ComputeCapacity,
    MachineNetwork,
    ZMachine,
    make_workload,
    workload_id,
)

TARGET = 10.0  # seconds, p50 submission -> first SSH answer (TCG)
BLOCK_TIME = 1.0
CPU, MEMORY = 2, 512 * MIB
SSH_OPTIONS = [
    "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "ConnectTimeout=2", "-o", "LogLevel=ERROR",
]  # fmt: skip
PEER_ADDRESS, PEER_SOURCE = "200:b::2", "200:b::1"  # only inside the peer's own namespace


@dataclass
class Sample:
    inclusion: float
    node: float
    to_ok: float
    to_ssh: float
    accelerator: str


def _ssh_argv(key: Path, address: str) -> list[str]:
    return ["ssh", "-i", str(key), *SSH_OPTIONS, f"root@{address}", "true"]


def _ssh_from(host: Host, key: Path, address: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if host.exec(_ssh_argv(key, address), timeout=30).returncode == 0:
            return
        time.sleep(0.05)
    raise RuntimeError(f"no SSH answer from {address} within {timeout} s")


def _qemu_gone(marker: str, timeout: float = 60) -> None:
    """Until no qemu of ``marker`` runs (a cancelled VM must not share the cores)."""
    needle = f"guest={marker},".encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    busy = busy or needle in Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue
        if not busy:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the VM {marker} still runs {timeout} s after its cancel")


async def _one(grid: Grid, node: NodeDaemon, flist: str, key: Path, index: int) -> Sample:
    twin = await grid.deployer()
    public = key.with_suffix(".pub").read_text().strip()
    machine = make_workload(
        f"vm{index}",
        ZMachine(
            flist=flist,
            compute_capacity=ComputeCapacity(cpu=CPU, memory=MEMORY),
            entrypoint=SSHD_FOREGROUND,
            env={"SSH_KEY": public},
            network=MachineNetwork(planetary=True),
            mode="vm",
        ),
    )
    deployment = deployment_of(twin.twin_id, [machine])
    await asyncio.sleep(random.uniform(0, BLOCK_TIME))  # submitted at any moment of a block
    start = time.monotonic()
    contract = await create(twin, node.node_id, deployment)
    included = time.monotonic()
    report = await wait_result(twin, contract, timeout=240)
    ok = time.monotonic()
    if report.state != "ok":
        raise RuntimeError(f"VM {index} ended {report.state}: {report}")
    result = report.workload(machine.name)
    assert result is not None
    await asyncio.to_thread(_ssh_from, grid.client, key, result.result.data["planetary_ip"])
    answered = time.monotonic()
    await twin.chain.cancel_contract(contract)
    await twin.chain.close()
    await asyncio.to_thread(_qemu_gone, workload_id(twin.twin_id, contract, machine.name))
    return Sample(
        inclusion=included - start,
        node=report.provision_ms / 1000,
        to_ok=ok - start,
        to_ssh=answered - start,
        accelerator=str(result.result.data.get("accelerator", "?")),
    )


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def _peer(work: Path, root: Path, key: Path, accelerator: str) -> float:
    """Seconds from a bare qemu's start to its first SSH answer (same guest and image)."""
    cache = work / "guest"
    kernel = find_kernel()
    vmlinux, initrd = unpack_kernel(cache, kernel), build_initramfs(cache, kernel)
    disk = work / "root.img"
    disk.unlink(missing_ok=True)
    with disk.open("wb") as image:
        image.truncate(1 << 30)
    _run(["mkfs.ext4", "-q", "-F", str(disk)])
    conf = work / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "config.sh").write_text(
        f"hostname_is peer\nplanetary {PEER_ADDRESS} fe80::1\nentrypoint\nset -- {SSHD_FOREGROUND}\n"
    )
    shutil.copy(key.with_suffix(".pub"), conf / "authorized_keys")
    netns = f"zgbench{os.getpid()}"
    inside = ["ip", "netns", "exec", netns]
    _run(["ip", "netns", "add", netns])
    try:
        for command in (
            "ip link set lo up",
            "ip tuntap add zbtap mode tap",
            "ip link set zbtap up",
            "ip -6 addr add fe80::1/64 dev zbtap nodad",
            f"ip -6 addr add {PEER_SOURCE}/128 dev lo",
            f"ip -6 route add {PEER_ADDRESS}/128 dev zbtap",
        ):
            _run([*inside, *command.split()])
        share = "security_model=passthrough,readonly=on"
        argv = [
            *inside, "qemu-system-x86_64", "-machine", f"q35,accel={accelerator}",
            "-cpu", "host" if accelerator == "kvm" else "max", "-smp", str(CPU),
            "-m", f"{MEMORY >> 20}M", "-nodefaults", "-no-user-config", "-display", "none",
            "-serial", f"file:{work / 'console.log'}",
            "-kernel", str(vmlinux), "-initrd", str(initrd),
            "-append", "console=ttyS0 panic=1 quiet", "-device", "virtio-rng-pci",
            "-drive", f"file={disk},if=none,id=root,format=raw,cache=writeback",
            "-device", "virtio-blk-pci,drive=root,serial=zgrid-root",
            "-virtfs", f"local,path={conf},mount_tag=zconf,{share}",
            "-virtfs", f"local,path={root},mount_tag=zroot,{share}",
            "-netdev", "tap,id=net0,ifname=zbtap,script=no,downscript=no",
            "-device", "virtio-net-pci,netdev=net0,mac=52:54:00:be:4c:01",
        ]  # fmt: skip
        start = time.monotonic()
        qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            deadline = start + 180
            while True:
                ssh = subprocess.run(
                    [*inside, *_ssh_argv(key, PEER_ADDRESS)], capture_output=True, check=False
                )
                if ssh.returncode == 0:
                    return time.monotonic() - start
                if qemu.poll() is not None or time.monotonic() > deadline:
                    console = (work / "console.log").read_text(errors="replace")[-800:]
                    raise RuntimeError(f"the bare qemu gave no SSH answer:\n{console}")
                time.sleep(0.05)
        finally:
            qemu.kill()
            qemu.wait()
    finally:
        subprocess.run(["ip", "netns", "delete", netns], capture_output=True, check=False)


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(values), 3),
        "p95": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10, help="VMs to deploy (and peer boots)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    console = Console(stderr=args.json)
    samples: list[Sample] = []
    peers: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="zgrid-bench-") as tmp,
        HostNetwork(Path(tmp) / "hosts") as network,
    ):
        work = Path(tmp)
        key = work / "id_ed25519"
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("the Debian image (debootstrap, once)", total=None)
            root = build_debian(work, lambda line: progress.update(task, description=line))
            progress.update(task, description="a ledger, a hub and a node")
            grid = Grid(network, work / "grid", block_time=BLOCK_TIME).start()
            node = grid.add_node("bench")
            progress.update(task, description="publishing the Debian flist")
            flist = grid.push(root, "debian")
            progress.remove_task(task)
            ours = progress.add_task("VMs through the grid", total=args.count)
            for index in range(args.count):
                samples.append(asyncio.run(_one(grid, node, flist, key, index)))
                progress.advance(ours)
            accelerator = samples[0].accelerator
            bare = progress.add_task(f"bare qemu boots ({accelerator})", total=args.count)
            for _ in range(args.count):
                peers.append(_peer(work / "peer", root, key, accelerator))
                progress.advance(bare)
    summary: dict[str, Any] = {
        phase: _stats([getattr(s, phase) for s in samples])
        for phase in ("inclusion", "node", "to_ok", "to_ssh")
    }
    summary["peer_to_ssh"] = _stats(peers)
    summary["ratio_to_ssh"] = round(summary["to_ssh"]["p50"] / summary["peer_to_ssh"]["p50"], 2)
    summary["accelerator"] = accelerator
    summary["target_to_ssh_p50"] = TARGET
    summary["met"] = summary["to_ssh"]["p50"] <= TARGET
    if args.json:
        samples_out = [asdict(s) for s in samples]
        print(json.dumps({"summary": summary, "samples": samples_out, "peer": peers}, indent=2))
        return 0
    table = Table(title=f"{args.count} Debian VMs ({accelerator}), 1 s blocks (seconds)")
    for column in ("what", "p50", "p95"):
        table.add_column(column)
    for phase in ("inclusion", "node", "to_ok", "to_ssh", "peer_to_ssh"):
        table.add_row(phase, str(summary[phase]["p50"]), str(summary[phase]["p95"]))
    table.add_row("ratio to_ssh / bare qemu", str(summary["ratio_to_ssh"]), "")
    verdict = "met" if summary["met"] else "MISSED"
    table.add_row(f"target p50 to_ssh ≤ {TARGET} s", verdict, "")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
