"""The private network of a spec: one /24 per node, peered every node with every other.

:func:`plan_mesh` gives each node that runs machines of the spec its part of the network
(a network workload: its subnet, WireGuard key and port, and every other node as a
peer at the address that node registered on the ledger) and each machine its address.
What runs already is kept: a node's subnet, key and port, and a machine's address stay
the same across applies, so only the peers change when a node joins or leaves, and those
the node applies in place.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from zgrid.client.builder import item_of, new_deployment, new_workload, spec_name_of
from zgrid.client.errors import PlacementError
from zgrid.client.spec.model import NetworkSpec, Spec
from zgrid.identity import new_wireguard_key, wireguard_public_key
from zgrid.types import Deployment, Network, Peer, ZMachine

__all__ = [
    "NodeMesh",
    "access_address",
    "access_config",
    "access_peer",
    "access_subnet",
    "network_key",
    "plan_mesh",
    "with_access",
]

_PORTS = (20000, 60000)  # where a new part's listen port is drawn from


@dataclass(frozen=True)
class NodeMesh:
    """One node's part: its network workload's data and its machines' addresses by key."""

    network: Network
    addresses: Mapping[str, str]  # machine item key -> IPv4


def network_key(spec: NetworkSpec) -> str:
    """The item key of a node's network workload (one per node, so always replica 0)."""
    return f"network/{spec.name}/0"


def _default_range(name: str) -> str:
    digest = hashlib.blake2b(name.encode(), digest_size=2).digest()
    return f"10.{1 + digest[0] % 254}.0.0/16"


