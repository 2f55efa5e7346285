"""What a checked spec adds up to: entries, replicas and the capacity all its items take."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from zgrid.client.items import spec_items
from zgrid.client.spec.model import Spec
from zgrid.client.spec.units import format_size

__all__ = ["SpecSummary", "spec_summary"]


@dataclass(frozen=True)
class SpecSummary:
    name: str
    machines: int
    replicas: int  # machine workloads, all replicas counted
    disks: int
    zdbs: int
    cpu: int  # cores
    memory: int  # bytes
    ssd: int  # bytes: root disks (at least the node's smallest) and disks
    hdd: int  # bytes: zdbs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.name}: {self.machines} machine(s), {self.replicas} replica(s), "
            f"{self.disks} disk(s), {self.zdbs} zdb(s); cpu {self.cpu}, "
            f"memory {format_size(self.memory)}, ssd {format_size(self.ssd)}, "
            f"hdd {format_size(self.hdd)}"
        )


def spec_summary(spec: Spec) -> SpecSummary:
    """Totals over every item the spec spreads into (a replicated machine's disks count per
    replica, as they are deployed)."""
    items = spec_items(spec)
    return SpecSummary(
        name=spec.name,
        machines=len(spec.machines),
        replicas=sum(machine.replicas for machine in spec.machines),
        disks=len(spec.disks),
        zdbs=len(spec.zdbs),
        cpu=sum(item.capacity.cru for item in items),
        memory=sum(item.capacity.mru for item in items),
        ssd=sum(item.capacity.sru for item in items),
        hdd=sum(item.capacity.hru for item in items),
    )
