"""The runtime interface: what the node asks of a container backend (qemu.py keeps the same
shape for VMs).

A runtime starts what it is given, supervises it outside the node daemon's process (a
container keeps running while the daemon is killed and restarted), restarts it when it
exits, records every exit, and finds its containers again after a daemon crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

__all__ = ["BindMount", "ContainerSpec", "ContainerState", "ContainerStatus", "Exit", "Runtime"]

ContainerState = Literal["running", "paused", "restarting", "stopped", "absent"]


@dataclass(frozen=True, slots=True)
class BindMount:
    source: Path
    target: str
    readonly: bool = False


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """Everything needed to run one container; equal specs mean the same container."""

    id: str  # unique in the runtime; [A-Za-z0-9_.-], at most 64 characters
    rootfs: Path  # the mounted root (the node's overlay of the flist), writable
    args: tuple[str, ...]  # argv of the init process, never empty
    env: tuple[tuple[str, str], ...] = ()
    cwd: str = "/"
    hostname: str = "zmachine"
    cpu: int = 1  # cores: the cgroup CPU quota is cpu × the period
    memory: int = 256 * 1024 * 1024  # bytes: the cgroup memory limit (no swap on top)
    mounts: tuple[BindMount, ...] = ()
    netns: Path | None = (
        None  # a network namespace to join (/var/run/netns/<name>); None: a new one with lo only
    )
    log_path: Path | None = (
        None  # stdout and stderr appended here (bounded); None: <state>/<id>/output.log
    )
    restart: bool = True  # start it again when it exits (with backoff)


@dataclass(frozen=True, slots=True)
class Exit:
    """One end of the container's init process."""

    code: int  # exit status, or 128 + signal when killed by a signal
    signal: int | None  # the signal that killed it, if any
    oom_killed: bool  # the kernel's OOM killer killed a process of the container
    at: float  # unix time
    output_tail: str  # the last 2 KiB of the container's output at that moment


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    id: str
    state: ContainerState
    pid: int | None = None
    exits: tuple[Exit, ...] = ()  # every exit so far, oldest first (bounded to the last 100)
    oom_kills: int = 0  # processes of the container the OOM killer killed, init or not
    restarts: int = 0
    spec: ContainerSpec | None = field(default=None, compare=False)


class Runtime(Protocol):
    """A container backend (runc). Every method is idempotent."""

    async def start(self, spec: ContainerSpec) -> ContainerStatus:
        """Run ``spec`` (already running with this spec: nothing to do); return once started."""
        ...

    async def stop(self, container_id: str) -> None:
        """Stop the container and its supervisor and delete it; absent is fine."""
        ...

    async def pause(self, container_id: str) -> None: ...

    async def resume(self, container_id: str) -> None: ...

    async def status(self, container_id: str) -> ContainerStatus: ...

    async def containers(self) -> list[str]:
        """Ids of every container this runtime holds (running, paused or stopped)."""
        ...

    async def recover(self) -> list[str]:
        """After the node daemon restarted: find the containers (and supervisors) it started
        before, clean up half-made ones, and return the ids still there."""
        ...
