"""Container and virtual machine backends behind one runtime interface.

The names load on first use: the container supervisor (``python -m
zgrid.node.runtime.shim``) imports this package on every container start, and must not
pay for asyncio and the rest of the runtime.
"""

from __future__ import annotations

from zgrid.lazy import lazy_members

TYPE_CHECKING = False  # typing itself costs the shim's start a few milliseconds
if TYPE_CHECKING:
    from zgrid.node.runtime.base import (
        BindMount,
        ContainerSpec,
        ContainerState,
        ContainerStatus,
        Exit,
        Runtime,
    )
    from zgrid.node.runtime.runc import RuncRuntime

__all__ = [
    "BindMount",
    "ContainerSpec",
    "ContainerState",
    "ContainerStatus",
    "Exit",
    "RuncRuntime",
    "Runtime",
]

_HOMES = dict.fromkeys(__all__, "zgrid.node.runtime.base")
_HOMES["RuncRuntime"] = "zgrid.node.runtime.runc"

__getattr__, __dir__ = lazy_members(__name__, _HOMES, __all__)
