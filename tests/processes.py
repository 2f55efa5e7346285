"""Running zgrid as a user does: the console script, and servers started until they answer."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

ZGRID = str(Path(sys.executable).parent / "zgrid")


def free_port() -> int:
    """A TCP port nothing listens on, below the kernel's ephemeral range.

    An ephemeral port (what binding port 0 gives) is also what the kernel hands to
    outgoing connections, so between choosing it and the server binding it, another
    test's client may take it; ports below that range are only ever taken on purpose.
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randint(max(1024, low - 12000), low - 1)
        if _bindable(port):
            return port
    raise RuntimeError("no free TCP port below the ephemeral range")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::")):
        with socket.socket(family) as sock:
            try:
                sock.bind((host, port))
            except OSError as exc:
                if family == socket.AF_INET6 and exc.errno == errno.EADDRNOTAVAIL:
                    continue  # no IPv6 here: the IPv4 check is what counts
                return False
    return True


def run_zgrid(
    *args: str,
    home: Path | None = None,
    ledger: str | None = None,
    stdin: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """The `zgrid` command with ``args``, its identity home and ledger URL set when given."""
    env = dict(os.environ)
    if home is not None:
        env["ZGRID_HOME"] = str(home)
    if ledger is not None:
        env["ZGRID_LEDGER"] = ledger
    return subprocess.run(
        [ZGRID, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def zgrid_here(
    *args: str,
    home: Path | None = None,
    ledger: str | None = None,
    stdin: str | None = None,
    env: Mapping[str, str | None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """What :func:`run_zgrid` gives, from ``zgrid.cli.main`` in this process: the same
    command line, environment, exit code and output, without a new Python starting (about a
    second each). For tests of what a command does; tests of the console script itself (exit
    codes of a real process, signals, terminals) use :func:`run_zgrid`. ``env`` sets
    variables for the command (None: unset), on top of ``home`` and ``ledger``."""
    from zgrid.cli import main  # noqa: PLC0415  # the suite's helpers import zgrid lazily

    given: dict[str, str | None] = {
        "ZGRID_HOME": None if home is None else str(home),
        "ZGRID_LEDGER": ledger,
    }
    env = {**given, **(env or {})}
    saved = {name: os.environ.get(name) for name in env}
    out, err = io.StringIO(), io.StringIO()
    try:
        for name, value in env.items():
            if value is not None:
                os.environ[name] = value
            elif name not in given:  # not given: inherited
                os.environ.pop(name, None)
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            _stdin(io.TextIOWrapper(io.BytesIO((stdin or "").encode()), encoding="utf-8")),
        ):
            code = main(list(args))
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
    return subprocess.CompletedProcess(["zgrid", *args], code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _stdin(stream: io.TextIOWrapper) -> Iterator[None]:
    saved, sys.stdin = sys.stdin, stream
    try:
        yield
    finally:
        sys.stdin = saved


class ServerProcess:
    """Subclasses say how to start the server (``argv``) and how to know it is up (``answers``)."""

    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self, log: Path) -> None:
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 20) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}: {self.log.read_text()}"
                )
            if self.answers():
                return
            time.sleep(0.05)
        self.stop()  # never leave a server running that the caller does not know it started
        raise RuntimeError(f"{self.name} did not answer within {timeout} s: {self.log.read_text()}")

    def stop(self) -> int:
        """Ask it to stop (its stop signal), kill it if it does not; return its exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