def access_subnet(ip_range: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    """The /24 kept for the deployer's own machine: the range's last."""
    return list(ip_range.subnets(new_prefix=24))[-1]


def access_address(ip_range: ipaddress.IPv4Network) -> str:
    return str(access_subnet(ip_range).network_address + 2)


def access_peer(ip_range: ipaddress.IPv4Network, public_key: str) -> Peer:
    """The deployer's own machine as a node's peer: it makes the first contact, so it
    has no endpoint."""
    return Peer(
        subnet=str(access_subnet(ip_range)),
        wireguard_public_key=public_key,
        allowed_ips=[f"{access_address(ip_range)}/32"],
    )


def with_access(deployment: Deployment, key: str, public_key: str) -> Deployment | None:
    """``deployment`` with the access peer added to its part of the network (``key``) at
    the next version, or None when it has no part or the peer already."""
    changed = False
    version = deployment.version + 1
    workloads = []
    for workload in deployment.workloads:
        data = workload.data
        missing = isinstance(data, Network) and not any(
            peer.wireguard_public_key == public_key for peer in data.peers
        )
        if item_of(workload) == key and isinstance(data, Network) and missing:
            peer = access_peer(ipaddress.IPv4Network(data.ip_range), public_key)
            grown = Network(**{**dict(data), "peers": [*data.peers, peer]})
            workloads.append(new_workload(workload.name, grown, key=key, version=version))
            changed = True
        else:
            workloads.append(workload)
    if not changed:
        return None
    return new_deployment(
        name=spec_name_of(deployment) or "",
        twin_id=deployment.twin_id,
        contract_id=deployment.contract_id,
        version=version,
        workloads=workloads,
    )


def access_config(
    private_key: str, parts: Mapping[int, tuple[Network, str]], *, keepalive: int = 25
) -> str:
    """A wg-quick configuration for the deployer's own machine: ``parts`` maps each node
    to its part of the network and the address it is reached at."""
    ip_range = ipaddress.IPv4Network(next(iter(parts.values()))[0].ip_range)
    lines = [
        "[Interface]",
        f"PrivateKey = {private_key}",
        f"Address = {access_address(ip_range)}/32",
    ]
    for node, (network, host) in sorted(parts.items()):
        lines += [
            "",
            f"# node {node}",
            "[Peer]",
            f"PublicKey = {wireguard_public_key(network.wireguard_private_key)}",
            f"AllowedIPs = {network.subnet}",
            f"Endpoint = {_endpoint(host, network.wireguard_listen_port)}",
            f"PersistentKeepalive = {keepalive}",
        ]
    return "\n".join(lines) + "\n"


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def plan_mesh(
    spec: Spec,
    machines_on: Mapping[int, Sequence[str]],
    *,
    current: Mapping[int, Deployment],
    endpoints: Mapping[int, str],
    access: str | None = None,
) -> dict[int, NodeMesh]:
    """Each node's part of the spec's network; ``machines_on`` lists the machine item keys
    of each node that has a part (a gateway node may have none of them), ``current`` the deployment each
    node runs now, ``endpoints`` the address each node's peers reach it at, ``access``
    the public key of the deployer's own machine, a peer of every node (:func:`access_peer`).

    PlacementError when a node has no registered address, or the range has no /24 left.
    """
    assert spec.network is not None
    key = network_key(spec.network)
    nodes = sorted(machines_on)
    old_parts: dict[int, Network] = {}
    old_addresses: dict[str, str] = {}
    for node, deployment in current.items():
        for workload in deployment.workloads:
            if item_of(workload) == key and isinstance(workload.data, Network):
                old_parts[node] = workload.data
            elif isinstance(workload.data, ZMachine) and workload.data.network.interfaces:
                machine_key = item_of(workload)
                if machine_key is not None:
                    old_addresses[machine_key] = workload.data.network.interfaces[0].ip
    ip_range = ipaddress.IPv4Network(
        spec.network.ip_range
        or next((part.ip_range for part in old_parts.values()), None)
        or _default_range(spec.name)
    )
    # Keep what parts have (a subnet inside the range), then give the rest the first free.
    subnets: dict[int, ipaddress.IPv4Network] = {}
    for node in nodes:
        part = old_parts.get(node)
        if part is not None and ipaddress.IPv4Network(part.subnet).subnet_of(ip_range):
            subnets[node] = ipaddress.IPv4Network(part.subnet)
    reserved = {access_subnet(ip_range)}  # the deployer's own machine's, never a node's
    free = (
        s
        for s in list(ip_range.subnets(new_prefix=24))[1:]
        if s not in subnets.values() and s not in reserved
    )
    for node in nodes:
        if node not in subnets:
            chosen = next(free, None)
            if chosen is None:
                raise PlacementError(key, [f"ip_range {ip_range} has no free /24 left"])
            subnets[node] = chosen
    secrets_of: dict[int, tuple[str, int]] = {}
    for node in nodes:
        part = old_parts.get(node)
        if part is not None:
            secrets_of[node] = (part.wireguard_private_key, part.wireguard_listen_port)
        else:
            private = new_wireguard_key()
            secrets_of[node] = (private, _PORTS[0] + secrets.randbelow(_PORTS[1] - _PORTS[0]))
    for node in nodes:
        if len(nodes) > 1 and not endpoints.get(node):
            raise PlacementError(
                key, [f"node {node} registered no address its peers could reach it at"]
            )
    public = {node: wireguard_public_key(secrets_of[node][0]) for node in nodes}
    meshes: dict[int, NodeMesh] = {}
    for node in nodes:
        private, port = secrets_of[node]
        peers = [
            Peer(
                subnet=str(subnets[other]),
                wireguard_public_key=public[other],
                allowed_ips=[str(subnets[other])],
                endpoint=_endpoint(endpoints[other], secrets_of[other][1]),
            )
            for other in nodes
            if other != node
        ]
        if access is not None:
            peers.append(access_peer(ip_range, access))
        network = Network(
            ip_range=str(ip_range),
            subnet=str(subnets[node]),
            wireguard_private_key=private,
            wireguard_listen_port=port,
            peers=peers,
        )
        meshes[node] = NodeMesh(
            network, _addresses(subnets[node], machines_on[node], old_addresses)
        )
    return meshes


def _addresses(
    subnet: ipaddress.IPv4Network, keys: Sequence[str], old: Mapping[str, str]
) -> dict[str, str]:
    """Each machine's address in ``subnet``: the one it has, else the first free from .2."""
    hosts = set(list(subnet.hosts())[1:])  # .1 is the network's gateway on the node
    chosen: dict[str, str] = {}
    for key in keys:
        address = old.get(key)
        usable = address is not None and ipaddress.IPv4Address(address) in hosts
        if usable and address not in chosen.values():
            chosen[key] = str(address)
    taken = set(chosen.values())
    spare = (str(host) for host in sorted(hosts) if str(host) not in taken)
    for key in keys:
        if key not in chosen:
            address = next(spare, None)
            if address is None:
                raise PlacementError(
                    key, [f"its node's subnet {subnet} has no address left ({len(hosts)} in all)"]
                )
            chosen[key] = address
    return chosen
