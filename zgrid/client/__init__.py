"""The deployer's client: spec files, node selection, plan/deploy/apply/destroy with live
progress and rollback, logs, a Python SDK (:class:`Grid`, :class:`SyncGrid`) and the
encrypted local store. The CLI is a thin layer over it.

The errors load at once; everything else on first use, so a command that only needs a
spec check or a network list does not pay for the ledger client and the node's models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zgrid.client.errors import (
    ClientError,
    DeployFailed,
    DeploymentExists,
    DeploymentNotFound,
    ExplorerUnavailable,
    FlistNotFound,
    InvalidAnswer,
    InvalidWorkload,
    NetworkNotConfigured,
    PlacementError,
    SpecError,
    SpecProblem,
    StoreError,
    StoreLocked,
    WrongPassphrase,
)
from zgrid.lazy import lazy_members

if TYPE_CHECKING:
    from zgrid.client.changes import CurrentContract, plan_changes
    from zgrid.client.explorer_source import ExplorerNodeSource
    from zgrid.client.flists import resolve_flists
    from zgrid.client.grid import DEFAULT_TIMEOUT, Grid
    from zgrid.client.offers import NodeOffer, NodeSource
    from zgrid.client.plan import ContractChange, Plan, WorkloadChange, decimal_text
    from zgrid.client.planner import place
    from zgrid.client.pricing import (
        PolicyPrices,
        PriceTerms,
        contract_price,
        price_terms,
        to_tokens,
    )
    from zgrid.client.sources import LedgerNodeSource
    from zgrid.client.spec.loader import load_spec, parse_spec
    from zgrid.client.spec.model import (
        DiskSpec,
        MachineSpec,
        MountSpec,
        NetworkSpec,
        PlacementRules,
        Spec,
        ZdbSpec,
    )
    from zgrid.client.spec.schema import spec_schema, spec_schema_text
    from zgrid.client.spec.summary import SpecSummary, spec_summary
    from zgrid.client.spec.units import format_size, parse_size
    from zgrid.client.store import NetworkConfig, Notice, Store, Unlocker
    from zgrid.client.sync import SyncGrid
    from zgrid.client.views import DeploymentSummary, DeploymentView, WorkloadView
    from zgrid.client.watch import WorkloadProgress

_LAZY = {
    "ContractChange": "zgrid.client.plan",
    "CurrentContract": "zgrid.client.changes",
    "DEFAULT_TIMEOUT": "zgrid.client.grid",
    "DeploymentSummary": "zgrid.client.views",
    "DeploymentView": "zgrid.client.views",
    "DiskSpec": "zgrid.client.spec.model",
    "ExplorerNodeSource": "zgrid.client.explorer_source",
    "Grid": "zgrid.client.grid",
    "LedgerNodeSource": "zgrid.client.sources",
    "MachineSpec": "zgrid.client.spec.model",
    "MountSpec": "zgrid.client.spec.model",
    "NetworkSpec": "zgrid.client.spec.model",
    "NetworkConfig": "zgrid.client.store",
    "NodeOffer": "zgrid.client.offers",
    "NodeSource": "zgrid.client.offers",
    "Notice": "zgrid.client.store",
    "PlacementRules": "zgrid.client.spec.model",
    "Plan": "zgrid.client.plan",
    "PolicyPrices": "zgrid.client.pricing",
    "PriceTerms": "zgrid.client.pricing",
    "Spec": "zgrid.client.spec.model",
    "SpecSummary": "zgrid.client.spec.summary",
    "Store": "zgrid.client.store",
    "SyncGrid": "zgrid.client.sync",
    "Unlocker": "zgrid.client.store",
    "WorkloadChange": "zgrid.client.plan",
    "WorkloadProgress": "zgrid.client.watch",
    "WorkloadView": "zgrid.client.views",
    "ZdbSpec": "zgrid.client.spec.model",
    "contract_price": "zgrid.client.pricing",
    "decimal_text": "zgrid.client.plan",
    "format_size": "zgrid.client.spec.units",
    "load_spec": "zgrid.client.spec.loader",
    "parse_size": "zgrid.client.spec.units",
    "parse_spec": "zgrid.client.spec.loader",
    "place": "zgrid.client.planner",
    "plan_changes": "zgrid.client.changes",
    "price_terms": "zgrid.client.pricing",
    "resolve_flists": "zgrid.client.flists",
    "spec_schema": "zgrid.client.spec.schema",
    "spec_schema_text": "zgrid.client.spec.schema",
    "spec_summary": "zgrid.client.spec.summary",
    "to_tokens": "zgrid.client.pricing",
}

__all__ = [
    "DEFAULT_TIMEOUT",
    "ClientError",
    "ContractChange",
    "CurrentContract",
    "DeployFailed",
    "DeploymentExists",
    "DeploymentNotFound",
    "DeploymentSummary",
    "DeploymentView",
    "DiskSpec",
    "ExplorerNodeSource",
    "ExplorerUnavailable",
    "FlistNotFound",
    "Grid",
    "InvalidAnswer",
    "InvalidWorkload",
    "LedgerNodeSource",
    "MachineSpec",
    "MountSpec",
    "NetworkConfig",
    "NetworkNotConfigured",
    "NetworkSpec",
    "NodeOffer",
    "NodeSource",
    "Notice",
    "PlacementError",
    "PlacementRules",
    "Plan",
    "PolicyPrices",
    "PriceTerms",
    "Spec",
    "SpecError",
    "SpecProblem",
    "SpecSummary",
    "Store",
    "StoreError",
    "StoreLocked",
    "SyncGrid",
    "Unlocker",
    "WorkloadChange",
    "WorkloadProgress",
    "WorkloadView",
    "WrongPassphrase",
    "ZdbSpec",
    "contract_price",
    "decimal_text",
    "format_size",
    "load_spec",
    "parse_size",
    "parse_spec",
    "place",
    "plan_changes",
    "price_terms",
    "resolve_flists",
    "spec_schema",
    "spec_schema_text",
    "spec_summary",
    "to_tokens",
]

__getattr__, __dir__ = lazy_members(__name__, _LAZY, __all__)
