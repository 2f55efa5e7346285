"""The devnet's long-running processes: started detached, found again through pid files.

`zgrid devnet up` returns while the ledger, the hub and the nodes go on running, so each
is started in a session of its own with its output in a log file, and its pid file holds
the pid and the process's start time: a pid the kernel gave to another process since is
not taken for ours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from zgrid.atomic import write_atomic
from zgrid.devnet.errors import DevnetStartFailed

__all__ = ["Daemon", "process_alive", "start_time"]

_POLL = 0.05


def start_time(pid: int) -> int | None:
    """The start time of ``pid`` (clock ticks since boot), None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def process_alive(pid: int, started: int) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs."""
    return start_time(pid) == started


@dataclass(frozen=True)
class Daemon:
    """One named process of the devnet: its pid file and its log."""

    name: str
    pid_file: Path
    log: Path

    def pid(self) -> int | None:
        """The pid of the running process, None when it is not running."""
        try:
            pid_text, started_text = self.pid_file.read_text().split()
            pid, started = int(pid_text), int(started_text)
        except (OSError, ValueError):
            return None
        return pid if process_alive(pid, started) else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> int:
        """Start ``argv`` detached (stdin closed, output appended to the log)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
            out.flush()
            try:
                process = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=None if env is None else {**os.environ, **env},
                    cwd=cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise DevnetStartFailed(f"cannot start the {self.name}: {exc}") from exc
        started = start_time(process.pid)
        write_atomic(self.pid_file, f"{process.pid} {started or 0}\n".encode(), mode=0o644)
        # Not waited for here: it outlives this process. Forget it so no ResourceWarning fires.
        process.returncode = 0
        return process.pid

    def wait_until(
        self, ready: Callable[[], bool], *, timeout: float, what: str = "answer"
    ) -> None:
        """Wait for ``ready()``; fail with the log's tail if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while not ready():
            if not self.running():
                raise DevnetStartFailed(
                    f"the {self.name} exited before it could {what}; its log ({self.log}):\n"
                    f"{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise DevnetStartFailed(
                    f"the {self.name} did not {what} within {timeout:.0f} s; its log "
                    f"({self.log}):\n{self.tail()}"
                )
            time.sleep(_POLL)

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, *, timeout: float = 20.0) -> bool:
        """Ctrl-C the process, then SIGKILL after ``timeout``; True if one was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        started = start_time(pid)
        assert started is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while process_alive(pid, started) and time.monotonic() < deadline:
            time.sleep(_POLL)
        if process_alive(pid, started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while process_alive(pid, started):
                time.sleep(_POLL)
        self.pid_file.unlink(missing_ok=True)
        return True
