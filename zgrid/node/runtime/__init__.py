"""Container and virtual machine backends behind one runtime interface.

The names load on first use: the container supervisor (``python -m
zgrid.node.runtime.shim``) imports this package on every container start, and must not
pay for asyncio and the rest of the runtime.
"""

from __future__ import annotations

import importlib

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


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
