"""The node daemon: turns the ledger's contracts for this node into running workloads,
restores them after any crash, and reports what it uses and what became of them.

The face other packages use: running a node (:func:`run_node`), reading its state, and
what a deployer needs to talk to one through the ledger (sealing, results, logs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zgrid.lazy import lazy_members
from zgrid.node.errors import (
    CapacityExceeded,
    NetworkFailure,
    NodeConfigError,
    NodeError,
    ProvisionError,
    RuntimeFailure,
    SystemCommandError,
)

if TYPE_CHECKING:
    from zgrid.node.daemon import NodeConfig, run_node
    from zgrid.node.keys import load_or_create_node_identity
    from zgrid.node.logs import follow_logs
    from zgrid.node.naming import node_scope, unique_name
    from zgrid.node.net import Yggdrasil, links
    from zgrid.node.net.public import public_settings
    from zgrid.node.purge import PurgeReport, clear_under, purge_node
    from zgrid.node.sealing import (
        ResultReport,
        WorkloadReport,
        open_results,
        seal_deployment,
        seal_results,
        unseal_deployment,
    )
    from zgrid.node.status import node_status

# Loaded on first use: the node's own helper processes (the container supervisor, the
# flist mount) import modules of this package and must not pay for the whole daemon.
_LAZY = {
    "NodeConfig": "zgrid.node.daemon",
    "node_scope": "zgrid.node.naming",
    "run_node": "zgrid.node.daemon",
    "load_or_create_node_identity": "zgrid.node.keys",
    "follow_logs": "zgrid.node.logs",
    "unique_name": "zgrid.node.naming",
    "Yggdrasil": "zgrid.node.net",
    "links": "zgrid.node.net",
    "public_settings": "zgrid.node.net.public",
    "PurgeReport": "zgrid.node.purge",
    "purge_node": "zgrid.node.purge",
    "clear_under": "zgrid.node.purge",
    "ResultReport": "zgrid.node.sealing",
    "WorkloadReport": "zgrid.node.sealing",
    "open_results": "zgrid.node.sealing",
    "seal_deployment": "zgrid.node.sealing",
    "seal_results": "zgrid.node.sealing",
    "unseal_deployment": "zgrid.node.sealing",
    "node_status": "zgrid.node.status",
}


__all__ = [
    "CapacityExceeded",
    "NetworkFailure",
    "NodeConfig",
    "NodeConfigError",
    "NodeError",
    "ProvisionError",
    "PurgeReport",
    "ResultReport",
    "RuntimeFailure",
    "SystemCommandError",
    "WorkloadReport",
    "Yggdrasil",
    "clear_under",
    "follow_logs",
    "links",
    "load_or_create_node_identity",
    "node_scope",
    "node_status",
    "open_results",
    "public_settings",
    "purge_node",
    "run_node",
    "seal_deployment",
    "seal_results",
    "unique_name",
    "unseal_deployment",
]

__getattr__, __dir__ = lazy_members(__name__, _LAZY, __all__)
