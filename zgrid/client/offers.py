"""What the planner knows of the grid: one offer per node, from a source behind one interface.

The ledger's API is the source today (:class:`zgrid.client.sources.LedgerNodeSource`);
the explorer becomes another source with the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from zgrid.types import Capacity

__all__ = ["NodeOffer", "NodeSource"]


@dataclass(frozen=True)
class NodeOffer:
    """A node as the planner sees it. ``free.ipv4`` is its farm's free public IPv4s."""

    node_id: int
    twin_id: int
    farm_id: int
    farm_name: str
    status: str  # up | down | standby
    total: Capacity
    free: Capacity
    country: str = ""
    city: str = ""
    certified: bool = False  # its farm is certified (its capacity costs 25% more)
    pricing_policy_id: int = 1
    rented_by: int = 0  # a twin renting the whole node; 0 when nobody does


class NodeSource(Protocol):
    """Where node offers come from: the ledger's API, or an explorer."""

    async def offers(self) -> list[NodeOffer]:
        """A snapshot of every node of the grid."""
        ...
