"""The spec's entries spread into items: one per workload the spec asks for.

A machine with ``replicas: n`` is n items (``machine/web/0`` … ``machine/web/n-1``). A disk
mounted by a machine, a zdb that names a machine, and a machine's public IP (``ip/web/0``)
go with each replica of it (one item per replica, attached to that replica: same node,
same contract). A disk no machine
mounts, and a zdb with no machine, are one item each. The planner places items; the
builder turns them into workloads.
"""

from __future__ import annotations

from dataclasses import dataclass

from zgrid.client.plan import ItemKind, item_key
from zgrid.client.spec.model import MachineSpec, Spec
from zgrid.types import Capacity, min_root_size

__all__ = ["SpecItem", "machine_capacity", "spec_items"]


@dataclass(frozen=True)
class SpecItem:
    key: str  # "<kind>/<entry>/<replica>"
    kind: ItemKind
    entry: str  # the spec entry's name
    replica: int
    attached_to: str | None  # the key of the machine item it goes with, if any
    capacity: Capacity  # what its workload takes on a node


def machine_capacity(machine: MachineSpec) -> Capacity:
    """What a machine takes: its cores and memory, and at least the node's smallest root disk."""
    return Capacity(
        cru=machine.cpu,
        mru=machine.memory,
        sru=max(machine.disk, min_root_size(machine.cpu, machine.memory)),
    )


def spec_items(spec: Spec) -> list[SpecItem]:
    """Every item of ``spec``: machines first (in spec order), then disks, zdbs, gateways."""
    items: list[SpecItem] = []
    mounted_by: dict[str, MachineSpec] = {}
    for machine in spec.machines:
        for mount in machine.mounts:
            mounted_by[mount.disk] = machine
        for replica in range(machine.replicas):
            items.append(
                SpecItem(
                    item_key("machine", machine.name, replica),
                    "machine",
                    machine.name,
                    replica,
                    None,
                    machine_capacity(machine),
                )
            )
        if machine.public_ipv4 or machine.public_ipv6:
            ipv4 = 1 if machine.public_ipv4 else 0
            items += _with_owner("ip", machine.name, Capacity(ipv4=ipv4), machine)
    for disk in spec.disks:
        items += _with_owner("disk", disk.name, Capacity(sru=disk.size), mounted_by.get(disk.name))
    for zdb in spec.zdbs:
        owner = None if zdb.machine is None else spec.machine(zdb.machine)
        items += _with_owner("zdb", zdb.name, Capacity(hru=zdb.size), owner)
    for gateway in spec.gateways:  # on a gateway node, wherever its machine runs
        items.append(
            SpecItem(
                item_key("gateway", gateway.entry, 0), "gateway", gateway.entry, 0, None, Capacity()
            )
        )
    return items


def _with_owner(
    kind: ItemKind, entry: str, capacity: Capacity, owner: MachineSpec | None
) -> list[SpecItem]:
    """One item per replica of the machine it goes with, or one item of its own."""
    if owner is None:
        return [SpecItem(item_key(kind, entry, 0), kind, entry, 0, None, capacity)]
    return [
        SpecItem(
            item_key(kind, entry, replica),
            kind,
            entry,
            replica,
            item_key("machine", owner.name, replica),
            capacity,
        )
        for replica in range(owner.replicas)
    ]
