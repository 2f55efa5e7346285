"""The gateway primitives: a web name on this gateway node, proxied to a deployment's machines.

``gateway-name-proxy`` serves ``<name>.<the node's domain>``; the name is the deployer's
only while its twin holds the name contract for it on the ledger, which the node checks
before serving it. ``gateway-fqdn-proxy`` serves the deployer's own domain (its DNS is the
deployer's business); a name under the node's own domain is refused there, since that
would skip the name contract. Both go to the node's front door (Caddy terminating TLS,
HAProxy routing passthrough TLS by SNI: zgrid.node.net.frontdoor).

Backends are reached on the planetary network or on public addresses, or, when the
workload names a network of its deployment, on that private network: then the front
door connects from inside that network's router namespace, so a gateway reaches only its
own deployment's machines. A backend on a private or loopback address without a network
is refused: it would reach the node's own services.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from zgrid.atomic import write_atomic
from zgrid.node.errors import ProvisionError
from zgrid.node.net.frontdoor import FrontDoor, ProxyRoute
from zgrid.node.primitives.base import Observed, Provisioning, ResultData, WorkloadRef
from zgrid.node.primitives.network import NetworkPrimitive
from zgrid.types import GatewayFQDNProxy, GatewayNameProxy

__all__ = ["GatewayPrimitive", "NameOwner"]

NameOwner = Callable[[str], Awaitable[int | None]]
"""The twin holding a name's live name contract on the ledger, or None."""

# Without a private network, these would reach the node itself or its local networks.
_INTERNAL = [
    ipaddress.ip_network(prefix)
    for prefix in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
]


def _backend_host(backend: str, passthrough: bool) -> str:
    if passthrough:
        host, _, _ = backend.rpartition(":")
        return host.strip("[]")
    return urlsplit(backend).hostname or ""


class GatewayPrimitive:
    """Gateway workloads of either kind, one route of the front door each."""

    def __init__(
        self,
        root: Path,
        *,
        front: FrontDoor,
        domain: str,
        name_owner: NameOwner,
        networks: NetworkPrimitive | None,
    ) -> None:
        self._root = Path(root)
        self.front = front
        self._domain = domain
        self._name_owner = name_owner
        self._networks = networks

    def _path(self, workload_id: str) -> Path:
        return self._root / f"{workload_id}.json"

    async def provision(self, item: Provisioning) -> ResultData:
        data = item.workload.data
        ref = item.ref
        if isinstance(data, GatewayNameProxy):
            host = f"{data.name}.{self._domain}"
            owner = await self._name_owner(data.name)
            if owner != ref.twin_id:
                held = "nobody holds it" if owner is None else f"twin {owner} holds it"
                raise ProvisionError(
                    f"name {data.name!r} is not twin {ref.twin_id}'s on the ledger ({held}):"
                    " a gateway name needs its owner's name contract"
                )
        elif isinstance(data, GatewayFQDNProxy):
            host = data.fqdn.lower().rstrip(".")
            if host == self._domain or host.endswith(f".{self._domain}"):
                raise ProvisionError(
                    f"{host} is under this gateway's own domain {self._domain}: use a"
                    " gateway-name-proxy (with its name contract) for it"
                )
        else:  # pragma: no cover - the dispatch table sends only gateway types here
            raise ProvisionError(f"{type(data).__name__} is not a gateway")
        netns = await self._netns(ref, data.network, data.backends, data.tls_passthrough)
        route = ProxyRoute(
            id=ref.id,
            host=host,
            backends=tuple(data.backends),
            tls_passthrough=data.tls_passthrough,
            netns=netns,
        )
        self._root.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path(ref.id), json.dumps({"host": host}).encode())
        await self.front.ensure()
        await self.front.set_route(route)
        return {"fqdn": host, "tls_passthrough": data.tls_passthrough}

    async def _netns(
        self, ref: WorkloadRef, network: str, backends: list[str], passthrough: bool
    ) -> str:
        """The router namespace the backends are reached from ("" for this node's own)."""
        hosts = []
        for backend in backends:
            try:
                hosts.append(ipaddress.ip_address(_backend_host(backend, passthrough)))
            except ValueError:
                raise ProvisionError(
                    f"backend {backend!r} must name an IP address, not a host name"
                ) from None
        if not network:
            for host in hosts:
                if (
                    host.is_loopback
                    or host.is_link_local
                    or host.is_unspecified
                    or host.is_multicast
                    or any(host in prefix for prefix in _INTERNAL)
                ):
                    raise ProvisionError(
                        f"backend address {host} is not reachable from a gateway without a"
                        " network: name the deployment's network to reach its private addresses"
                    )
            return ""
        if self._networks is None:
            raise ProvisionError("this node has no private networks (no wireguard-go)")
        network_ref = WorkloadRef(ref.twin_id, ref.contract_id, network)
        found = self._networks.ip_range(network_ref)
        if found is None:
            raise ProvisionError(
                f"network {network!r} is not on this node (a gateway's network must be a"
                " network workload of its own deployment)"
            )
        ip_range = ipaddress.ip_network(found)
        for host in hosts:
            if host not in ip_range:
                raise ProvisionError(
                    f"backend address {host} is not in network {network!r} ({found})"
                )
        return self._networks.netns_name(network_ref)

    async def deprovision(self, ref: WorkloadRef) -> None:
        if self._path(ref.id).exists():
            await self.front.remove_route(ref.id)
        self._path(ref.id).unlink(missing_ok=True)

    async def inspect(self, ref: WorkloadRef) -> Observed:
        if not self._path(ref.id).exists():
            return Observed(exists=False, detail="its route is not recorded")
        if not any(route.id == ref.id for route in await self.front.routes()):
            return Observed(exists=False, detail="the front door has no route for it")
        if not await self.front.alive():
            return Observed(exists=True, healthy=False, detail="the front door is not running")
        return Observed(exists=True)

    async def present(self) -> set[str]:
        return {p.stem for p in self._root.glob("*.json")} if self._root.is_dir() else set()
