"""The diff: what each node's contract must become for what runs to match the spec.

:func:`plan_changes` takes the spec, the node each item goes to (the planner's answer)
and the deployment each node runs now, and returns one :class:`ContractChange` per node
that has items now or had a contract before. Workloads are matched to items by the key
in their metadata, never by name, so an apply touches only what changed:

- equal data and metadata: ``keep`` (the running workload as it is, its version too);
- changed data a workload may take in place (zmount, zdb): ``update``, same name;
- changed data it may not (zmachine): ``replace``, the old one removed and a new one
  created under a fresh name in the same contract update;
- a key new to the node: ``create``; a key gone from it: ``remove``.

A workload is named after its entry (``web``), or ``<entry>_<replica>`` when the entry
has several items. When that name is taken on the node by another key, or the workload
is replaced, it gets the first free of ``<name>_g1``, ``<name>_g2`` … among the names of
the node's current and new deployment (a name never changes meaning within one update).

Workloads are in install order (zmounts, zdbs, zmachines), each type in the order of the
spec's items (:func:`zgrid.client.items.spec_items`); contracts by node id. The same
inputs give the same changes, except the password made for a new zdb the spec gives none:
one a zdb already has is kept, so an apply does not change it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from zgrid.client.builder import (
    base_name,
    deployment_metadata,
    disk_data,
    gateway_data,
    ip_data,
    item_of,
    machine_data,
    name_with_suffix,
    new_deployment,
    new_workload,
    zdb_data,
)
from zgrid.client.errors import FlistNotFound, InvalidWorkload, PlacementError
from zgrid.client.items import SpecItem, spec_items
from zgrid.client.mesh import NodeMesh, network_key, plan_mesh
from zgrid.client.plan import ContractChange, WorkloadChange, item_key
from zgrid.client.spec.model import GatewaySpec, NetworkSpec, Spec
from zgrid.types import (
    GIB,
    MIB,
    ZDB,
    Capacity,
    Deployment,
    PublicIP,
    Workload,
    WorkloadData,
    ZMachine,
    ZMount,
    same_workload,
)

__all__ = ["CurrentContract", "plan_changes"]

# install order: zmount, network, ip, zdb, zmachine, gateway
_KIND_ORDER = ("disk", "network", "ip", "zdb", "machine", "gateway")


@dataclass(frozen=True)
class CurrentContract:
    """The contract a node runs for this spec now, and its deployment's current version."""

    contract_id: int
    deployment: Deployment


def plan_changes(
    spec: Spec,
    assignment: Mapping[str, int],
    *,
    twin_id: int,
    flists: Mapping[str, str],
    current: Mapping[int, CurrentContract],
    endpoints: Mapping[int, str] | None = None,
    access: str | None = None,
) -> tuple[ContractChange, ...]:
    """One change per node with items in ``assignment`` or a contract in ``current``.

    With a spec network, each node with machines also gets its part of it
    (:func:`zgrid.client.mesh.plan_mesh`), peered at the addresses in ``endpoints`` and,
    given ``access`` (a public key), with the deployer's own machine.

    ``assignment`` maps every item key of ``spec_items(spec)`` to a node id, ``flists``
    every machine's flist reference to its URL (:func:`zgrid.client.flists.resolve_flists`).
    Prices are left at 0. Raises PlacementError for an assignment that misses an item or
    splits an item from the machine it goes with, FlistNotFound for an unresolved flist,
    InvalidWorkload for an entry the node would refuse.
    """
    items = spec_items(spec)
    _check_assignment(items, assignment)
    for machine in spec.machines:
        if machine.flist not in flists:
            raise FlistNotFound(
                f"flist {machine.flist!r} of machine {machine.name!r} is unresolved"
            )
    meshes: dict[int, NodeMesh] = {}
    if spec.network is not None and spec.machines:
        machines_on: dict[int, list[str]] = {}
        for item in items:
            if item.kind == "machine":
                machines_on.setdefault(assignment[item.key], []).append(item.key)
            elif item.kind == "gateway":  # it reaches its machines over the network
                machines_on.setdefault(assignment[item.key], [])
        meshes = plan_mesh(
            spec,
            machines_on,
            current={node: contract.deployment for node, contract in current.items()},
            endpoints=endpoints or {},
            access=access,
        )
    builder = _NodeBuilder(
        spec, items, twin_id, flists, _passwords(current.values()), meshes=meshes
    )
    changes: list[ContractChange] = []
    for node_id in sorted(set(assignment.values()) | set(current)):
        on_node = [item for item in items if assignment[item.key] == node_id]
        if node_id in meshes and spec.network is not None:
            on_node.append(_network_item(spec.network))
        change = builder.change(node_id, on_node, current.get(node_id))
        if change is not None:
            changes.append(change)
    return tuple(changes)


