"""A devnet for tests, run through the `zgrid` command as a user runs it, and a search for
anything of it left on the machine (namespaces, links, mounts, loop devices, processes)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.processes import ZGRID
from zgrid.devnet.layout import Layout
from zgrid.devnet.network import host_netns, internet, plug_host
from zgrid.node import links, node_scope, purge_node, unique_name
from zgrid.node.net.planetary import netns_prefix
from zgrid.node.primitives.network import network_netns_prefix
from zgrid.node.runtime.bundle import cgroup_parent

UP_TIMEOUT = 900  # a fresh machine builds the Debian image (debootstrap) once


@dataclass
class DevnetRun:
    """A devnet in ``root/devnet``, its client home in ``root/home``."""

    root: Path
    first_status: dict[str, Any] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.root / "devnet"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def work(self) -> Path:
        path = self.root / "work"
        path.mkdir(exist_ok=True)
        return path

    def env(self) -> dict[str, str]:
        environment = {
            key: value
            for key, value in os.environ.items()
            if key not in ("ZGRID_LEDGER", "ZGRID_HUB", "ZGRID_NETWORK")
        }
        environment.update(ZGRID_DEVNET_DIR=str(self.dir), ZGRID_HOME=str(self.home))
        return environment

    def zgrid(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [ZGRID, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"zgrid {' '.join(args)} exited {done.returncode}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
        return done

    def zgrid_json(self, *args: str, timeout: float = 120) -> Any:
        return json.loads(self.zgrid(*args, "--json", timeout=timeout).stdout)

    def up_first(self) -> None:
        self.first_status = self.zgrid_json("devnet", "up", "--nodes", "2", timeout=UP_TIMEOUT)

    def close(self) -> None:
        """Take the devnet down whatever state the tests left it in."""
        self.zgrid("devnet", "down", "--purge", timeout=300, check=False)

    def marks(self, status: dict[str, Any]) -> dict[str, list[str]]:
        """The names by which the devnet's traces are found on the machine."""
        layout = Layout(self.dir)
        state = layout.load()
        hosts = [host_netns(state, n) for n in range(1, state.nodes + 1)]
        world = internet(state)
        scopes = [node_scope(Path(node["data"])) for node in status["nodes"]]
        prefixes = [netns_prefix(scope) for scope in scopes]
        prefixes += [network_netns_prefix(scope) for scope in scopes]
        return {
            "netns": [host.netns for host in hosts] + [world.netns],
            "netns_prefixes": prefixes,
            "links": [
                state.bridge,
                *(host.veth for host in hosts),
                *(host.public_veth for host in hosts),
                world.veth,
                world.public_veth,
                world.public_bridge,
                unique_name("ygg", f"devnet:{layout.root}"),
            ],
            "dir": [str(self.dir)],
            "cgroups": [cgroup_parent(node_scope(Path(node["data"]))) for node in status["nodes"]],
        }


def _names(argv: list[str]) -> list[str]:
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def leftovers(marks: dict[str, list[str]]) -> dict[str, list[str]]:
    """Everything of the devnet still on the machine, by kind (empty when nothing is)."""
    found: dict[str, list[str]] = {}
    namespaces = _names(["ip", "netns", "list"])
    netns = [
        name
        for name in namespaces
        if name in marks["netns"] or name.startswith(tuple(marks["netns_prefixes"]))
    ]
    links = [
        line.split(":")[1].strip().split("@")[0]
        for line in subprocess.run(
            ["ip", "-o", "link"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
    ]
    directory = marks["dir"][0]
    mounts = [
        line.split()[1]
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if directory in line
    ]
    loops = [
        line
        for line in subprocess.run(
            ["losetup", "-a"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        if directory in line
    ]
    processes = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if directory.encode() in cmdline:
                processes.append(f"{entry}: {cmdline.decode(errors='replace')[:200]}")
    cgroups = [
        str(path)
        for parent in marks["cgroups"]
        for path in Path("/sys/fs/cgroup").glob(f"**/{parent}")
        if path.is_dir()
    ]
    for kind, items in (
        ("ip netns list", netns),
        ("ip link", [name for name in links if name in marks["links"]]),
        ("mount", mounts),
        ("losetup -a", loops),
        ("ps", processes),
        ("cgroups", cgroups),
    ):
        if items:
            found[kind] = items
    return found


class SpareHost:
    """Another "machine" on the devnet's bridge: a netns with an address of its own."""

    def __init__(self, directory: Path, name: str) -> None:
        self.state = Layout(directory).load()
        self.netns = unique_name("zgdt", self.state.bridge, name)
        self.veth = unique_name("zgdu", self.state.bridge, name)
        self.address = f"{self.state.prefix}.200"

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["nsenter", f"--net={links.netns_path(self.netns)}", *argv]

    def plug(self) -> None:
        asyncio.run(
            plug_host(
                self.netns, self.veth, bridge=self.state.bridge,
                address=f"{self.address}/24", gateway=self.state.gateway,
            )
        )  # fmt: skip

    def unplug(self, node_data: Path | None = None) -> None:
        """Remove the host, and every trace of a node that ran in it from ``node_data``."""
        asyncio.run(self._unplug(node_data))

    async def _unplug(self, node_data: Path | None) -> None:
        if node_data is not None and node_data.exists():
            await purge_node(node_data, netns=self.netns)
        await links.delete_link(self.veth)
        await links.delete_netns(self.netns)
