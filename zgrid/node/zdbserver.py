"""The node's own Zero-DB server: started detached, found again after a daemon restart.

It runs ``python -m zgrid zdb run`` in its own session, so a daemon killed with -9 leaves
it serving; ``ensure_running()`` finds it by its command line (the data directory is
in it) and its answer to an authenticated PING, restarts it when dead or mute, and never
lets two run on one data directory. The admin password is made once and kept 0600 under
the root; it reaches the server through its environment, never its command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from zgrid.atomic import write_atomic
from zgrid.node.errors import NodeConfigError, SystemCommandError
from zgrid.zdb import ClientError, ConnectionLost, ZdbClient

__all__ = ["ZdbServer"]

log = logging.getLogger(__name__)

_ANY = ("::", "0.0.0.0", "")
_LOG_KEEP = 8 << 20  # bytes of server log kept before it is rotated at a start
_START_TIMEOUT = 30.0


def _process_args(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")  # a zombie has exited


class ZdbServer:
    """The node's Zero-DB server, its data under ``root``, on ``listen``:``port``."""

    patience = 10.0  # seconds a running server may stay mute (loading) before it is replaced

    def __init__(
        self, root: Path, *, port: int = 9900, listen: str = "::", python: str = sys.executable
    ) -> None:
        self.root = root
        self.port = port
        self.listen = listen
        self.python = python
        self.data = root / "data"
        self.index = root / "index"
        self.pid_file = root / "zdb.pid"
        self.log_file = root / "zdb.log"
        self._secret = root / "admin.secret"
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = asyncio.Lock()

    @property
    def host(self) -> str:
        """Where the node itself connects: loopback when the server listens everywhere."""
        return "127.0.0.1" if self.listen in _ANY else self.listen

    @property
    def password(self) -> str:
        """The admin password, made on first use and kept 0600 under the root."""
        try:
            text = self._secret.read_text().strip()
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            raise NodeConfigError(f"cannot read {self._secret}: {exc.strerror}") from exc
        if text:
            return text
        self.root.mkdir(parents=True, exist_ok=True)
        text = secrets.token_hex(24)
        write_atomic(self._secret, text.encode() + b"\n", mode=0o600)
        return text

    # -- processes ------------------------------------------------------------------------

    def _is_ours(self, args: list[str]) -> bool:
        for at, arg in enumerate(args[:-1]):
            if arg == "--data" and args[at + 1] == str(self.data):
                return "zdb" in args and "run" in args
        return False

    def pids(self) -> list[int]:
        """Every live server process on this root's data (normally one, or none)."""
        self._reap()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if self._is_ours(_process_args(pid)) and _alive(pid):
                found.append(pid)
        return sorted(found)

    def _reap(self) -> None:
        """A server started by this process and since exited is waited for (no zombie)."""
        if self._process is not None and self._process.poll() is not None:
            self._process = None

    async def _answers(self) -> bool:
        try:
            client = await asyncio.wait_for(ZdbClient.connect(self.host, self.port), 2)
        except (ClientError, TimeoutError):
            return False
        try:
            await asyncio.wait_for(client.execute("AUTH", self.password), 2)
            return await asyncio.wait_for(client.ping(), 2)
        except (ClientError, ConnectionLost, TimeoutError):
            return False  # also a server without our admin password: not the node's
        finally:
            await client.close()

    async def _signal_all(self, pids: list[int], signum: int, wait: float) -> list[int]:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            self._reap()
            pids = [pid for pid in pids if _alive(pid)]
            if not pids:
                break
            await asyncio.sleep(0.05)
        return pids

    async def _end(self, pids: list[int], *, grace: float = 15) -> None:
        left = await self._signal_all(pids, signal.SIGTERM, grace)
        await self._signal_all(left, signal.SIGKILL, 5)

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """One caller at a time, in this process (the lock) and across processes (flock)."""
        async with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / "zdb.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        await asyncio.sleep(0.05)
                yield
            finally:
                os.close(fd)  # releases the flock

    # -- lifecycle ------------------------------------------------------------------------

    async def ensure_running(self) -> int:
        """The pid of the node's server: the running one if it answers, else a new one."""
        async with self._exclusive():
            pids = self.pids()
            if pids:
                deadline = time.monotonic() + self.patience  # it may be loading its namespaces
                while time.monotonic() < deadline:
                    if await self._answers():
                        await self._end(pids[1:])  # never two: the first one serves
                        self._write_pid(pids[0])
                        return pids[0]
                    await asyncio.sleep(0.1)
                log.warning("the node's zdb server (pid %s) does not answer: restarting it", pids)
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGCONT)  # a stopped process cannot take a SIGTERM
                await self._end(pids, grace=2)
            return await self._start()

    def _write_pid(self, pid: int) -> None:
        write_atomic(self.pid_file, b"%d\n" % pid, mode=0o644, sync=False)

    def _log_tail(self) -> str:
        try:
            with self.log_file.open("rb") as file:
                file.seek(max(0, file.seek(0, os.SEEK_END) - 2000))
                return file.read().decode(errors="replace").strip()
        except OSError:
            return ""

    async def _start(self) -> int:
        for directory in (self.root, self.data, self.index):
            directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if self.log_file.stat().st_size > _LOG_KEEP:
                os.replace(self.log_file, self.log_file.with_name("zdb.log.1"))
        argv = [self.python, "-m", "zgrid", "zdb", "run", "--data", str(self.data)]
        argv += ["--index", str(self.index), "--listen", self.listen, "--port", str(self.port)]
        env = {**os.environ, "ZGRID_ZDB_ADMIN": self.password}
        with self.log_file.open("ab") as output:
            try:
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # outlives the daemon, and its signals
                    close_fds=True,
                )
            except OSError as exc:
                raise SystemCommandError(argv, None, str(exc)) from exc
        self._process = process
        self._write_pid(process.pid)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._process = None
                raise SystemCommandError(argv, process.returncode, self._log_tail())
            if await self._answers():
                log.info("the node's zdb server runs (pid %d, port %d)", process.pid, self.port)
                return process.pid
            await asyncio.sleep(0.05)
        await self._end([process.pid])
        raise SystemCommandError(
            argv, -9, f"did not answer within {_START_TIMEOUT:g} s: {self._log_tail()}"
        )

    async def stop(self) -> None:
        """Stop the server (SIGTERM: it writes everything out), kill it if it hangs."""
        async with self._exclusive():
            await self._end(self.pids())
            with contextlib.suppress(FileNotFoundError):
                self.pid_file.unlink()

    # -- clients --------------------------------------------------------------------------

    async def connect(self, namespace: str | None = None, password: str | None = None) -> ZdbClient:
        """A client of the server as anyone reaches it (no admin rights)."""
        return await ZdbClient.connect(self.host, self.port, namespace=namespace, password=password)

    async def admin(self) -> ZdbClient:
        """A client authenticated as the server's admin (NSNEW, NSSET, NSDEL …)."""
        client = await ZdbClient.connect(self.host, self.port)
        try:
            await client.execute("AUTH", self.password)
        except BaseException:
            await client.close()
            raise
        return client
