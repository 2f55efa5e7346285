"""A whole grid on this machine: `up` makes every part exist and run, `down` takes it away.

`up` is level-triggered like the node: each step looks at what is there (the bridge, the
hosts, the ledger's process, the farm on the ledger, the hub, the explorer indexing the
ledger, the images on the hub, each node's daemon) and makes only what is missing, so running it twice, or after a crash of any
part, ends in the same running devnet. `down` stops every process and removes every
namespace, link, mount and loop device; the data directory stays (the next `up` starts
the same chain, and the nodes restore what its contracts say), unless asked to go.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from zgrid.devnet.errors import DevnetError
from zgrid.devnet.layout import (
    EXPLORER_PORT,
    HUB_PORT,
    LEDGER_PORT,
    YGGDRASIL_PORT,
    DevnetState,
    Layout,
)
from zgrid.devnet.network import (
    GATEWAY_DOMAIN,
    ensure_network,
    free_prefix,
    free_public_prefixes,
    host_netns,
    internet,
    remove_network,
)
from zgrid.devnet.nodes import NodeProcess, node_data_dirs
from zgrid.devnet.processes import Daemon
from zgrid.devnet.status import ComponentStatus, DevnetStatus, NodeStatus
from zgrid.node import Yggdrasil, unique_name

if TYPE_CHECKING:
    from zgrid.devnet.accounts import Accounts

__all__ = ["Devnet", "Progress"]

Progress = Callable[[str], None]
_TOOLS = ("ip", "nsenter", "runc", "yggdrasil", "mkfs.ext4", "losetup", "busybox", "fusermount3")
_SERVER_TIMEOUT = 60.0


def _quiet(_: str) -> None:
    return None


def _indexed(explorer: str, height: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            answer = httpx.get(f"{explorer}/indexer", timeout=1.0)
            return answer.status_code == 200 and int(answer.json()["height"]) >= height
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return False

    return check


def _answers(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return check


class Devnet:
    """The devnet kept in ``root`` (its state, data, keys, logs and pid files)."""

    def __init__(self, root: Path, *, progress: Progress | None = None) -> None:
        self.layout = Layout(root)
        self.progress = progress or _quiet

    # -- parts ----------------------------------------------------------------------------

    def _daemon(self, name: str) -> Daemon:
        return Daemon(name, self.layout.pid_file(name), self.layout.log(name))

    def _yggdrasil(self, state: DevnetState) -> Yggdrasil:
        return Yggdrasil(
            self.layout.yggdrasil,
            scope=f"devnet:{self.layout.root}",
            listen=[f"tcp://{state.gateway}:{YGGDRASIL_PORT}"],
        )

    def _nodes(self, state: DevnetState) -> list[NodeProcess]:
        return [
            NodeProcess(self.layout, state, host_netns(state, number))
            for number in range(1, state.nodes + 1)
        ]

    # -- up -------------------------------------------------------------------------------

    def _state(self, nodes: int | None, block_time: float) -> DevnetState:
        if self.layout.exists():
            state = self.layout.load()
            if nodes is not None and nodes < state.nodes:
                raise DevnetError(
                    f"the devnet in {self.layout.root} has {state.nodes} nodes; it grows but "
                    "does not shrink: `zgrid devnet down --purge` first to start smaller"
                )
            if nodes is not None:
                state.nodes = nodes
            if not state.public_prefix:  # made before devnets had a public segment
                state.public_prefix, state.public_prefix6 = free_public_prefixes()
            return state
        public_prefix, public_prefix6 = free_public_prefixes()
        return DevnetState(
            public_prefix=public_prefix,
            public_prefix6=public_prefix6,
            prefix=free_prefix(),
            bridge=unique_name("zgd", str(self.layout.root)),
            nodes=2 if nodes is None else nodes,
            block_time=block_time,
        )

    async def up(
        self, *, nodes: int | None = None, block_time: float = 0.5, images: bool = True
    ) -> DevnetStatus:
        """Make every part of the devnet exist and run; returns its status."""
        # Loaded here: `status`, `logs` and `down` need neither the ledger's client nor flists.
        from zgrid.devnet.accounts import ensure_accounts  # noqa: PLC0415
        from zgrid.devnet.publish import publish_images  # noqa: PLC0415

        _check_machine()
        with self.layout.locked():
            state = self._state(nodes, block_time)
            self.layout.claim_machine()
            self.layout.save(state)
            self.progress(f"host network: bridge {state.bridge}, {state.prefix}.0/24")
            await ensure_network(state)
            self._ensure_ledger(state)
            accounts = await ensure_accounts(state.ledger_url, self.layout.keys, state.farm_ips)
            self._ensure_hub(state)
            await self._ensure_explorer(state)
            self.progress("yggdrasil on the host, for the planetary network")
            await self._yggdrasil(state).ensure_running()
            waiting = await self._start_nodes(state, accounts)
            if images:
                await publish_images(state, self.layout, accounts, self.progress)
            for node in waiting:
                self.progress(f"{node.name}: waiting for it to join the ledger")
                node_id = await asyncio.to_thread(node.wait_ready)
                self.progress(f"{node.name}: node {node_id} at {node.host.address}")
        return await self.status()

    def _ensure_ledger(self, state: DevnetState) -> None:
        from zgrid.chain import init_dev_chain  # noqa: PLC0415  # heavy: only `up` uses it

        daemon = self._daemon("ledger")
        if not (self.layout.chain / "genesis.json").exists():
            self.progress("ledger: a new dev chain (faucet, default price policy)")
            init_dev_chain(self.layout.chain)
        if not daemon.running():
            self.progress(f"ledger: starting on {state.ledger_url}")
            daemon.start(
                [
                    sys.executable,
                    "-m",
                    "zgrid",
                    "chain",
                    "run",
                    "--data",
                    str(self.layout.chain),
                    "--listen",
                    f"{state.gateway}:{LEDGER_PORT}",
                    "--block-time",
                    str(state.block_time),
                ]
            )
        daemon.wait_until(_answers(f"{state.ledger_url}/chain/head"), timeout=_SERVER_TIMEOUT)

    def _ensure_hub(self, state: DevnetState) -> None:
        daemon = self._daemon("hub")
        if not daemon.running():
            self.progress(f"hub: starting on {state.hub_url}")
            daemon.start(
                [
                    sys.executable,
                    "-m",
                    "zgrid",
                    "hub",
                    "run",
                    "--data",
                    str(self.layout.hub),
                    "--listen",
                    f"{state.gateway}:{HUB_PORT}",
                    "--ledger",
                    state.ledger_url,
                    "--public-url",
                    state.hub_url,
                ]
            )
        daemon.wait_until(_answers(f"{state.hub_url}/health"), timeout=_SERVER_TIMEOUT)

    async def _ensure_explorer(self, state: DevnetState) -> None:
        """The explorer indexing the ledger into SQLite, caught up with the ledger's head."""
        daemon = self._daemon("explorer")
        if not daemon.running():
            self.progress(f"explorer: starting on {state.explorer_url}")
            self.layout.explorer.mkdir(parents=True, exist_ok=True)
            daemon.start(
                [
                    sys.executable,
                    "-m",
                    "zgrid",
                    "explorer",
                    "run",
                    "--ledger",
                    state.ledger_url,
                    "--db",
                    self.layout.explorer_db,
                    "--listen",
                    f"{state.gateway}:{EXPLORER_PORT}",
                ]
            )
        daemon.wait_until(_answers(f"{state.explorer_url}/ping"), timeout=_SERVER_TIMEOUT)
        async with httpx.AsyncClient(timeout=5.0) as http:
            head = (await http.get(f"{state.ledger_url}/chain/head")).json()
        height = int(head["height"])
        self.progress(f"explorer: indexing the ledger up to its height {height}")
        daemon.wait_until(
            _indexed(state.explorer_url, height),
            timeout=_SERVER_TIMEOUT,
            what=f"index the ledger up to height {height}",
        )

    async def _start_nodes(self, state: DevnetState, accounts: Accounts) -> list[NodeProcess]:
        started = []
        for node in self._nodes(state):
            if node.daemon.running():
                continue
            self.progress(f"{node.name}: starting in netns {node.host.netns}")
            await node.start(accounts)
            started.append(node)
        return started

    # -- status ---------------------------------------------------------------------------

    async def status(self) -> DevnetStatus:
        state = self.layout.load()
        components = [
            self._component("ledger", state.ledger_url),
            self._component("hub", state.hub_url),
            self._component("explorer", state.explorer_url),
        ]
        ygg = self._yggdrasil(state)
        ygg_pid = ygg.pid()
        components.append(
            ComponentStatus(
                name="yggdrasil",
                url=f"tcp://{state.gateway}:{YGGDRASIL_PORT}",
                pid=ygg_pid,
                log=str(ygg.log_path),
            )
        )
        nodes = []
        for node in self._nodes(state):
            nodes.append(
                NodeStatus(
                    name=node.name,
                    node_id=node.node_id(),
                    address=node.host.address,
                    account=node.known_address(),
                    netns=node.host.netns,
                    data=str(node.data),
                    pid=node.daemon.pid(),
                    log=str(node.daemon.log),
                )
            )
        return DevnetStatus(
            dir=str(self.layout.root),
            bridge=state.bridge,
            subnet=f"{state.prefix}.0/24",
            ledger_url=state.ledger_url,
            hub_url=state.hub_url,
            explorer_url=state.explorer_url,
            components=components,
            nodes=nodes,
            public_subnet=f"{state.public_prefix}.0/24" if state.public_prefix else "",
            gateway_domain=GATEWAY_DOMAIN,
            gateway_ip=state.gateway_node_ip.split("/")[0] if state.public_prefix else "",
            ca=str(self.layout.ca / "ca.pem"),
            internet_netns=internet(state).netns,
        )

    def _component(self, name: str, url: str) -> ComponentStatus:
        daemon = self._daemon(name)
        return ComponentStatus(name=name, url=url, pid=daemon.pid(), log=str(daemon.log))

    def log_paths(self) -> dict[str, Path]:
        """Every part's log, by the name `zgrid devnet logs` takes."""
        state = self.layout.load()
        found = {name: self.layout.log(name) for name in ("ledger", "hub", "explorer")}
        found["yggdrasil"] = self._yggdrasil(state).log_path
        for node in self._nodes(state):
            found[node.name] = node.daemon.log
        return found

    # -- down -----------------------------------------------------------------------------

    async def down(self, *, purge: bool = False) -> bool:
        """Stop everything and leave nothing of the devnet on the machine; with ``purge``
        also delete its directory. False when there was no devnet there."""
        if not self.layout.exists():
            if purge and self.layout.root.exists():
                shutil.rmtree(self.layout.root)
            return False
        from zgrid.node import clear_under, purge_node  # noqa: PLC0415  # only `down` needs them

        with self.layout.locked():
            state = self.layout.load()
            nodes = self._nodes(state)
            for node in nodes:
                if node.daemon.running():
                    self.progress(f"{node.name}: stopping")
            await asyncio.gather(*(asyncio.to_thread(node.daemon.stop) for node in nodes))
            known = {node.data: node.host.netns for node in nodes}
            for data in node_data_dirs(self.layout):
                self.progress(f"{data.name}: removing its containers, mounts and namespaces")
                await purge_node(data, netns=known.get(data))
            for name in ("explorer", "hub", "ledger"):
                if self._daemon(name).stop():
                    self.progress(f"{name}: stopped")
            await self._yggdrasil(state).stop()
            self.progress(f"host network: removing bridge {state.bridge} and the hosts")
            await remove_network(state, nodes=len(node_data_dirs(self.layout)))
            await clear_under(self.layout.root)  # anything still naming the directory
            self.layout.release_machine()
        if purge:
            self.progress(f"deleting {self.layout.root}")
            shutil.rmtree(self.layout.root)
        return True


def _check_machine() -> None:
    if os.geteuid() != 0:
        raise DevnetError(
            "the devnet needs root: it makes network namespaces, bridges, mounts and containers"
        )
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        raise DevnetError(
            f"missing tools: {', '.join(missing)} (`make install` installs them on Debian)"
        )
