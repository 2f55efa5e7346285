"""What the client remembers of each deployment it made, kept encrypted in the local store.

A record is written *before* anything is sent to the ledger: the deployment hash of every
contract it is about to create or update goes in first, so a deploy killed at any point
leaves enough behind for ``zgrid ls`` to show it and ``zgrid destroy`` to find every
contract it made (the ledger shows each contract's deployment hash in clear).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zgrid.types import Deployment, parse_deployment

__all__ = ["ContractEntry", "DeploymentRecord", "RecordStatus"]

RecordStatus = Literal["deploying", "applying", "deployed", "destroying"]
_BUSY = ("deploying", "applying", "destroying")


class ContractEntry(BaseModel):
    """One node contract of a deployment: what runs, and what is being sent to replace it."""

    model_config = ConfigDict(extra="ignore")

    node_id: int
    contract_id: int = 0  # 0 until the ledger included the creation
    deployment: dict[str, Any] | None = None  # the signed version that runs (JSON form)
    pending: dict[str, Any] | None = None  # the signed version submitted but not settled
    pending_hash: str = ""

    def running(self) -> Deployment | None:
        return None if self.deployment is None else parse_deployment(self.deployment)


class DeploymentRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: int = 1
    name: str
    network: str
    twin_id: int
    status: RecordStatus
    contracts: list[ContractEntry] = Field(default_factory=list)
    hashes: list[str] = Field(
        default_factory=list,
        description="every deployment hash ever submitted under this name: finds orphans",
    )
    created: int = Field(default_factory=lambda: int(time.time()))
    updated: int = Field(default_factory=lambda: int(time.time()))
    pid: int = Field(default_factory=os.getpid)  # the process working on it
    pid_started: int = Field(default_factory=lambda: _started(os.getpid()))  # not a reused pid
    host: str = Field(default_factory=socket.gethostname)
    access_key: str = Field(
        default="", description="the WireGuard key of the deployer's own peer on its network"
    )

    def entry(self, node_id: int) -> ContractEntry | None:
        return next((c for c in self.contracts if c.node_id == node_id), None)

    def contract_ids(self) -> list[int]:
        return [c.contract_id for c in self.contracts if c.contract_id]

    @property
    def interrupted(self) -> bool:
        """Left mid-way by a process that is gone (killed, or its machine rebooted)."""
        if self.status not in _BUSY:
            return False
        if self.host != socket.gethostname():
            return False  # another machine's process: it may still be at work
        return not _alive(self.pid, self.pid_started)

    @property
    def busy(self) -> bool:
        """Another live process is deploying, applying or destroying it right now."""
        return self.status in _BUSY and not self.interrupted and not self._ours

    @property
    def _ours(self) -> bool:
        return self.host == socket.gethostname() and self.pid == os.getpid()

    def shown_status(self) -> str:
        return "interrupted" if self.interrupted else self.status

    def claim(self, status: RecordStatus) -> None:
        """This process works on the record now."""
        self.status = status
        self.pid = os.getpid()
        self.pid_started = _started(self.pid)
        self.host = socket.gethostname()
        self.updated = int(time.time())


def _started(pid: int) -> int:
    """When ``pid`` started (clock ticks since boot), 0 where /proc cannot tell."""
    try:
        stat = open(f"/proc/{pid}/stat", "rb").read()  # noqa: SIM115  # one short read
    except OSError:
        return 0
    # The command name (field 2) may hold spaces and parentheses: count from its end.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[19])


def _alive(pid: int, started: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not started or _started(pid) in (0, started)
