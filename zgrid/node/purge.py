"""Take everything a node made off this machine, as a power cut and a reboot would.

Its processes (the daemon, container supervisors and containers, its Zero-DB, yggdrasil,
flist mounts), runc's state and the cgroups, mounts, loop devices and network namespaces
go; its data directory stays, so a node started again on it restores every workload from
the ledger. Used to retire a node from a machine and by `zgrid devnet down`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from zgrid.node.naming import node_scope
from zgrid.node.net import links
from zgrid.node.net.planetary import netns_prefix
from zgrid.node.net.wireguard import delete_interface
from zgrid.node.primitives.network import network_netns_prefix
from zgrid.node.rootfs import mounts_under
from zgrid.node.runtime import RuncRuntime
from zgrid.node.system import run_command

__all__ = ["PurgeReport", "clear_under", "purge_node"]

_ROUNDS = 5


@dataclass(frozen=True)
class PurgeReport:
    """How much of each kind was found and removed."""

    processes: int
    containers: int
    mounts: int
    loop_devices: int
    netns: int


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def _marked(marker: str) -> list[int]:
    """Processes whose command line names ``marker`` (the node's data directory)."""
    own = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != own and marker in _cmdline(int(entry)):
            found.append(int(entry))
    return found


async def _netns_pids(netns: str) -> list[int]:
    out = await run_command(["ip", "netns", "pids", netns], check=False)
    return [int(pid) for pid in out.split() if pid.isdigit()]


async def _machine_netns(scope: str) -> list[str]:
    prefix = netns_prefix(scope)
    return sorted(name for name in await links.list_netns() if name.startswith(prefix))


async def _kill_everything(marker: str, spaces: list[str]) -> int:
    killed: set[int] = set()
    for _ in range(_ROUNDS):
        pids = set(_marked(marker))
        for netns in spaces:
            pids.update(await _netns_pids(netns))
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed |= pids
        await asyncio.sleep(0.1)
    return len(killed)


async def _loop_devices(root: Path) -> list[str]:
    out = await run_command(["losetup", "-J", "-l"], check=False)
    try:
        devices = json.loads(out or "{}").get("loopdevices", [])
    except ValueError:
        return []
    prefix = str(root) + "/"
    return [
        str(device["name"])
        for device in devices
        if str(device.get("back-file") or "").startswith(prefix)
    ]


def _records(data: Path) -> list[dict[str, object]]:
    found = []
    for path in sorted((data / "planetary").glob("zm*.json")):
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(path.read_text())
            if isinstance(record, dict):
                found.append(record)
    return found


def _network_records(data: Path) -> list[dict[str, object]]:
    found = []
    for path in sorted((data / "networks").glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(path.read_text())
            if isinstance(record, dict) and {"wireguard", "netns"} <= record.keys():
                found.append(record)
    return found


async def _network_netns(scope: str) -> list[str]:
    prefix = network_netns_prefix(scope)
    return sorted(name for name in await links.list_netns() if name.startswith(prefix))


async def purge_node(data: Path, *, netns: str | None = None) -> PurgeReport:
    """Remove every trace on the machine of the node whose data is ``data``.

    ``netns`` is the namespace the node ran in (None: this one), where its planetary
    bridges and links are. Safe to repeat; the daemon should be stopped first (it is
    killed like the rest otherwise).
    """
    data = Path(data).absolute()
    scope = node_scope(data)
    spaces = await _machine_netns(scope)
    records = _records(data)
    spaces += [str(r["netns"]) for r in records if isinstance(r.get("netns"), str)]
    spaces = sorted(set(spaces))
    processes = await _kill_everything(str(data), spaces)
    runtime = RuncRuntime(data / "runtime", scope=scope)
    containers = await runtime.release_kernel()
    mounts, loops = await _release_files(data)
    for record in records:
        for name in (record.get("host_link"), record.get("bridge")):
            if isinstance(name, str):
                with contextlib.suppress(Exception):
                    await links.delete_link(name, netns=netns)
    for network in _network_records(data):
        with contextlib.suppress(Exception):
            await delete_interface(str(network["wireguard"]), str(network["netns"]))
        for name in (network.get("bridge_link"), network.get("bridge")):
            if isinstance(name, str):
                with contextlib.suppress(Exception):
                    await links.delete_link(name, netns=netns)
    spaces += await _network_netns(scope)
    for space in spaces:
        await links.delete_netns(space)
    return PurgeReport(
        processes=processes,
        containers=containers,
        mounts=mounts,
        loop_devices=loops,
        netns=len(spaces),
    )


async def _release_files(root: Path) -> tuple[int, int]:
    """Lazy-unmount every mount under ``root`` and detach every loop device backed there."""
    mounts = mounts_under(root)
    for mountpoint in mounts:
        await run_command(["umount", "-l", str(mountpoint)], check=False)
    loops = await _loop_devices(root)
    for device in loops:
        await run_command(["losetup", "-d", device], check=False)
    return len(mounts), len(loops)


async def clear_under(root: Path) -> PurgeReport:
    """Kill every process naming ``root`` and release every mount and loop device under it:
    the last sweep of a directory that held nodes (and anything else)."""
    root = Path(root).absolute()
    processes = await _kill_everything(str(root), [])
    mounts, loops = await _release_files(root)
    return PurgeReport(
        processes=processes, containers=0, mounts=mounts, loop_devices=loops, netns=0
    )