def _check_assignment(items: Sequence[SpecItem], assignment: Mapping[str, int]) -> None:
    keys = {item.key for item in items}
    for key, node_id in assignment.items():
        if key not in keys:
            raise PlacementError(key, ["it is not an item of the spec"])
        if not isinstance(node_id, int) or isinstance(node_id, bool) or node_id <= 0:
            raise PlacementError(key, [f"node id {node_id!r} is not a positive integer"])
    for item in items:
        if item.key not in assignment:
            raise PlacementError(item.key, ["no node was chosen for it"])
        owner = item.attached_to
        if owner is not None and assignment[owner] != assignment[item.key]:
            raise PlacementError(
                item.key,
                [
                    f"it goes with {owner} on node {assignment[owner]}, "
                    f"not on node {assignment[item.key]}"
                ],
            )


def _passwords(contracts: Iterable[CurrentContract]) -> dict[str, str]:
    """The password each zdb key has now, wherever it runs."""
    found: dict[str, str] = {}
    for contract in contracts:
        for workload in contract.deployment.workloads:
            key = item_of(workload)
            if key is not None and isinstance(workload.data, ZDB):
                found.setdefault(key, workload.data.password)
    return found


def _network_item(network: NetworkSpec) -> SpecItem:
    """A node's part of the spec's network, as an item of that node."""
    return SpecItem(network_key(network), "network", network.name, 0, None, Capacity())


