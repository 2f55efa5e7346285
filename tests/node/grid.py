"""A whole small grid for the node's end-to-end tests: a ledger and an flist hub in the root
netns, a farm, node daemons each in its own host, and a client host on yggdrasil.

Everything is real: `zgrid chain run`, `zgrid hub run`, `zgrid node run` processes, runc
containers, FUSE mounts, loop devices and yggdrasil. :meth:`Grid.close` stops it all,
also when a test failed, and :func:`traces` counts what a node left on the machine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chain.conftest import LedgerProcess
from tests.conftest import require_root, require_tool
from tests.factories import join_token
from tests.flist.conftest import HubProcess, Twin
from tests.flist.rootfs import build_busybox_root
from tests.node.deployer import Twin as Deployer
from tests.node.hosts import Host, HostNetwork
from tests.processes import ZGRID, zgrid_here
from zgrid.chain import UNITS_PER_TOKEN, ChainClient, SyncChainClient, init_dev_chain
from zgrid.flist import Router, pack_directory, parse_route
from zgrid.flist.hub import HubClient
from zgrid.identity import Identity
from zgrid.node import node_scope
from zgrid.node.net.planetary import netns_prefix
from zgrid.node.primitives.network import network_netns_prefix
from zgrid.node.rootfs import mounts_under
from zgrid.types import GIB

NODE_CAPACITY = f"cru=2,mru={4 * GIB},sru={20 * GIB},hru={10 * GIB}"
BUSYBOX_TAGS = {"entrypoint": json.dumps(["/bin/sh"]), "cmd": json.dumps([])}


class NodeDaemon:
    """`zgrid node run` inside a host; stop, kill -9 and start it again at will."""

    def __init__(self, grid: Grid, host: Host, *, capacity: str = NODE_CAPACITY) -> None:
        self.grid = grid
        self.host = host
        self.data = host.dir / "node"
        self.capacity = capacity
        self.log = host.dir / "node.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.address = _node_address(self.data)
        self.node_id = 0

    def argv(self) -> list[str]:
        return [
            ZGRID,
            "node",
            "run",
            "--farm",
            str(self.grid.farm_id),
            "--ledger",
            self.grid.ledger.url,
            "--hub",
            self.grid.hub.url,
            "--data",
            str(self.data),
            "--capacity",
            self.capacity,
            "--join-token",
            self.grid.join_token(self.address),
            "--yggdrasil-listen",
            f"tcp://{self.host.address}:7443",
            "--yggdrasil-peer",
            self.grid.client.yggdrasil_uri,
            "--reconcile-interval",
            "2",
        ]

    def start(self, timeout: float = 60) -> None:
        self.wait_started(self.launch(), timeout)

    def launch(self) -> int:
        """Start the daemon; returns where its log stood, for :meth:`wait_started`."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        self.process = self.host.popen(self.argv(), self.log)
        return offset

    def wait_started(self, offset: int, timeout: float = 60) -> None:
        """Until the daemon (started by :meth:`launch`) follows the ledger."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")[offset:]
            found = re.search(r"node (\d+) \(twin \d+, farm \d+\) follows", text)
            if found:
                self.node_id = int(found.group(1))
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"the node exited with {self.process.returncode}: {text}")
            time.sleep(0.05)
        raise RuntimeError(f"the node did not start within {timeout} s: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def status(self) -> dict[str, Any]:
        """`zgrid node status --json`, in-process (tests/cli/test_node_cli.py runs the script)."""
        done = zgrid_here("node", "status", "--data", str(self.data), "--json")
        assert done.returncode == 0, done.stderr
        document: dict[str, Any] = json.loads(done.stdout)
        return document


def _node_address(data: Path) -> str:
    done = zgrid_here("node", "address", "--data", str(data))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@dataclass
class Grid:
    network: HostNetwork
    work: Path
    block_time: float = 0.5
    ledger: LedgerProcess = field(init=False)
    hub: HubProcess = field(init=False)
    client: Host = field(init=False)
    farmer: SyncChainClient = field(init=False)
    farm_id: int = field(init=False)
    publisher: Twin = field(init=False)
    busybox_url: str = field(init=False)
    nodes: list[NodeDaemon] = field(default_factory=list)

    def start(self) -> Grid:
        chain_dir = self.work / "chain"
        init_dev_chain(chain_dir)
        self.ledger = LedgerProcess(
            chain_dir, block_time=self.block_time, host=self.network.gateway
        )
        self.ledger.start()
        self.network.defer(self.ledger.stop)
        self.hub = HubProcess(self.work / "hub", self.ledger.url, host=self.network.gateway)
        self.network.defer(self.hub.stop)
        # The hub starts while the farm and the publisher are made and busybox is built.
        with concurrent.futures.ThreadPoolExecutor(1) as starter:
            hub_started = starter.submit(self.hub.start)
            self.farmer = self._funded(Identity(secrets.token_bytes(32)))
            self.farmer.create_twin()
            self.farm_id = self.farmer.create_farm(f"farm-{secrets.token_hex(4)}")
            publisher = self._funded(Identity(secrets.token_bytes(32)))
            self.publisher = Twin(publisher.identity, publisher.create_twin())  # type: ignore[arg-type]
            publisher.close()
            source = self.work / "busybox"
            build_busybox_root(source)
            hub_started.result()
        self.busybox_url = self.push(source, "busybox", BUSYBOX_TAGS)
        self.client = self.network.add_client()
        return self

    def _funded(self, identity: Identity, tokens: int = 100) -> SyncChainClient:
        client = SyncChainClient(self.ledger.url, identity=identity)
        client.faucet(tokens * UNITS_PER_TOKEN)
        self.network.defer(client.close)
        return client

    def push(self, source: Path, name: str, tags: dict[str, str] | None = None) -> str:
        """Pack ``source`` and publish it on the hub; returns its URL."""
        return asyncio.run(self._push(source, name, tags))

    async def _push(self, source: Path, name: str, tags: dict[str, str] | None) -> str:
        store = self.work / "publish"
        flist = store / f"{name}-{secrets.token_hex(4)}.fl"
        store.mkdir(parents=True, exist_ok=True)
        router = Router.from_routes([parse_route(f"dir://{store}/blocks")])
        try:
            await pack_directory(source, flist, router, tags=tags)
            async with HubClient(
                self.hub.url, identity=self.publisher.identity, twin_id=self.publisher.twin_id
            ) as client:
                report = await client.push(flist, name, router)
        finally:
            await router.close()
        return str(report.url)

    def join_token(self, node_address: str) -> str:
        return join_token(self.farmer, self.farm_id, node=node_address, valid_for=24 * 3600)

    def add_node(self, name: str, *, capacity: str = NODE_CAPACITY) -> NodeDaemon:
        (node,) = self.add_nodes(name, capacity=capacity)
        return node

    def add_nodes(self, *names: str, capacity: str = NODE_CAPACITY) -> list[NodeDaemon]:
        """Nodes in hosts of their own, started side by side."""
        nodes = []
        for name in names:
            host = self.network.add_host(name)
            node = NodeDaemon(self, host, capacity=capacity)
            self.farmer.transfer(node.address, 10 * UNITS_PER_TOKEN)
            self.nodes.append(node)
            self.network.defer(functools.partial(cleanup_node, node))
            nodes.append(node)
        offsets = [node.launch() for node in nodes]
        for node, offset in zip(nodes, offsets, strict=True):
            node.wait_started(offset)
        return nodes

    async def deployer(self) -> Deployer:
        identity = Identity(secrets.token_bytes(32))
        chain = ChainClient(self.ledger.url, identity=identity)
        await chain.faucet(100 * UNITS_PER_TOKEN)
        return Deployer(identity, await chain.create_twin(), chain)


@contextlib.contextmanager
def running_grid(network: HostNetwork, work: Path) -> Iterator[Grid]:
    grid = Grid(network, work)
    grid.start()
    yield grid


def module_grid(network: HostNetwork, work: Path) -> Iterator[Grid]:
    """A test module's grid (its fixture ``yield from``s this): root and the node's tools
    required, everything stopped when the module's hosts go."""
    require_root()
    for tool in ("runc", "yggdrasil", "mkfs.ext4", "losetup", "busybox"):
        require_tool(tool)
    with running_grid(network, work) as grid:
        yield grid


