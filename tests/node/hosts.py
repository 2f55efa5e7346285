"""Hosts for multi-node tests: network namespaces on one bridge, each like its own machine.

A :class:`HostNetwork` is a bridge in the root netns with a free 10.x.y.0/24; the root
side is .1, so a server the test starts in the root netns (ledger, hub) and binds on
``network.gateway`` is reachable from every host. Each :class:`Host` is a netns with a
veth to the bridge, address .N and a default route via .1.

Commands run in a host through ``nsenter --net`` rather than ``ip netns exec``: the
latter gives the command a private mount namespace, so a netns that a node daemon
creates inside a host (`ip netns add`) would not be visible, nor enterable, outside it.

Closing the network runs the cleanups tests registered with :meth:`HostNetwork.defer`,
stops the hosts' yggdrasil daemons, kills every process inside the hosts and inside the
zmachine namespaces node code made from them (:meth:`Host.machine_netns`), and deletes
those namespaces, the links and the bridge, also when a test failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from zgrid.devnet.network import free_prefix, plug_host
from zgrid.node.naming import unique_name
from zgrid.node.net import Yggdrasil, links

YGGDRASIL_PORT = 7443
"""Every host's yggdrasil listens on tcp://<its address>:7443 (ports are per netns)."""

_HTTP_GET = (
    "import sys, urllib.request\n"
    "with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as answer:\n"
    "    sys.stdout.write(answer.read().decode())\n"
)


