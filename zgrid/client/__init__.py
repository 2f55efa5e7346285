"""The deployer's client: spec files, node selection, plan/deploy/apply/destroy with live
progress and rollback, logs, and the encrypted local store. The CLI is a thin layer over it.
"""

from __future__ import annotations

from zgrid.client.errors import (
    ClientError,
    DeployFailed,
    DeploymentExists,
    DeploymentNotFound,
    FlistNotFound,
    NetworkNotConfigured,
    PlacementError,
    SpecError,
    SpecProblem,
    StoreError,
    StoreLocked,
    WrongPassphrase,
)
from zgrid.client.store import NetworkConfig, Notice, Store, Unlocker

__all__ = [
    "ClientError",
    "DeployFailed",
    "DeploymentExists",
    "DeploymentNotFound",
    "FlistNotFound",
    "NetworkConfig",
    "NetworkNotConfigured",
    "Notice",
    "PlacementError",
    "SpecError",
    "SpecProblem",
    "Store",
    "StoreError",
    "StoreLocked",
    "Unlocker",
    "WrongPassphrase",
]
