"""Starting, finding and stopping the detached supervisor (shim.py) of one container or VM.

Both runtimes keep one directory per container or VM, where the shim's lock, pid, status
and exits are; what differs is what the shim runs (runc, or a qemu process).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from zgrid.atomic import write_atomic
from zgrid.node.errors import RuntimeFailure
from zgrid.node.runtime.base import Exit
from zgrid.node.runtime.shim import EXITS_KEPT, PAUSED

__all__ = [
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "read_exits",
    "read_status",
    "shim_alive",
    "shim_pid",
    "start_shim",
    "stop_shim",
    "wait_first_start",
]

START_TIMEOUT = 30.0  # seconds for the shim to report its first start
STOP_TIMEOUT = 15.0  # seconds for a shim to kill what it runs and exit after SIGTERM


def shim_alive(directory: Path) -> bool:
    """True while a shim holds the dir's lock (no pid file or pid reuse involved)."""
    try:
        fd = os.open(directory / "shim.lock", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def shim_pid(directory: Path) -> int | None:
    """The live shim's pid, checked against its command line."""
    try:
        pid = int((directory / "shim.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if b"zgrid.node.runtime.shim" in cmdline and str(directory).encode() in cmdline:
        return pid
    return None


async def stop_shim(directory: Path) -> None:
    """SIGTERM the shim (it kills and deletes what it runs), SIGKILL if it hangs."""
    deadline = time.monotonic() + STOP_TIMEOUT
    killed = False
    while shim_alive(directory):
        pid = shim_pid(directory)
        if pid is not None:
            sig = signal.SIGTERM if time.monotonic() < deadline else signal.SIGKILL
            killed = killed or sig == signal.SIGKILL
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if killed and time.monotonic() > deadline + 5:
            raise RuntimeFailure(f"the supervisor of {directory.name} does not exit")
        await asyncio.sleep(0.01)


async def wait_first_start(directory: Path) -> None:
    """Wait while a live shim (started by a daemon that died) still makes its first start."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and shim_alive(directory):
        try:
            state = json.loads((directory / "status.json").read_text()).get("state")
        except (OSError, ValueError, AttributeError):
            state = "starting"  # not written yet
        if state != "starting":
            return
        await asyncio.sleep(0.01)


def read_status(directory: Path) -> dict[str, Any]:
    """What the shim last wrote of itself (state, pid, restarts, OOM kills); {} if nothing."""
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads((directory / "status.json").read_text())
        if isinstance(loaded, dict):
            return loaded
    return {}


def read_exits(directory: Path) -> tuple[Exit, ...]:
    """The exits the shim recorded, oldest first (a line cut by a crash is skipped)."""
    try:
        lines = (directory / "exits.jsonl").read_text().splitlines()[-EXITS_KEPT:]
    except OSError:
        return ()
    exits = []
    for line in lines:
        try:
            item = json.loads(line)
            exits.append(
                Exit(
                    code=int(item["code"]),
                    signal=None if item["signal"] is None else int(item["signal"]),
                    oom_killed=bool(item["oom_killed"]),
                    at=float(item["at"]),
                    output_tail=str(item["output_tail"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return tuple(exits)


async def start_shim(
    directory: Path, config: dict[str, Any], *, python: str, what: str
) -> dict[str, Any]:
    """Write the shim's config and start it; its first start's report ({"ok": ...}).

    ``what`` names the container or VM in errors. Raises RuntimeFailure when the shim
    itself fails or does not answer within START_TIMEOUT.
    """
    # not fsynced: a torn file after a power loss reads as a half-made one, made again
    write_atomic(directory / "shim.json", json.dumps(config).encode(), sync=False)
    (directory / PAUSED).unlink(missing_ok=True)
    lock = os.open(directory / "shim.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        await _flock(lock, directory)
        process = await asyncio.create_subprocess_exec(
            python,
            "-S",  # no site: the shim needs the standard library and zgrid alone
            "-m",
            "zgrid.node.runtime.shim",
            str(directory),
            "--lock-fd",
            str(lock),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            pass_fds=(lock,),
            start_new_session=True,
            env=_shim_environment(),
        )
    except OSError as exc:
        raise RuntimeFailure(f"cannot start the supervisor of {what}: {exc}") from exc
    finally:
        os.close(lock)
    try:
        out, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    except TimeoutError:
        raise RuntimeFailure(f"{what} did not start within {START_TIMEOUT:g} s") from None
    report: dict[str, Any] = {}
    with contextlib.suppress(ValueError, IndexError):
        loaded = json.loads(out.decode(errors="replace").strip().splitlines()[-1])
        report = loaded if isinstance(loaded, dict) else {}
    if report.get("ok") is True or "error" in report:
        return report
    shown = err.decode(errors="replace").strip().splitlines()[-3:]
    raise RuntimeFailure(f"the supervisor of {what} failed: {' / '.join(shown) or 'no output'}")


async def _flock(fd: int, directory: Path) -> None:
    """Take the shim lock for the shim about to start; only a reader's check (a moment)
    can hold it now, never a shim: every caller stopped the old one first."""
    for _ in range(200):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            await asyncio.sleep(0.005)
    raise RuntimeFailure(f"another supervisor still holds {directory / 'shim.lock'}")


def _shim_environment() -> dict[str, str]:
    """The daemon's environment with this zgrid first on the path (the shim runs without
    site-packages, which saves a third of its start)."""
    home = str(Path(__file__).resolve().parents[3])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": home if not path else f"{home}{os.pathsep}{path}"}
