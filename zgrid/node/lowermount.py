"""The process that serves one flist's read-only FUSE mount (a container image's lower):
started detached from the daemon so it outlives a crash of it, found again by its pid
file, stopped and cleaned up, including after it died and left a dead mount behind.

``python -m zgrid.node.lowermount FLIST MOUNTPOINT CACHE`` is the process itself: what
``zgrid flist mount FLIST MOUNTPOINT --cache CACHE`` does, without loading the whole
command line (which would double the time a cold mount takes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from zgrid.node.errors import NodeError, SystemCommandError
from zgrid.node.rootfs import read_mountinfo
from zgrid.node.system import run_command

__all__ = ["FUSE_TYPE", "LowerMount", "process_alive"]

FUSE_TYPE = "fuse.flist"  # the type zgrid.flist.mount's mounts have in mountinfo
_LOG_TAIL = 2000  # characters of a mount process's output quoted in an error
# The mount process writes its pid where the manager finds it, then becomes the mount
# command; `setsid -f` detaches it so it is nobody's child but init's.
_PID_THEN_EXEC = 'echo $$ > "$0" && exec "$@"'
_STOP_GRACE = 5.0  # seconds a mount process gets to unmount itself on SIGTERM


def process_alive(pid: int) -> bool:
    """Running, and not a zombie (the machine's init may be slow to reap, or not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()
    return bool(state) and state[0] not in ("Z", "X")


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class LowerMount:
    """Where one flist is mounted, and the files of the process serving it."""

    flist: Path
    mount_point: Path
    pid_file: Path
    log_file: Path
    cache: Path

    def server_pid(self) -> int | None:
        """The pid of the live process serving the mount point, if any."""
        pid = _read_pid(self.pid_file)
        # The pid file may be from before a reboot: the pid is ours only if that process
        # is a mount of this very mount point.
        if pid is not None and process_alive(pid) and str(self.mount_point) in _cmdline(pid):
            return pid
        return None

    def is_mounted(self) -> bool:
        """Whether the mount point holds an flist mount, served or dead."""
        return any(
            entry.mount_point == self.mount_point and entry.fstype == FUSE_TYPE
            for entry in read_mountinfo()
        )

    def is_served(self) -> bool:
        """Mounted and its process alive: usable as it is (no I/O but /proc)."""
        return self.server_pid() is not None and self.is_mounted()

    def _tail(self) -> str:
        try:
            text = self.log_file.read_text(errors="replace").strip()
        except OSError:
            return "(no output)"
        return text[-_LOG_TAIL:] or "(no output)"

    async def start(self, python: str, timeout: float) -> None:
        """Start the mount process and wait until the kernel shows the mount."""
        for directory in (self.mount_point, self.pid_file.parent, self.cache):
            await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        argv = [
            "setsid",
            "-f",
            "sh",
            "-c",
            _PID_THEN_EXEC,
            str(self.pid_file),
            python,
            "-m",
            __name__,
            str(self.flist),
            str(self.mount_point),
            str(self.cache),
        ]
        with self.log_file.open("wb") as output:
            launcher = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output, cwd="/"
            )
        if await launcher.wait() != 0:
            raise NodeError(f"cannot start the mount of {self.flist}: {self._tail()}")
        deadline = time.monotonic() + timeout
        while True:
            if await asyncio.to_thread(self.is_served):
                return
            pid = _read_pid(self.pid_file)
            if pid is not None and not process_alive(pid):
                await self.stop()
                raise NodeError(
                    f"the mount of {self.flist} on {self.mount_point} failed: {self._tail()}"
                )
            if time.monotonic() > deadline:
                await self._pid_written(deadline + 2.0)  # so stop() finds what to stop
                await self.stop()
                raise NodeError(
                    f"{self.flist} was not mounted on {self.mount_point} within "
                    f"{timeout:g} s: {self._tail()}"
                )
            await asyncio.sleep(0.01)

    async def _pid_written(self, until: float) -> None:
        while _read_pid(self.pid_file) is None and time.monotonic() < until:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """No process serving the mount point and nothing mounted on it (a dead mount,
        "transport endpoint is not connected", is unmounted lazily)."""
        pid = self.server_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)  # it unmounts on its way out
            deadline = time.monotonic() + _STOP_GRACE
            while process_alive(pid) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if process_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        while await asyncio.to_thread(self.is_mounted):
            try:
                await run_command(["umount", "-l", str(self.mount_point)], timeout=30)
            except SystemCommandError as exc:
                if await asyncio.to_thread(self.is_mounted):
                    raise NodeError(f"cannot unmount {self.mount_point}: {exc}") from exc
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()


def _serve(argv: list[str]) -> int:
    """Serve one flist until it is unmounted or the process gets SIGTERM."""
    # Loaded here, not at the top: the daemon imports this module for LowerMount alone.
    from zgrid.flist import BlockFetcher, FlistError, FlistReader, Router, mount  # noqa: PLC0415

    if len(argv) != 3:
        print(f"usage: python -m {__name__} FLIST MOUNTPOINT CACHE", file=sys.stderr)
        return 2
    flist, mount_point, cache = (Path(arg) for arg in argv)
    try:
        with FlistReader(flist) as reader:
            routes = reader.routes()
        if not routes:
            raise FlistError(f"{flist} names no block store")
        fetcher = BlockFetcher(Router.from_routes(routes), cache=cache)
        mount(
            flist,
            mount_point,
            fetcher,
            ready=lambda: print(f"mounted {flist} on {mount_point}", file=sys.stderr, flush=True),
        )
    except FlistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1:]))
