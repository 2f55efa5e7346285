"""A deployment spec once read and checked: what to run, with sizes in bytes.

The loader (:mod:`zgrid.client.spec.loader`) turns a YAML file into these; the planner
and the builder read only these. Names are the spec's own (``machines[].name`` …);
references between entries (a machine's disks, a zdb's machine) are by those names and
are known to resolve once a Spec exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

__all__ = [
    "DiskSpec",
    "MachineSpec",
    "MountSpec",
    "NetworkSpec",
    "PlacementRules",
    "Spec",
    "ZdbSpec",
]


@dataclass(frozen=True)
class PlacementRules:
    """Which nodes may take an entry. Empty fields do not constrain."""

    nodes: tuple[int, ...] = ()  # only these node ids
    farm: int | str | None = None  # a farm id or a farm name
    country: str | None = None  # as the node reports it (case-insensitive)
    min_free_cru: int = 0  # free on the node besides what this entry takes
    min_free_mru: int = 0
    min_free_sru: int = 0
    min_free_hru: int = 0
    certified: bool = False  # True: only nodes of certified farms
    spread: bool = True  # the replicas of one machine on distinct nodes


@dataclass(frozen=True)
class DiskSpec:
    """A disk (zmount) of ``size`` bytes; machines mount it by name."""

    name: str
    size: int


@dataclass(frozen=True)
class MountSpec:
    disk: str  # a DiskSpec's name
    mountpoint: str


@dataclass(frozen=True)
class MachineSpec:
    name: str
    flist: str  # a hub name ("busybox", "<twin>/<name>") or a URL
    cpu: int = 1
    memory: int = 512 << 20
    disk: int = 0  # root disk in bytes; 0 is the smallest the node allows
    mounts: tuple[MountSpec, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    entrypoint: str = ""
    ssh_keys: tuple[str, ...] = ()
    planetary: bool = True
    public_ipv4: bool = False  # each replica gets one of its farm's public IPv4s
    public_ipv6: bool = False  # each replica gets a public IPv6 of its node's /64
    replicas: int = 1
    mode: Literal["container", "vm"] = "container"
    placement: PlacementRules | None = None  # the spec's rules with this entry's over them


@dataclass(frozen=True)
class ZdbSpec:
    name: str
    size: int
    mode: Literal["user", "seq"] = "user"
    public: bool = False
    password: str | None = None  # None: the client makes one and keeps it
    machine: str | None = None  # a MachineSpec's name: on that machine's node (each replica's)
    placement: PlacementRules | None = None  # as for machines; unused with ``machine``


@dataclass(frozen=True)
class NetworkSpec:
    """The private network every machine of the spec joins."""

    name: str = "net"
    ip_range: str | None = None  # an IPv4 /16; None: chosen from the deployment's name


@dataclass(frozen=True)
class GatewaySpec:
    """A web gateway to a machine's replicas on the spec's private network: ``name`` (under
    a gateway node's domain, held by a name contract) or ``fqdn`` (the deployer's own)."""

    machine: str
    port: int
    name: str = ""
    fqdn: str = ""
    tls_passthrough: bool = False

    @property
    def entry(self) -> str:
        """What its item is called: the name, or the domain."""
        return self.name or self.fqdn


@dataclass(frozen=True)
class Spec:
    name: str  # the deployment's name: ^[a-z0-9][a-z0-9-]{0,62}$
    machines: tuple[MachineSpec, ...] = ()
    zdbs: tuple[ZdbSpec, ...] = ()
    disks: tuple[DiskSpec, ...] = ()
    placement: PlacementRules = field(default_factory=PlacementRules)
    network: NetworkSpec | None = None
    gateways: tuple[GatewaySpec, ...] = ()
    source: Path | None = None  # the file it was read from

    def machine(self, name: str) -> MachineSpec:
        return next(m for m in self.machines if m.name == name)

    def gateway(self, entry: str) -> GatewaySpec:
        return next(g for g in self.gateways if g.entry == entry)

    def disk(self, name: str) -> DiskSpec:
        return next(d for d in self.disks if d.name == name)

    def rules_for(self, entry: MachineSpec | ZdbSpec) -> PlacementRules:
        return entry.placement or self.placement