class _NodeBuilder:
    def __init__(
        self,
        spec: Spec,
        items: Sequence[SpecItem],
        twin_id: int,
        flists: Mapping[str, str],
        passwords: dict[str, str],
        *,
        meshes: Mapping[int, NodeMesh],
    ) -> None:
        self._spec = spec
        self._twin_id = twin_id
        self._flists = flists
        self._passwords = passwords
        self._meshes = meshes
        self._node = 0  # the node whose change is being built
        counts: dict[tuple[str, str], int] = {}
        for item in items:
            counts[item.kind, item.entry] = counts.get((item.kind, item.entry), 0) + 1
        self._single = {pair for pair, count in counts.items() if count == 1}
        if spec.network is not None:
            self._single.add(("network", spec.network.name))  # one per node: never suffixed

    def change(
        self, node_id: int, items: Sequence[SpecItem], now: CurrentContract | None
    ) -> ContractChange | None:
        self._node = node_id
        previous = now.deployment if now is not None else None
        old_workloads = previous.workloads if previous is not None else []
        if not items:
            if now is None:
                return None
            removes = tuple(_removal(workload) for workload in old_workloads)
            return ContractChange("cancel", node_id, now.contract_id, None, previous, removes)

        version = previous.version + 1 if previous is not None else 0
        old_by_key = _by_key(old_workloads)
        matched: set[int] = set()
        used = {workload.name for workload in old_workloads}
        names: dict[str, str] = {}
        workloads: list[Workload] = []
        moves: list[WorkloadChange] = []
        ordered = sorted(items, key=lambda item: _KIND_ORDER.index(item.kind))
        for item in ordered:
            data = self._data(item, items, names)
            old = old_by_key.get(item.key)
            base = base_name(
                # a machine's ip workload is named after it: "web_ip", "web_ip_1" …
                f"{item.entry}_ip" if item.kind == "ip" else item.entry,
                item.replica,
                single=(item.kind, item.entry) in self._single,
            )
            if old is not None and old.type == data.TYPE:
                matched.add(id(old))
                kept = new_workload(old.name, data, key=item.key, version=old.version)
                if same_workload(kept, old):
                    workload, move = old, WorkloadChange(item.key, old.name, old.type, "keep")
                elif old.data == data or type(data).DATA_UPDATABLE:
                    workload = new_workload(old.name, data, key=item.key, version=version)
                    reason = _reason(old, workload)
                    move = WorkloadChange(item.key, old.name, old.type, "update", reason)
                else:
                    name = _free(base, used)
                    workload = new_workload(name, data, key=item.key, version=version)
                    reason = _reason(old, workload)
                    move = WorkloadChange(
                        item.key, name, old.type, "replace", reason, old_name=old.name
                    )
            else:
                name = base if base not in used else _free(base, used)
                workload = new_workload(name, data, key=item.key, version=version)
                move = WorkloadChange(item.key, name, workload.type, "create")
            used.add(workload.name)
            names[item.key] = workload.name
            workloads.append(workload)
            moves.append(move)
        moves += [_removal(w) for w in old_workloads if id(w) not in matched]

        name = self._spec.name
        public_ips = _public_ipv4s(workloads)
        if now is None:
            deployment = new_deployment(
                name=name, twin_id=self._twin_id, contract_id=0, version=0, workloads=workloads
            )
            return ContractChange(
                "create", node_id, 0, deployment, None, tuple(moves), public_ips=public_ips
            )
        assert previous is not None
        _check_public_ips(node_id, now.contract_id, previous, public_ips)
        unchanged = all(move.action == "keep" for move in moves)
        if unchanged and previous.metadata == deployment_metadata(name):
            return ContractChange(
                "keep", node_id, now.contract_id, previous, previous, tuple(moves)
            )
        deployment = new_deployment(
            name=name,
            twin_id=self._twin_id,
            contract_id=now.contract_id,
            version=version,
            workloads=workloads,
        )
        return ContractChange(
            "update", node_id, now.contract_id, deployment, previous, tuple(moves)
        )

    def _gateway(self, gateway: GatewaySpec, names: Mapping[str, str]) -> WorkloadData:
        spec = self._spec
        assert spec.network is not None  # a spec with gateways has one (spec.build)
        machine = spec.machine(gateway.machine)
        ips = _machine_addresses(self._meshes, machine.name, machine.replicas)
        if not ips:
            raise InvalidWorkload(
                f"gateway {gateway.entry!r}: machine {machine.name!r} has no private address"
            )
        network = names.get(network_key(spec.network), spec.network.name)
        return gateway_data(gateway, ips, network)

    def _data(
        self, item: SpecItem, on_node: Sequence[SpecItem], names: Mapping[str, str]
    ) -> WorkloadData:
        spec = self._spec
        if item.kind == "disk":
            return disk_data(spec.disk(item.entry))
        if item.kind == "network":
            return self._meshes[self._node].network
        if item.kind == "ip":
            return ip_data(spec.machine(item.entry))
        if item.kind == "gateway":
            return self._gateway(spec.gateway(item.entry), names)
        if item.kind == "zdb":
            zdb = next(z for z in spec.zdbs if z.name == item.entry)
            password = zdb.password
            if password is None:
                password = self._passwords.get(item.key)
                if password is None:
                    password = secrets.token_hex(16)
                    self._passwords[item.key] = password
            return zdb_data(zdb, password)
        machine = spec.machine(item.entry)
        disks = {
            other.entry: names[other.key]
            for other in on_node
            if other.kind == "disk" and other.attached_to == item.key
        }
        missing = [mount.disk for mount in machine.mounts if mount.disk not in disks]
        if missing:
            raise InvalidWorkload(
                f"machine {machine.name!r} mounts disk {missing[0]!r}, which another machine "
                "mounts too (a disk goes with one machine)"
            )
        mounts = [(disks[mount.disk], mount.mountpoint) for mount in machine.mounts]
        public_ip = next(
            (
                names[other.key]
                for other in on_node
                if other.kind == "ip" and other.attached_to == item.key
            ),
            "",
        )
        mesh = self._meshes.get(self._node)
        private = None
        if mesh is not None and spec.network is not None:
            network = names.get(network_key(spec.network), spec.network.name)
            private = (network, mesh.addresses[item.key])
        return machine_data(
            machine, self._flists[machine.flist], mounts, private, public_ip=public_ip
        )


