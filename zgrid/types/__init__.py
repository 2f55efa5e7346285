"""The shared vocabulary: deployments, workloads and their data, capacity, hashing, update rules.

Pure data and rules, no I/O; imports nothing of zgrid but the root ``errors``
and ``canonical`` modules.
"""

from zgrid.types.capacity import (
    Capacity,
    compute_units,
    decimal_text,
    farming_units,
    storage_units,
)
from zgrid.types.deployment import (
    Deployment,
    Signature,
    SignatureRequest,
    SignatureRequirement,
    parse_deployment,
)
from zgrid.types.disks import Volume, ZMount
from zgrid.types.enums import INSTALL_ORDER, RESERVED_NETWORK_NAMES, ResultState, WorkloadType
from zgrid.types.errors import InvalidDeployment, SignaturesInsufficient, TypesError, UpdateRefused
from zgrid.types.fields import GIB, MIB
from zgrid.types.gateway import GatewayFQDNProxy, GatewayNameProxy
from zgrid.types.network import NODE_INTERFACE, Network, Peer
from zgrid.types.publicip import PublicIP
from zgrid.types.signing import Signer, sign_deployment, verify_signatures
from zgrid.types.update import UpdatePlan, same_workload, validate_update
from zgrid.types.workload import (
    GatewayFQDNProxyWorkload,
    GatewayNameProxyWorkload,
    IPWorkload,
    NetworkWorkload,
    VolumeWorkload,
    Workload,
    WorkloadData,
    WorkloadResult,
    ZDBWorkload,
    ZMachineWorkload,
    ZMountWorkload,
    make_workload,
    workload_id,
)
from zgrid.types.zdb import ZDB
from zgrid.types.zmachine import (
    MIN_MEMORY,
    ComputeCapacity,
    MachineInterface,
    MachineNetwork,
    Mount,
    ZMachine,
    min_root_size,
)

__all__ = [
    "GIB",
    "INSTALL_ORDER",
    "MIB",
    "MIN_MEMORY",
    "NODE_INTERFACE",
    "RESERVED_NETWORK_NAMES",
    "ZDB",
    "Capacity",
    "ComputeCapacity",
    "Deployment",
    "GatewayFQDNProxy",
    "GatewayFQDNProxyWorkload",
    "GatewayNameProxy",
    "GatewayNameProxyWorkload",
    "IPWorkload",
    "InvalidDeployment",
    "MachineInterface",
    "MachineNetwork",
    "Mount",
    "Network",
    "NetworkWorkload",
    "Peer",
    "PublicIP",
    "ResultState",
    "Signature",
    "SignatureRequest",
    "SignatureRequirement",
    "SignaturesInsufficient",
    "Signer",
    "TypesError",
    "UpdatePlan",
    "UpdateRefused",
    "Volume",
    "VolumeWorkload",
    "Workload",
    "WorkloadData",
    "WorkloadResult",
    "WorkloadType",
    "ZDBWorkload",
    "ZMachine",
    "ZMachineWorkload",
    "ZMount",
    "ZMountWorkload",
    "compute_units",
    "decimal_text",
    "farming_units",
    "make_workload",
    "min_root_size",
    "parse_deployment",
    "same_workload",
    "sign_deployment",
    "storage_units",
    "validate_update",
    "verify_signatures",
    "workload_id",
]
