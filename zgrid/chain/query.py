"""Read-side helpers of the API: paging, node status and the node filters of the grid proxy."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from zgrid.chain.records import Node
from zgrid.chain.tables import LedgerState

__all__ = ["DOWN_AFTER", "NodeFilter", "node_json", "node_status", "page"]

DOWN_AFTER = 80 * 60  # a node that has not reported uptime for 80 minutes is down


def node_status(node: Node, now: int) -> str:
    if node.power == "standby":
        return "standby"
    if (
        node.power == "up"
        and node.last_uptime_report
        and now - node.last_uptime_report <= DOWN_AFTER
    ):
        return "up"
    return "down"


def node_json(node: Node, state: LedgerState, now: int) -> dict[str, Any]:
    document = node.model_dump()
    document["status"] = node_status(node, now)
    # Contracts reserve what they declared; what a node reports used stays within it,
    # except on contracts from before capacity was declared, which reserve nothing.
    document["free"] = {
        key: document["resources"][key] - max(document["used"][key], document["reserved"][key])
        for key in ("cru", "mru", "sru", "hru")
    }
    farm = state.farms.get(node.farm_id)
    document["free_ips"] = (
        0 if farm is None else sum(1 for ip in farm.public_ips if not ip.contract_id)
    )
    return document


@dataclass(frozen=True)
class NodeFilter:
    farm_id: int | None = None
    twin_id: int | None = None
    status: str | None = None
    free_mru: int | None = None
    free_sru: int | None = None
    free_hru: int | None = None
    free_ips: int | None = None
    rented: bool | None = None

    def matches(self, document: dict[str, Any]) -> bool:
        free = document["free"]
        checks: list[tuple[Any, Callable[[Any], bool]]] = [
            (self.farm_id, lambda v: document["farm_id"] == v),
            (self.twin_id, lambda v: document["twin_id"] == v),
            (self.status, lambda v: document["status"] == v),
            (self.free_mru, lambda v: free["mru"] >= v),
            (self.free_sru, lambda v: free["sru"] >= v),
            (self.free_hru, lambda v: free["hru"] >= v),
            (self.free_ips, lambda v: document["free_ips"] >= v),
            (self.rented, lambda v: bool(document["rented_by"]) == v),
        ]
        return all(value is None or test(value) for value, test in checks)


def page(items: Iterable[dict[str, Any]], number: int, size: int) -> dict[str, Any]:
    everything = list(items)
    start = (number - 1) * size
    return {
        "items": everything[start : start + size],
        "total": len(everything),
        "page": number,
        "size": size,
    }
