"""The node's yggdrasil daemon: its config and keys, its process, its address and its peers.

The config is generated once under the root directory (keys 0600), so the node keeps its
200::/7 address and 300::/64 subnet across restarts. Only the peers it is told about are
used: multicast discovery is off. The daemon runs detached (its own session, a pid file),
so it outlives a crash of the node; the next start finds it and reuses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from zgrid.node.errors import NetworkFailure, SystemCommandError
from zgrid.node.naming import unique_name
from zgrid.node.net import links
from zgrid.node.net.detached import live_argv
from zgrid.node.system import run_command

__all__ = ["Yggdrasil"]

_UNIX_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL
_POLL = 0.05


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by its owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


class Yggdrasil:
    """One node's yggdrasil: ``ensure_running`` starts it (or finds it), ``stop`` ends it.

    The TUN interface appears in the network namespace of the process that calls
    ``ensure_running``, or in ``netns`` when one is named (the daemon is started there
    through ``nsenter --net``). The admin socket is a file under ``root``, so
    ``peers_up`` and ``stop`` work from any namespace.
    """

    def __init__(
        self,
        root: Path,
        *,
        scope: str,
        listen: Sequence[str] = (),
        peers: Sequence[str] = (),
        binary: str = "yggdrasil",
        ctl: str = "yggdrasilctl",
        netns: str | None = None,
    ) -> None:
        self.root = Path(root).absolute()
        self.scope = scope
        self.listen = list(listen)
        self.peers = list(peers)
        self.binary = binary
        self.ctl = ctl
        self.netns = netns
        self.ifname = unique_name("ygg", scope)
        self.config_path = self.root / "yggdrasil.conf"
        self.admin_socket = self.root / "admin.sock"
        self.pid_path = self.root / "yggdrasil.pid"
        self.log_path = self.root / "yggdrasil.log"
        self._identity_path = self.root / "identity.json"
        self._lock_path = self.root / "yggdrasil.lock"
        self._identity: dict[str, str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = asyncio.Lock()
        if len(str(self.admin_socket)) > _UNIX_PATH_MAX:
            raise NetworkFailure(
                f"yggdrasil root {self.root} is too long for its admin socket "
                f"(at most {_UNIX_PATH_MAX - len('/admin.sock')} characters)"
            )

    # --- config and identity ------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        return {
            "Listen": self.listen,
            "Peers": self.peers,
            "InterfacePeers": {},
            "MulticastInterfaces": [],
            "IfName": self.ifname,
            "AdminListen": f"unix://{self.admin_socket}",
            "NodeInfoPrivacy": True,
        }

    async def _yggdrasil(self, *args: str) -> str:
        try:
            return await run_command([self.binary, *args], timeout=20)
        except SystemCommandError as exc:
            raise NetworkFailure(f"yggdrasil cannot {args[-1].lstrip('-')}: {exc}") from exc

    @contextlib.asynccontextmanager
    async def _machine_lock(self) -> AsyncIterator[None]:
        """Held while the config is written or the daemon started, by any process."""
        async with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the lock

    async def ensure_config(self) -> None:
        """Write the config (keys made the first time only) with the current listen/peers."""
        async with self._machine_lock():
            await self._ensure_config()

    async def _ensure_config(self) -> None:
        if self.config_path.exists():
            try:
                config = json.loads(self.config_path.read_text())
            except ValueError as exc:
                raise NetworkFailure(f"yggdrasil config {self.config_path} is not JSON") from exc
        else:
            config = json.loads(await self._yggdrasil("-genconf", "-json"))
        wanted = {**config, **self._settings()}
        if wanted != config or not self.config_path.exists():
            _write_private(self.config_path, json.dumps(wanted, indent=2) + "\n")
            self._identity = None
        if self._load_identity(wanted.get("PublicKey", "")) is None:
            conf = str(self.config_path)
            address = (await self._yggdrasil("-useconffile", conf, "-address")).strip()
            subnet = (await self._yggdrasil("-useconffile", conf, "-subnet")).strip()
            identity = {"public_key": wanted.get("PublicKey", ""), "address": address}
            identity["subnet"] = subnet
            _write_private(self._identity_path, json.dumps(identity) + "\n")
            self._identity = identity

    def _load_identity(self, public_key: str | None = None) -> dict[str, str] | None:
        if self._identity is None:
            with contextlib.suppress(OSError, ValueError):
                self._identity = json.loads(self._identity_path.read_text())
        if (
            self._identity is not None
            and public_key
            and self._identity.get("public_key") != public_key
        ):
            self._identity = None
        return self._identity

    def _known(self, field: str) -> str:
        identity = self._load_identity()
        if identity is None or not identity.get(field):
            raise NetworkFailure(f"yggdrasil under {self.root} has no config yet (ensure_config)")
        return identity[field]

    @property
    def address(self) -> str:
        """The node's own yggdrasil address (in 200::/7)."""
        return self._known("address")

    @property
    def subnet(self) -> str:
        """The node's routed prefix, ``300:…::/64``, from which its machines get addresses."""
        return self._known("subnet")

    # --- process ------------------------------------------------------------------------

    def _config_digest(self) -> str:
        return hashlib.sha256(self.config_path.read_bytes()).hexdigest()

    def _is_ours(self, pid: int) -> bool:
        argv = live_argv(pid)
        return "-useconffile" in argv and str(self.config_path) in argv

    def _running(self) -> tuple[int, str] | None:
        """The live daemon's pid and the config digest it was started with."""
        if self._process is not None and self._process.poll() is not None:
            self._process = None  # reap our own child once it has exited
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            record = json.loads(self.pid_path.read_text())
            pid = int(record["pid"])
            if self._is_ours(pid):
                return pid, str(record.get("config", ""))
        for entry in Path("/proc").iterdir():  # started, then a crash before the pid file
            if entry.name.isdigit() and self._is_ours(int(entry.name)):
                return int(entry.name), ""
        return None

    async def ensure_running(self, *, timeout: float = 20.0) -> None:
        """Start the daemon unless it runs already, and wait until its TUN is up.

        A daemon started with another config (listen or peers changed) is restarted.
        Callers in several processes never start two: a file lock guards the start.
        """
        async with self._machine_lock():
            await self._ensure_config()
            running = self._running()
            if running is not None and running[1] not in ("", self._config_digest()):
                await self._terminate(running[0])
                running = None
            pid = self._start() if running is None else running[0]
            await self._wait_up(pid, timeout)

    def _start(self) -> int:
        with contextlib.suppress(FileNotFoundError):
            self.admin_socket.unlink()  # left by a killed daemon; nobody listens on it
        argv = [self.binary, "-useconffile", str(self.config_path), "-logto", "stdout"]
        if self.netns is not None:  # nsenter enters the netns and execs in place: same pid
            argv = ["nsenter", f"--net={links.netns_path(self.netns)}", *argv]
        with self.log_path.open("ab") as log:
            try:
                self._process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise NetworkFailure(f"cannot start {argv[0]}: {exc}") from exc
        record = {"pid": self._process.pid, "config": self._config_digest()}
        _write_private(self.pid_path, json.dumps(record) + "\n")
        return self._process.pid

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
            return " / ".join(lines[-3:])
        return ""

    async def _wait_up(self, pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            link = await links.get_link(self.ifname, netns=self.netns)
            if (
                link is not None
                and link.up
                and await links.addresses(self.ifname, netns=self.netns)
            ):
                return
            if self._running() is None:
                raise NetworkFailure(f"yggdrasil exited while starting: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise NetworkFailure(
                    f"yggdrasil (pid {pid}) has no interface {self.ifname} up after "
                    f"{timeout:g} s: {self._log_tail()}"
                )
            await asyncio.sleep(_POLL)

    async def _terminate(self, pid: int, timeout: float = 5.0) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._is_ours(pid):
            if self._process is not None and self._process.pid == pid:
                self._process.poll()
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(_POLL)
        if self._process is not None and self._process.pid == pid:
            self._process.wait()
            self._process = None

    async def stop(self) -> None:
        """End the daemon (its TUN goes with it); nothing running is fine."""
        async with self._machine_lock():
            running = self._running()
            if running is not None:
                await self._terminate(running[0])
            with contextlib.suppress(FileNotFoundError):
                self.pid_path.unlink()

    def pid(self) -> int | None:
        """The live daemon's process id, if one runs."""
        running = self._running()
        return None if running is None else running[0]

    # --- admin socket -------------------------------------------------------------------

    async def peers_up(self) -> int:
        """How many peers the daemon is connected to right now."""
        argv = [self.ctl, f"-endpoint=unix://{self.admin_socket}", "-json", "getPeers"]
        try:
            out = await run_command(argv, timeout=10)
            peers = json.loads(out).get("peers", [])
        except SystemCommandError as exc:
            raise NetworkFailure(f"cannot ask yggdrasil for its peers: {exc}") from exc
        except (ValueError, AttributeError) as exc:
            raise NetworkFailure("yggdrasilctl getPeers printed no JSON object") from exc
        return len(peers) if isinstance(peers, list) else 0
