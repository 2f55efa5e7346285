"""What the planner knows of the grid: one offer per node, from a source behind one interface.

Two sources: the ledger's API (:class:`zgrid.client.sources.LedgerNodeSource`) and an
explorer's grid-proxy API (:class:`zgrid.client.explorer_source.ExplorerNodeSource`),
used when the network configures one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from zgrid.types import Capacity

__all__ = ["NodeOffer", "NodeSource", "source_of"]


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
    domain: str = ""  # a gateway node's domain (its farmer gave it a public IP and a domain)


class NodeSource(Protocol):
    """Where node offers come from: the ledger's API, or an explorer."""

    async def offers(self) -> list[NodeOffer]:
        """A snapshot of every node of the grid."""
        ...


def source_of(source: NodeSource) -> tuple[str, str]:
    """What a plan says its nodes came from: ``("ledger" | "explorer", url)``, or
    ``(the class's name, "")`` for a source of the caller's own."""
    kind, url = getattr(source, "kind", None), getattr(source, "url", None)
    if isinstance(kind, str) and isinstance(url, str):
        return kind, url
    return type(source).__name__, ""
