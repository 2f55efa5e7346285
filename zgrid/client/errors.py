"""Errors of the deployer's client, each one line a person can act on.

ClientError
 ├── SpecError            the spec file is not valid (every problem with its line and column)
 ├── StoreError           the local store cannot be read, written or unlocked
 │    ├── StoreLocked     no passphrase or key file was given to open it
 │    └── WrongPassphrase the passphrase or key file does not open it
 ├── NetworkNotConfigured no network by that name (or none at all) in the store
 ├── FlistNotFound        a machine's flist is not on the hub
 ├── InvalidWorkload      a spec entry does not make a workload the node would take
 ├── PlacementError       nothing fits: why, per constraint
 ├── DeploymentNotFound   no deployment by that name on this network
 ├── DeploymentExists     deploying a name that already runs (apply changes it)
 ├── DeployFailed         a contract or workload failed; what this run made was rolled back
 ├── InvalidAnswer        the ledger (or explorer) answered what the client cannot use
 └── ExplorerUnavailable  the network's explorer cannot be reached or answers an error
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from zgrid.errors import ZgridError

__all__ = [
    "ClientError",
    "DeployFailed",
    "DeploymentExists",
    "DeploymentNotFound",
    "ExplorerUnavailable",
    "FlistNotFound",
    "InvalidAnswer",
    "InvalidWorkload",
    "NameTaken",
    "NetworkNotConfigured",
    "PlacementError",
    "SpecError",
    "SpecProblem",
    "StoreError",
    "StoreLocked",
    "WrongPassphrase",
]


class ClientError(ZgridError):
    """Root of the client's errors."""


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong in a spec file: where (1-based line and column) and what."""

    path: str  # the entry in the document, e.g. "machines[1].memory" ("" for the document)
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.line}:{self.column}: {where}{self.message}"


class SpecError(ClientError):
    """Every problem of one spec file; ``str()`` is one line, each problem after the file."""

    def __init__(self, source: str, problems: Sequence[SpecProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{source}:{problem}" for problem in self.problems))


class StoreError(ClientError):
    """The local store under $ZGRID_HOME cannot be used."""


class StoreLocked(StoreError):
    """Opening the store needs a passphrase or a key file, and none was given."""


class WrongPassphrase(StoreError):
    """The passphrase or key file given does not open the store."""


class NetworkNotConfigured(ClientError):
    """No network by that name, or no network at all, in the store."""


class FlistNotFound(ClientError):
    """A machine's flist cannot be found on the hub (or at its URL)."""


class PlacementError(ClientError):
    """No node can take a part of the spec; ``reasons`` says why, one per constraint."""

    def __init__(self, what: str, reasons: Sequence[str]) -> None:
        self.what = what
        self.reasons = tuple(reasons)
        super().__init__(f"cannot place {what}: " + "; ".join(self.reasons))


class DeploymentNotFound(ClientError):
    """No deployment by that name on this network."""


class DeploymentExists(ClientError):
    """A deployment by that name already runs on this network."""


class NameTaken(ClientError):
    """A gateway name another twin holds on the ledger."""


class DeployFailed(ClientError):
    """A deploy or apply failed; what it made was rolled back (``rolled_back`` says so)."""

    def __init__(self, message: str, *, rolled_back: bool = True) -> None:
        self.rolled_back = rolled_back
        super().__init__(message)


class InvalidAnswer(ClientError):
    """The ledger (or explorer) answered something the client cannot use: malformed, out of
    range, or more than the client reads (a bounded number of pages)."""


class ExplorerUnavailable(ClientError):
    """The explorer the planner reads nodes from cannot be reached, or answers an error;
    the message names it and says how to plan without it."""


class InvalidWorkload(ClientError):
    """A spec entry does not make a valid workload (which entry, which field, why)."""
