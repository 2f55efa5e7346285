"""The volume primitive: a sized ext4 disk like a zmount, kept apart from zmounts by kind."""

from __future__ import annotations

from zgrid.node.primitives.zmount import DiskPrimitive

__all__ = ["VolumePrimitive"]


class VolumePrimitive(DiskPrimitive):
    KIND = "volume"
