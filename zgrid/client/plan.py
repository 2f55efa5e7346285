"""A plan: what a deploy, apply or destroy would do to which contract, and what it costs.

Built by the planner, the builder and the diff (:mod:`zgrid.client.changes`) from a
spec, a snapshot of nodes and what runs now; it writes nothing. The deployer carries it
out. Every workload of the plan is known by its *key*, ``<kind>/<entry>/<replica>``
(``machine/web/0``, ``disk/data/1``, ``zdb/store/0``), which stays the same across
applies while the workload's name in a deployment may change when it is replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from zgrid.types import Deployment, decimal_text

__all__ = [
    "ContractAction",
    "ContractChange",
    "Plan",
    "WorkloadAction",
    "WorkloadChange",
    "decimal_text",
    "item_key",
    "split_key",
]

ItemKind = Literal["machine", "disk", "zdb", "network", "ip", "gateway"]
WorkloadAction = Literal["create", "update", "replace", "remove", "keep"]
ContractAction = Literal["create", "update", "cancel", "keep"]


def item_key(kind: ItemKind, entry: str, replica: int) -> str:
    return f"{kind}/{entry}/{replica}"


def split_key(key: str) -> tuple[str, str, int]:
    """``"machine/web/1"`` -> ``("machine", "web", 1)``."""
    kind, entry, replica = key.split("/")
    return kind, entry, int(replica)


@dataclass(frozen=True)
class WorkloadChange:
    """What happens to one workload: ``replace`` removes the old one (``old_name``) and
    creates the new one in the same contract update (its data cannot change in place)."""

    key: str
    name: str  # in the new deployment; for ``remove`` the name it had
    type: str  # the workload type (zmachine, zmount, zdb ...)
    action: WorkloadAction
    reason: str = ""  # why it changes, e.g. "env changed", "size 1 GiB -> 2 GiB"
    old_name: str = ""  # for ``replace``: the name it had


@dataclass(frozen=True)
class ContractChange:
    """One node contract: created, updated to a new version, cancelled, or kept as it is."""

    action: ContractAction
    node_id: int
    contract_id: int  # 0 for a contract still to create
    deployment: Deployment | None  # the version to sign (None when cancelled)
    previous: Deployment | None  # the version running now (None when created)
    workloads: tuple[WorkloadChange, ...]
    price: Fraction = Fraction(0)  # units USD per hour of ``deployment``
    public_ips: int = 0

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "node_id": self.node_id,
            "contract_id": self.contract_id,
            "version": None if self.deployment is None else self.deployment.version,
            "price_usd_per_hour": decimal_text(self.price / 10_000_000),
            "workloads": [
                {
                    "key": w.key,
                    "name": w.name,
                    "type": w.type,
                    "action": w.action,
                    "reason": w.reason,
                    **({"old_name": w.old_name} if w.old_name else {}),
                }
                for w in self.workloads
            ],
        }


@dataclass(frozen=True)
class Plan:
    """Every contract change of one deploy/apply/destroy and the price once it is done."""

    name: str
    network: str
    changes: tuple[ContractChange, ...]
    price_usd: Fraction  # units USD per hour of everything that runs afterwards
    price_tokens: Fraction  # token units per hour, at the ledger's token price
    token_price: int  # units USD per token
    nodes_from: str = ""  # where the planner read the nodes: "ledger", "explorer", ...
    nodes_url: str = ""  # and at which URL

    @property
    def nodes_text(self) -> str:
        """``"nodes from the explorer at URL"``, as the plan is shown."""
        if not self.nodes_url:
            return f"nodes from {self.nodes_from or 'the caller'}"
        return f"nodes from the {self.nodes_from} at {self.nodes_url}"

    @property
    def empty(self) -> bool:
        """Nothing to do: every contract is kept as it is."""
        return all(change.action == "keep" for change in self.changes)

    def counts(self) -> dict[str, int]:
        """How many workloads each action touches."""
        counted: dict[str, int] = {}
        for change in self.changes:
            for workload in change.workloads:
                counted[workload.action] = counted.get(workload.action, 0) + 1
        return counted

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "network": self.network,
            "contracts": [change.to_json_dict() for change in self.changes],
            "workloads": self.counts(),
            "price_usd_per_hour": decimal_text(self.price_usd / 10_000_000),
            "price_tokens_per_hour": decimal_text(self.price_tokens / 10_000_000),
            "token_price_usd": decimal_text(Fraction(self.token_price, 10_000_000)),
            "nodes_from": {"source": self.nodes_from, "url": self.nodes_url},
        }
