"""Programs the node runs detached (the gateway's Caddy and HAProxy): started in a session
of their own, inside a named netns when asked, found again through /proc after the node
daemon restarts, and ended by pid.

A program is recognised by a marker argument on its command line (its config file's path,
unique per directory), so a stale pid file whose pid was reused never makes the node
signal a stranger.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from zgrid.node.errors import GatewayError, SystemCommandError
from zgrid.node.net import links
from zgrid.node.system import run_command

__all__ = [
    "bound_log",
    "end",
    "live_argv",
    "log_tail",
    "pids_with",
    "read_pid",
    "spawn",
    "taken_ports",
]

LOG_LIMIT = 1 << 20  # bytes a log grows to before its older half is dropped
_POLL = 0.05
_HOLDER = re.compile(r'\("([^"]+)",pid=(\d+)')


def live_argv(pid: int) -> list[str]:
    """The command line of a live process; empty for one that is gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return []
    if state in ("Z", "X"):  # exited, not yet reaped
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is_ours(pid: int, marker: str) -> bool:
    return marker in live_argv(pid)


def pids_with(marker: str) -> list[int]:
    """Every live process whose command line holds ``marker`` as one argument."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _is_ours(int(entry.name), marker):
            found.append(int(entry.name))
    return sorted(found)


def read_pid(path: Path, marker: str) -> int | None:
    """The pid in ``path`` if that process is alive and is ours."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _is_ours(pid, marker) else None


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    cwd: Path,
    netns: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached: its own session, output appended to ``log``.

    In ``netns`` it is started through ``nsenter --net``, which enters the namespace and
    execs in place, so the pid is the program's own.
    """
    command = list(argv)
    if netns is not None:
        command = ["nsenter", f"--net={links.netns_path(netns)}", "--", *command]
    bound_log(log)
    with log.open("ab") as out:
        try:
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=None if env is None else {**os.environ, **env},
                start_new_session=True,  # outlives the daemon and its signals
            )
        except OSError as exc:
            raise GatewayError(f"cannot start {command[0]}: {exc}") from exc


def log_tail(path: Path, lines: int = 4) -> str:
    """The last lines of a log, joined by " / " for a one-line error message."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 8192))
            text = log.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " / ".join(kept) if kept else "(empty log)"


def bound_log(path: Path, limit: int = LOG_LIMIT) -> None:
    """Keep a log under ``limit`` bytes: past it, the log moves to ``<name>.1`` and restarts.

    The programs write with O_APPEND, so truncating the file in place is safe: their next
    line lands at its new end.
    """
    with contextlib.suppress(OSError):
        if path.stat().st_size > limit:
            path.with_name(path.name + ".1").write_bytes(path.read_bytes()[-limit:])
            os.truncate(path, 0)


async def end(pids: Iterable[int], marker: str, *, timeout: float = 10.0) -> None:
    """SIGTERM each of our ``pids``, SIGKILL what is left after ``timeout``, wait for all."""
    left = [pid for pid in pids if _is_ours(pid, marker)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    killed = False
    while True:
        left = [pid for pid in left if _is_ours(pid, marker)]
        if not left:
            return
        if time.monotonic() > deadline:
            if killed:
                raise GatewayError(f"processes {left} do not end even after SIGKILL")
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            killed, deadline = True, time.monotonic() + timeout
        await asyncio.sleep(_POLL)


def _address(text: str) -> str:
    """An address as `ss` prints it ("[::]", "127.0.0.53%lo", "*"), normalised."""
    text = text.strip("[]").split("%", 1)[0]
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(text))
    return text


def _conflicts(listener: str, wanted: str) -> bool:
    if listener in ("*", wanted):  # "*": a dual-stack [::] socket takes every address
        return True
    version = ipaddress.ip_address(wanted).version
    return (listener, version) in (("0.0.0.0", 4), ("::", 6))


async def taken_ports(
    netns: str | None, wanted: Sequence[tuple[str, int]]
) -> list[tuple[str, int, str]]:
    """Which of ``wanted`` (address, port) a TCP listener in the namespace already holds,
    each with who holds it ("name, pid N" when `ss` can tell)."""
    argv = ["ss", *(("-N", netns) if netns else ()), "-H", "-l", "-t", "-n", "-p"]
    try:
        out = await run_command(argv, timeout=10)
    except SystemCommandError:
        return []  # the proxy's own bind error still names the address
    taken = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 5 or ":" not in fields[3]:
            continue
        address, _, port = fields[3].rpartition(":")
        holder = _HOLDER.search(line)
        who = f"{holder.group(1)}, pid {holder.group(2)}" if holder else ""
        for want_address, want_port in wanted:
            if port == str(want_port) and _conflicts(_address(address), want_address):
                taken.append((want_address, want_port, who))
    return taken
