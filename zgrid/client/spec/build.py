"""From schema-checked data to a :class:`Spec`, with the rules a JSON Schema cannot state.

Sizes are parsed and bounded here (memory 250 MiB to 1 TiB, root disk up to 64 TiB,
disks and zdbs 1 MiB to 64 TiB); entry names are unique across machines, disks and zdbs
(each becomes a workload name on a node, where one namespace holds them all); a machine's
disks and a zdb's machine must name an entry; a disk belongs to one machine; a machine's
mountpoints are distinct and have no '..'. Values of the wrong type were reported by the
schema and are skipped here.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import posixpath
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from zgrid.client.spec.document import Document, Path
from zgrid.client.spec.model import (
    DiskSpec,
    GatewaySpec,
    MachineSpec,
    MountSpec,
    NetworkSpec,
    PlacementRules,
    Spec,
    ZdbSpec,
)
from zgrid.client.spec.units import format_size, parse_size
from zgrid.types import RESERVED_NETWORK_NAMES

__all__ = [
    "DEFAULT_MEMORY",
    "MAX_DISK",
    "MAX_MEMORY",
    "MIN_DISK",
    "MIN_MEMORY",
    "build_spec",
]

MIB = 1024**2
MIN_MEMORY = 250 * MIB  # what the node accepts for a machine
MAX_MEMORY = 1024**4
DEFAULT_MEMORY = 512 * MIB
MIN_DISK = MIB
MAX_DISK = 64 * 1024**4

_KINDS = {"machines": "machine", "disks": "disk", "zdbs": "zdb"}


class _Builder:
    def __init__(self, document: Document) -> None:
        self.document = document

    def fail(self, path: Path, message: str, *, key: bool = False) -> None:
        self.document.add(path, message, key=key)

    def size(
        self, raw: Mapping[str, Any], key: str, path: Path, *, low: int, high: int, default: int
    ) -> int:
        value = raw.get(key)
        if value is None or isinstance(value, bool) or not isinstance(value, int | str):
            return default
        at = (*path, key)
        try:
            size = parse_size(value, what=key)
        except ValueError as exc:
            self.fail(at, str(exc))
            return default
        if size < low:
            self.fail(at, f"{key} must be at least {format_size(low)}, got {format_size(size)}")
        elif size > high:
            self.fail(at, f"{key} must be at most {format_size(high)}, got {format_size(size)}")
        return size

    def placement(self, raw: Any, base: PlacementRules, path: Path) -> PlacementRules:
        """``base`` with the keys ``raw`` gives over it (min_free key by key)."""
        if not isinstance(raw, dict):
            return base
        given: dict[str, Any] = {}
        nodes = raw.get("nodes")
        if isinstance(nodes, list):
            given["nodes"] = tuple(n for n in nodes if isinstance(n, int))
        farm = raw.get("farm")
        if isinstance(farm, int | str) and not isinstance(farm, bool):
            given["farm"] = farm
        if isinstance(raw.get("country"), str):
            given["country"] = raw["country"]
        for flag in ("certified", "spread"):
            if isinstance(raw.get(flag), bool):
                given[flag] = raw[flag]
        free = raw.get("min_free")
        if isinstance(free, dict):
            at = (*path, "min_free")
            if isinstance(free.get("cpu"), int) and not isinstance(free["cpu"], bool):
                given["min_free_cru"] = free["cpu"]
            for key, field in (("memory", "mru"), ("ssd", "sru"), ("hdd", "hru")):
                if key in free:
                    given[f"min_free_{field}"] = self.size(
                        free, key, at, low=0, high=2**63 - 1, default=0
                    )
        return dataclasses.replace(base, **given)

    def names(self, data: Mapping[str, Any]) -> None:
        """One namespace for every entry: a name given twice is reported where it repeats."""
        seen: dict[str, Path] = {}
        for section in _KINDS:
            entries = data.get(section)
            for index, entry in enumerate(entries if isinstance(entries, list) else []):
                name = entry.get("name") if isinstance(entry, dict) else None
                if not isinstance(name, str):
                    continue
                path: Path = (section, index)
                if name in seen:
                    first = seen[name]
                    self.fail(
                        (*path, "name"),
                        f"duplicate name {name!r}: {_KINDS[str(first[0])]} "
                        f"{_section_path(first)} has it already (names are unique across "
                        "machines, disks and zdbs)",
                    )
                else:
                    seen[name] = path

    def network(self, raw: object, entries: set[str]) -> NetworkSpec | None:
        if not isinstance(raw, dict):
            return None
        name = raw.get("name", "net")
        name = name if isinstance(name, str) else "net"
        if name in RESERVED_NETWORK_NAMES:
            self.fail(("network", "name"), f"network name {name!r} is reserved (ygg, pub)")
        elif name in entries:
            self.fail(
                ("network", "name"),
                f"network name {name!r} is the name of a machine, disk or zdb too (names are"
                " unique: each becomes a workload name)",
            )
        ip_range = raw.get("ip_range")
        if isinstance(ip_range, str):
            try:
                network = ipaddress.IPv4Network(ip_range, strict=True)
            except ValueError as exc:
                self.fail(("network", "ip_range"), f"ip_range {ip_range!r} is not a /16: {exc}")
            else:
                if not network.is_private:
                    self.fail(
                        ("network", "ip_range"),
                        f"ip_range {ip_range} is not a private range (10/8, 172.16/12, 192.168/16)",
                    )
        return NetworkSpec(name=name, ip_range=ip_range if isinstance(ip_range, str) else None)

    def machine(
        self,
        raw: Mapping[str, Any],
        path: Path,
        spec_rules: PlacementRules,
        disk_names: set[str],
        mounted_by: dict[str, str],
    ) -> MachineSpec:
        name = str(raw["name"]) if isinstance(raw.get("name"), str) else ""
        mounts: list[MountSpec] = []
        points: dict[str, int] = {}
        own: set[str] = set()
        raw_mounts = raw.get("disks")
        for index, mount in enumerate(raw_mounts if isinstance(raw_mounts, list) else []):
            if not isinstance(mount, dict):
                continue
            at: Path = (*path, "disks", index)
            disk, point = mount.get("disk"), mount.get("mountpoint")
            if isinstance(disk, str):
                if disk not in disk_names:
                    known = ", ".join(sorted(disk_names)) or "none"
                    self.fail((*at, "disk"), f"no disk named {disk!r} (disks: {known})")
                elif disk in own:
                    self.fail((*at, "disk"), f"disk {disk!r} is mounted twice by this machine")
                elif disk in mounted_by:
                    self.fail(
                        (*at, "disk"),
                        f"disk {disk!r} is already mounted by machine {mounted_by[disk]!r} "
                        "(a disk belongs to one machine)",
                    )
                else:
                    own.add(disk)
                    mounted_by[disk] = name
            if isinstance(point, str):
                normal = posixpath.normpath(point)
                if "\0" in point or ".." in point.split("/"):
                    self.fail(
                        (*at, "mountpoint"), f"mountpoint must not contain '..', got {point!r}"
                    )
                elif normal in points:
                    self.fail(
                        (*at, "mountpoint"),
                        f"mountpoint {point!r} is already used by disks[{points[normal]}]",
                    )
                else:
                    points[normal] = index
            if isinstance(disk, str) and isinstance(point, str):
                mounts.append(MountSpec(disk=disk, mountpoint=point))
        env = raw.get("env")
        keys = raw.get("ssh_keys")
        placement = raw.get("placement")
        return MachineSpec(
            name=name,
            flist=str(raw.get("flist", "")),
            cpu=_int(raw.get("cpu"), 1),
            memory=self.size(
                raw, "memory", path, low=MIN_MEMORY, high=MAX_MEMORY, default=DEFAULT_MEMORY
            ),
            disk=self.size(raw, "disk", path, low=0, high=MAX_DISK, default=0),
            mounts=tuple(mounts),
            env=MappingProxyType(dict(env) if isinstance(env, dict) else {}),
            entrypoint=str(raw.get("entrypoint", "")),
            ssh_keys=tuple(k for k in keys if isinstance(k, str)) if isinstance(keys, list) else (),
            planetary=bool(raw.get("planetary", True)),
            public_ipv4=raw.get("public_ipv4") is True,
            public_ipv6=raw.get("public_ipv6") is True,
            replicas=_int(raw.get("replicas"), 1),
            mode="vm" if raw.get("mode") == "vm" else "container",
            placement=None
            if placement is None
            else self.placement(placement, spec_rules, (*path, "placement")),
        )

    def zdb(
        self, raw: Mapping[str, Any], path: Path, spec_rules: PlacementRules, machines: set[str]
    ) -> ZdbSpec:
        machine = raw.get("machine") if isinstance(raw.get("machine"), str) else None
        if machine is not None and machine not in machines:
            known = ", ".join(sorted(machines)) or "none"
            self.fail((*path, "machine"), f"no machine named {machine!r} (machines: {known})")
        placement = raw.get("placement")
        if machine is not None and placement is not None:
            self.fail(
                (*path, "placement"),
                "a zdb with a machine goes on that machine's node: give machine or placement, "
                "not both",
                key=True,
            )
        mode = raw.get("mode")
        password = raw.get("password")
        return ZdbSpec(
            name=str(raw.get("name", "")),
            size=self.size(raw, "size", path, low=MIN_DISK, high=MAX_DISK, default=MIN_DISK),
            mode="seq" if mode == "seq" else "user",
            public=raw.get("public") is True,
            password=password if isinstance(password, str) else None,
            machine=machine,
            placement=None
            if placement is None
            else self.placement(placement, spec_rules, (*path, "placement")),
        )


def _gateways(builder: _Builder, data: Mapping[str, Any], machines: set[str]) -> list[GatewaySpec]:
    found: list[GatewaySpec] = []
    seen: set[str] = set()
    for path, raw in _entries(data, "gateways"):
        name, fqdn = raw.get("name"), raw.get("fqdn")
        name = name if isinstance(name, str) else ""
        fqdn = fqdn if isinstance(fqdn, str) else ""
        if bool(name) == bool(fqdn):
            builder.fail(path, "a gateway has a name or an fqdn (one of them)")
        machine = raw.get("machine")
        machine = machine if isinstance(machine, str) else ""
        if machine and machine not in machines:
            known = ", ".join(sorted(machines)) or "none"
            builder.fail((*path, "machine"), f"no machine named {machine!r} (machines: {known})")
        entry = name or fqdn
        if entry in seen:
            builder.fail(path, f"gateway {entry!r} is given twice")
        seen.add(entry)
        found.append(
            GatewaySpec(
                machine=machine,
                port=_int(raw.get("port"), 0),
                name=name,
                fqdn=fqdn,
                tls_passthrough=raw.get("tls_passthrough") is True,
            )
        )
    return found


def _section_path(path: Path) -> str:
    return f"{path[0]}[{path[1]}]"


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _entries(data: Mapping[str, Any], section: str) -> list[tuple[Path, dict[str, Any]]]:
    raw = data.get(section)
    if not isinstance(raw, list):
        return []
    return [((section, index), entry) for index, entry in enumerate(raw) if isinstance(entry, dict)]


def build_spec(document: Document) -> Spec:
    """The spec of ``document.data``; every rule it breaks is added to ``document.problems``
    (the returned Spec is only meaningful when none were)."""
    data = document.data if isinstance(document.data, dict) else {}
    builder = _Builder(document)
    rules = builder.placement(data.get("placement"), PlacementRules(), ("placement",))
    builder.names(data)
    disks = [
        DiskSpec(
            name=str(raw.get("name", "")),
            size=builder.size(raw, "size", path, low=MIN_DISK, high=MAX_DISK, default=MIN_DISK),
        )
        for path, raw in _entries(data, "disks")
    ]
    disk_names = {disk.name for disk in disks}
    mounted_by: dict[str, str] = {}
    machines = [
        builder.machine(raw, path, rules, disk_names, mounted_by)
        for path, raw in _entries(data, "machines")
    ]
    machine_names = {machine.name for machine in machines}
    zdbs = [builder.zdb(raw, path, rules, machine_names) for path, raw in _entries(data, "zdbs")]
    name = data.get("name")
    entries = machine_names | disk_names | {zdb.name for zdb in zdbs}
    gateways = _gateways(builder, data, machine_names)
    network = builder.network(data.get("network"), entries)
    if gateways and network is None:
        # A gateway reaches its machines over the private network: the default one, then.
        network = builder.network({}, entries)
    return Spec(
        name=name if isinstance(name, str) else "",
        machines=tuple(machines),
        zdbs=tuple(zdbs),
        disks=tuple(disks),
        placement=rules,
        network=network,
        gateways=tuple(gateways),
    )