def cleanup_node(node: NodeDaemon) -> None:
    """Everything a node left: its daemon, containers, mounts, loop devices, netns."""
    node.stop()
    kill_node_processes(node)
    unmount_under(node.data)


def kill_node_processes(node: NodeDaemon) -> None:
    """Kill -9 every process of a node: daemon, container supervisors and containers, its
    Zero-DB, yggdrasil and FUSE mounts (what a power cut does)."""
    marker = str(node.data)
    for _ in range(3):
        for pid in _pids():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for pid in node.host.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _lasting(pids: list[int]) -> list[int]:
    """Leave out the short runc calls a container's supervisor makes now and then."""
    kept = []
    for pid in pids:
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if name not in ("runc", "runc:[1:CHILD]", "runc:[2:INIT]"):
            kept.append(pid)
    return kept


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def unmount_under(root: Path) -> None:
    """Lazy-unmount every mount under ``root``, deepest first."""
    for mountpoint in mounts_under(root):
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, check=False)


@dataclass(frozen=True)
class Traces:
    """What a node has on the machine, to compare before and after."""

    containers: int
    mounts: int  # under the node's data directory, images left out
    loop_devices: int
    netns: int  # the node's own (its machines' and its networks')
    processes: int  # in the node's host, images' mount processes left out
    images: int = 0  # flists mounted: a cache the node keeps a while after their last use

    def without_images(self) -> Traces:
        return Traces(self.containers, self.mounts, self.loop_devices, self.netns, self.processes)


def traces(node: NodeDaemon) -> Traces:
    runc = subprocess.run(
        ["runc", "--root", str(node.data / "runtime" / "runc"), "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    containers = len(json.loads(runc.stdout or "null") or [])
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=False).stdout
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    # Other tests' hosts and nodes come and go: only this node's machines and networks.
    own_netns = (netns_prefix(node_scope(node.data)), network_netns_prefix(node_scope(node.data)))
    lowers = node.data / "flists" / "lowers"
    mounts = mounts_under(node.data)
    images = [m for m in mounts if m.parent == lowers]
    lasting = _lasting(node.host.pids())
    return Traces(
        containers=containers,
        mounts=len(mounts) - len(images),
        loop_devices=sum(1 for line in loops.splitlines() if str(node.data) in line),
        netns=sum(1 for line in netns.stdout.splitlines() if line.startswith(own_netns)),
        processes=len([pid for pid in lasting if not _serves_an_image(pid)]),
        images=len(images),
    )


def _serves_an_image(pid: int) -> bool:
    try:
        return b"zgrid.node.lowermount" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