def _by_key(workloads: Iterable[Workload]) -> dict[str, Workload]:
    """The workloads of a running version by the item each was made for."""
    found: dict[str, Workload] = {}
    for workload in workloads:
        key = item_of(workload)
        if key is not None:
            found.setdefault(key, workload)
    return found


def _check_public_ips(node_id: int, contract_id: int, previous: Deployment, asked: int) -> None:
    held = _public_ipv4s(previous.workloads)
    if asked != held:
        # The ledger reserves a contract's IPs when it is created, never later.
        raise InvalidWorkload(
            f"node {node_id}'s contract {contract_id} holds {held} public IPv4, the spec now"
            f" asks for {asked} there: a contract's public IPs are fixed when it is created;"
            " destroy the deployment and deploy it again"
        )


def _public_ipv4s(workloads: Iterable[Workload]) -> int:
    """How many public IPv4 the ip workloads ask for: what the contract reserves."""
    return sum(1 for w in workloads if isinstance(w.data, PublicIP) and w.data.v4)


def _machine_addresses(meshes: Mapping[int, NodeMesh], machine: str, replicas: int) -> list[str]:
    """The private addresses of ``machine``'s replicas, wherever each runs."""
    found = {key: ip for mesh in meshes.values() for key, ip in mesh.addresses.items()}
    keys = [item_key("machine", machine, replica) for replica in range(replicas)]
    return [found[key] for key in keys if key in found]


def _removal(workload: Workload) -> WorkloadChange:
    return WorkloadChange(item_of(workload) or "", workload.name, workload.type, "remove")


def _free(base: str, used: set[str]) -> str:
    """The first of ``<base>_g1``, ``<base>_g2`` … not in ``used``."""
    number = 1
    while (name := name_with_suffix(base, f"_g{number}")) in used:
        number += 1
    return name


def _size(value: int) -> str:
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} bytes"


def _root(value: int) -> str:
    return _size(value) if value else "the smallest"


def _reason(old: Workload, new: Workload) -> str:
    """What changed from ``old`` to ``new``, in words: ``"env changed, memory 1 GiB -> 2 GiB"``."""
    before, after = old.data, new.data
    said: list[str] = []
    if isinstance(before, ZMachine) and isinstance(after, ZMachine):
        said += _machine_reasons(before, after)
    elif isinstance(before, ZMount) and isinstance(after, ZMount):
        if before.size != after.size:
            said.append(f"size {_size(before.size)} -> {_size(after.size)}")
    elif isinstance(before, ZDB) and isinstance(after, ZDB):
        if before.size != after.size:
            said.append(f"size {_size(before.size)} -> {_size(after.size)}")
        if before.mode != after.mode:
            said.append(f"mode {before.mode} -> {after.mode}")
        if before.public != after.public:
            said.append(f"public {str(before.public).lower()} -> {str(after.public).lower()}")
        if before.password != after.password:
            said.append("password changed")
    elif before != after:
        said.append("data changed")
    if old.metadata != new.metadata or old.description != new.description:
        said.append("metadata changed")
    return ", ".join(said)


def _machine_reasons(before: ZMachine, after: ZMachine) -> list[str]:
    said: list[str] = []
    if before.flist != after.flist:
        said.append("flist changed")
    old_cpu, new_cpu = before.compute_capacity.cpu, after.compute_capacity.cpu
    if old_cpu != new_cpu:
        said.append(f"cpu {old_cpu} -> {new_cpu}")
    old_memory, new_memory = before.compute_capacity.memory, after.compute_capacity.memory
    if old_memory != new_memory:
        said.append(f"memory {_size(old_memory)} -> {_size(new_memory)}")
    if before.size != after.size:
        said.append(f"root disk {_root(before.size)} -> {_root(after.size)}")
    if before.mounts != after.mounts:
        said.append("mounts changed")
    if before.entrypoint != after.entrypoint:
        said.append("entrypoint changed")
    if before.env != after.env:
        said.append("env changed")
    if before.network != after.network:
        said.append("network changed")
    if before.mode != after.mode:
        said.append(f"mode {before.mode} -> {after.mode}")
    return said
