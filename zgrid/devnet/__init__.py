"""devnet: a whole grid on one machine — a dev ledger, an flist hub, an explorer, base images
and nodes, each node in a network namespace of its own — started and stopped with one
command."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zgrid.devnet.errors import (
    DevnetBusy,
    DevnetError,
    DevnetNotFound,
    DevnetStartFailed,
    ImageBuildFailed,
)
from zgrid.devnet.layout import DEFAULT_DIR, default_dir
from zgrid.lazy import lazy_members

if TYPE_CHECKING:
    from zgrid.devnet.devnet import Devnet
    from zgrid.devnet.status import ComponentStatus, DevnetStatus, NodeStatus

_LAZY = {
    "Devnet": "zgrid.devnet.devnet",
    "ComponentStatus": "zgrid.devnet.status",
    "DevnetStatus": "zgrid.devnet.status",
    "NodeStatus": "zgrid.devnet.status",
}

__all__ = [
    "DEFAULT_DIR",
    "ComponentStatus",
    "Devnet",
    "DevnetBusy",
    "DevnetError",
    "DevnetNotFound",
    "DevnetStartFailed",
    "DevnetStatus",
    "ImageBuildFailed",
    "NodeStatus",
    "default_dir",
]

__getattr__, __dir__ = lazy_members(__name__, _LAZY, __all__)
