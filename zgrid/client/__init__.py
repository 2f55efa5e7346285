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
from zgrid.client.spec.loader import load_spec, parse_spec
from zgrid.client.spec.model import (
    DiskSpec,
    MachineSpec,
    MountSpec,
    PlacementRules,
    Spec,
    ZdbSpec,
)
from zgrid.client.spec.schema import spec_schema, spec_schema_text
from zgrid.client.spec.summary import SpecSummary, spec_summary
from zgrid.client.spec.units import format_size, parse_size

__all__ = [
    "ClientError",
    "DeployFailed",
    "DeploymentExists",
    "DeploymentNotFound",
    "DiskSpec",
    "FlistNotFound",
    "MachineSpec",
    "MountSpec",
    "NetworkNotConfigured",
    "PlacementError",
    "PlacementRules",
    "Spec",
    "SpecError",
    "SpecProblem",
    "SpecSummary",
    "StoreError",
    "StoreLocked",
    "WrongPassphrase",
    "ZdbSpec",
    "format_size",
    "load_spec",
    "parse_size",
    "parse_spec",
    "spec_schema",
    "spec_schema_text",
    "spec_summary",
]