class Host:
    """One netns on the bridge: a machine of its own for a node daemon or a client."""

    def __init__(self, network: HostNetwork, name: str, number: int) -> None:
        self.network = network
        self.name = name
        self.netns = unique_name("zh", network.bridge, name)
        self.veth = unique_name("zhv", network.bridge, name)
        self.address = f"{network.prefix}.{number}"
        self.dir = network.workdir / name
        self.processes: list[subprocess.Popen[bytes]] = []
        self.yggdrasil_daemon: Yggdrasil | None = None

    @property
    def netns_path(self) -> Path:
        return links.netns_path(self.netns)

    @property
    def yggdrasil_uri(self) -> str:
        """Where this host's yggdrasil listens, for peers to name."""
        return f"tcp://{self.address}:{YGGDRASIL_PORT}"

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the host's netns (and nothing else changed)."""
        return ["nsenter", f"--net={self.netns_path}", *[str(part) for part in argv]]

    def exec(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 30,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the host to its end (``env`` added to ours); the caller checks
        ``returncode``."""
        return subprocess.run(
            self.command(argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=None if env is None else {**os.environ, **env},
        )

    def popen(
        self, argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in the host, output to ``log``; it is killed when the network closes."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(
                self.command(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=None if env is None else {**os.environ, **env},
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def python(
        self, code: str, *args: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run Python ``code`` (this interpreter, this PYTHONPATH) in the host."""
        return self.exec([sys.executable, "-c", code, *args], timeout=timeout)

    def http_get(self, url: str, *, timeout: float = 5) -> subprocess.CompletedProcess[str]:
        """GET ``url`` from inside the host; the body is ``stdout`` when ``returncode`` is 0."""
        return self.python(_HTTP_GET, url, str(timeout), timeout=timeout + 10)

    def yggdrasil(self, *, peers: Sequence[str] = (), listen: bool = True) -> Yggdrasil:
        """Start (or find) yggdrasil in the host, listening on :attr:`yggdrasil_uri`.

        It is started from the test process into the host's netns (``netns=``); code
        running inside the host (a node daemon) that builds a ``Yggdrasil`` with the same
        root, scope, listen and peers and no ``netns`` finds this daemon and reuses it.
        """
        ygg = Yggdrasil(
            self.dir / "yggdrasil",
            scope=self.netns,
            listen=[self.yggdrasil_uri] if listen else [],
            peers=list(peers),
            netns=self.netns,
        )
        self.yggdrasil_daemon = ygg
        asyncio.run(ygg.ensure_running())
        return ygg

    def pids(self, netns: str | None = None) -> list[int]:
        """Every process inside the host's netns (or the named one)."""
        done = subprocess.run(
            ["ip", "netns", "pids", netns or self.netns],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(pid) for pid in done.stdout.split()]

    def machine_netns(self) -> list[str]:
        """The zmachine and network namespaces node code made from this host, found by
        their records.

        A node whose data directory is under :attr:`dir` keeps one record per zmachine
        netns (PlanetaryNetwork's) and per network (the network primitive's) there; those
        namespaces are machine-wide, not inside the host.
        """
        found = []
        records = [*self.dir.rglob("zm*.json"), *self.dir.rglob("networks/*.json")]
        for path in sorted(records) if self.dir.exists() else []:
            with contextlib.suppress(OSError, ValueError):
                record = json.loads(path.read_text())
                if isinstance(record, dict) and isinstance(record.get("netns"), str):
                    found.append(record["netns"])
        return found

    def kill_all(self) -> None:
        """SIGKILL every process started in the host or living in its namespaces."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        spaces = [self.netns, *self.machine_netns()]
        for netns in spaces:
            for pid in self.pids(netns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        deadline = time.monotonic() + 5
        while any(self.pids(netns) for netns in spaces) and time.monotonic() < deadline:
            time.sleep(0.02)


class HostNetwork:
    """A bridge with hosts on it; use as a context manager (``close`` tears it all down)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.bridge = unique_name("zt", str(os.getpid()), secrets.token_hex(8))
        self.prefix = ""
        self.hosts: dict[str, Host] = {}
        self._cleanups: list[Callable[[], Any]] = []

    @property
    def gateway(self) -> str:
        """The root netns's address on the bridge: bind servers here to reach them from hosts."""
        return f"{self.prefix}.1"

    def start(self) -> HostNetwork:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.prefix = free_prefix()
        asyncio.run(self._start())
        return self

    async def _start(self) -> None:
        await links.add_bridge(self.bridge)
        await links.add_address(self.bridge, f"{self.gateway}/24")
        await links.set_up(self.bridge)

    def add_host(self, name: str) -> Host:
        """A new host ``name`` with address .N (N = 2, 3, … in order of creation)."""
        if name in self.hosts:
            raise ValueError(f"host {name!r} exists already")
        host = Host(self, name, len(self.hosts) + 2)
        self.hosts[name] = host
        asyncio.run(self._plug(host))
        return host

    async def _plug(self, host: Host) -> None:
        await plug_host(
            host.netns, host.veth, bridge=self.bridge, address=f"{host.address}/24",
            gateway=self.gateway,
        )  # fmt: skip

    def add_client(self, name: str = "client") -> Host:
        """A host whose yggdrasil listens first, so the others name it as their peer.

        Start node hosts' yggdrasil with ``peers=[client.yggdrasil_uri]``: yggdrasil only
        retries a refused peer once a minute, so the listener must be up before them.
        """
        client = self.add_host(name)
        client.yggdrasil()
        return client

    def defer(self, cleanup: Callable[[], Any]) -> None:
        """Run ``cleanup`` when the network closes (last registered, first run)."""
        self._cleanups.append(cleanup)

    def close(self) -> None:
        errors: list[BaseException] = []
        for cleanup in reversed(self._cleanups):
            try:
                cleanup()
            except Exception as exc:  # every cleanup runs; the first failure is raised
                errors.append(exc)
        for host in self.hosts.values():
            if host.yggdrasil_daemon is not None:
                with contextlib.suppress(Exception):
                    asyncio.run(host.yggdrasil_daemon.stop())
            host.kill_all()
        try:
            asyncio.run(self._teardown())
        except Exception as exc:
            errors.append(exc)
        if errors:
            raise errors[0]

    async def _teardown(self) -> None:
        for host in self.hosts.values():
            for netns in host.machine_netns():
                await links.delete_netns(netns)
            await links.delete_link(host.veth)
            await links.delete_netns(host.netns)
        await links.delete_link(self.bridge)

    def __enter__(self) -> HostNetwork:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
