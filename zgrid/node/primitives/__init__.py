"""One provisioner per workload type, all behind one small interface (base.py).

The dispatch table of workload type to primitive is built in :mod:`zgrid.node.dispatch`.
"""

from zgrid.node.primitives.base import (
    Observed,
    Pausable,
    Primitive,
    Provisioning,
    ResultData,
    Updatable,
    WorkloadRef,
)

__all__ = [
    "Observed",
    "Pausable",
    "Primitive",
    "Provisioning",
    "ResultData",
    "Updatable",
    "WorkloadRef",
]
