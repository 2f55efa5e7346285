"""`zgrid node run`: the node daemon put together from its parts, and its start-up order.

On start: the node key, the capacity, the registration on the ledger; then the node's
own services (Zero-DB, yggdrasil), the runtime's recovery of what ran before a crash,
and the engine following the ledger. The node opens no port of its own: its Zero-DB
server is a workload service the deployments use (namespaces, the log channel).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import stamina

from zgrid.chain import ChainClient, Interface, LedgerUnavailable, PublicConfig
from zgrid.node.capacity import node_capacity
from zgrid.node.disks import DiskPool
from zgrid.node.dispatch import build_primitives
from zgrid.node.engine import Engine
from zgrid.node.errors import NodeError
from zgrid.node.flists import FlistManager
from zgrid.node.keys import identity_dir, load_or_create_node_identity
from zgrid.node.logs import LogChannel
from zgrid.node.naming import node_scope
from zgrid.node.net.frontdoor import FrontDoor, TlsIssuer
from zgrid.node.net.planetary import PlanetaryNetwork
from zgrid.node.net.public import PublicAddress, PublicNetwork, PublicSettings
from zgrid.node.net.yggdrasil import Yggdrasil
from zgrid.node.primitives.gateway import GatewayPrimitive
from zgrid.node.primitives.network import NetworkPrimitive
from zgrid.node.primitives.publicip import IpPrimitive, ReservedIps
from zgrid.node.primitives.vm import VirtualMachines
from zgrid.node.primitives.zmachine import ZMachinePrimitive
from zgrid.node.registrar import Registration, ensure_registered, report_uptime
from zgrid.node.runtime import RuncRuntime
from zgrid.node.runtime.qemu import QEMU, QemuRuntime
from zgrid.node.state import LocalState
from zgrid.node.system import run_command
from zgrid.node.traffic import report_traffic
from zgrid.node.zdbserver import ZdbServer
from zgrid.types import NODE_INTERFACE, Capacity

__all__ = ["NodeConfig", "node_scope", "run_node"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeConfig:
    farm_id: int
    ledger_url: str
    data_dir: Path
    hub_url: str | None = None
    capacity: str | None = None  # the --capacity override; None: measured
    join_token: str | None = None
    zdb_port: int = 9900
    yggdrasil_listen: tuple[str, ...] = ()
    yggdrasil_peers: tuple[str, ...] = ()
    reconcile_interval: float = 60.0
    uptime_interval: float = 2400.0
    public: PublicSettings | None = None  # None: no public network (no public IPs, no gateway)
    # How a gateway node's Caddy gets certificates: its own CA (cert, key), else ACME.
    gateway_ca: tuple[Path, Path] | None = None
    acme_email: str = ""


async def node_addresses(*, besides: str = "") -> list[str]:
    """The addresses others can reach this node on (global IPv4/IPv6 of its netns), those of
    link ``besides`` left out (the public bridge: its addresses are the public config's)."""
    output = await run_command(["ip", "-j", "address", "show"])
    found: list[str] = []
    for link in json.loads(output or "[]"):
        if besides and link.get("ifname") == besides:
            continue
        for info in link.get("addr_info", []):
            try:
                address = ipaddress.ip_address(info.get("local", ""))
            except ValueError:
                continue
            if address.is_loopback or address.is_link_local:
                continue
            found.append(str(address))
    return found


async def run_node(
    config: NodeConfig, *, ready: Callable[[dict[str, Any]], None] | None = None
) -> None:
    """Run the node until cancelled; ``ready`` is called once it follows the ledger."""
    data = config.data_dir
    data.mkdir(parents=True, exist_ok=True)
    identity = load_or_create_node_identity(data)
    scope = node_scope(data)
    capacity = node_capacity(data, config.capacity)
    public = None if config.public is None else PublicNetwork(config.public, scope=scope)
    async with ChainClient(config.ledger_url, identity=identity) as chain:
        # Before yggdrasil adds its own: these are where other nodes' WireGuard reaches us.
        reachable = await node_addresses(besides=public.bridge if public else "")
        registration = await _registered(
            chain,
            config,
            capacity,
            identity_dir(data),
            [Interface(name=NODE_INTERFACE, ips=reachable)],
        )
        ips = await _public_side(public, data, chain)
        state = LocalState(data / "state.db")
        zdb = ZdbServer(data / "zdb", port=config.zdb_port)
        await zdb.ensure_running()
        yggdrasil = Yggdrasil(
            data / "yggdrasil",
            scope=scope,
            listen=list(config.yggdrasil_listen),
            peers=list(config.yggdrasil_peers),
        )
        await yggdrasil.ensure_running()
        runtime = RuncRuntime(data / "runtime", scope=scope)
        addresses: list[str] = await node_addresses()
        logs = LogChannel(zdb, data / "logs")
        planetary = PlanetaryNetwork(yggdrasil, data / "planetary", scope=scope)
        disks = DiskPool(data / "disks", scope=scope)
        vms = _virtual_machines(data, disks)
        networks = None
        if shutil.which("wireguard-go") and shutil.which("wg"):
            networks = NetworkPrimitive(data / "networks", scope=scope)
        machines = ZMachinePrimitive(
            data / "machines",
            disks=disks,
            flists=FlistManager(data / "flists", scope=scope),
            network=planetary,
            runtime=runtime,
            logs=logs,
            addresses=lambda: list(addresses),
            hub_url=config.hub_url,
            zdb_port=zdb.port,
            planetary_address=lambda: yggdrasil.address,
            vms=vms,
            networks=networks,
            public=public,
            ips=ips,
        )
        gateways = _gateways(config, data, chain, networks)
        primitives = build_primitives(
            machines=machines,
            zdb=zdb,
            addresses=lambda: list(addresses),
            networks=networks,
            ips=ips,
            gateways=gateways,
        )
        engine = Engine(
            chain=chain,
            identity=identity,
            state=state,
            primitives=primitives,
            node_id=registration.node_id,
            capacity=capacity,
            reconcile_interval=config.reconcile_interval,
        )
        machines.on_change = engine.workload_changed
        await machines.recover()
        info = {
            "node_id": registration.node_id,
            "twin_id": registration.twin_id,
            "address": identity.address,
            "yggdrasil": yggdrasil.address,
            "subnet": yggdrasil.subnet,
            "capacity": capacity.to_dict(),
        }
        log.info(
            "node %s (twin %s) follows %s",
            registration.node_id,
            registration.twin_id,
            config.ledger_url,
        )
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(engine.run())
                group.create_task(machines.watch())
                group.create_task(report_uptime(chain, interval=config.uptime_interval))
                group.create_task(report_traffic(chain, state, planetary.host_links))
                group.create_task(_supervise(zdb, yggdrasil))
                if gateways is not None:
                    group.create_task(_keep_front_door(gateways.front))
                if ready is not None:
                    group.create_task(_when_idle(engine, lambda: ready(info)))
        finally:
            with contextlib.suppress(Exception):
                await logs.aclose()
            state.close()


async def _registered(
    chain: ChainClient,
    config: NodeConfig,
    capacity: Capacity,
    keys: Path,
    interfaces: list[Interface],
) -> Registration:
    """Register or update the node, waiting for a ledger that cannot be reached yet."""
    async for attempt in stamina.retry_context(
        on=LedgerUnavailable, attempts=None, timeout=None, wait_initial=1.0, wait_max=15.0
    ):
        if attempt.num > 1:
            log.warning("cannot reach the ledger at %s yet; trying again", config.ledger_url)
        with attempt:
            return await ensure_registered(
                chain,
                farm_id=config.farm_id,
                resources=capacity,
                join_token=config.join_token,
                interfaces=interfaces,
                identity_dir=keys,
                public_config=_public_config(config.public),
            )
    raise AssertionError("unreachable")  # pragma: no cover


def _virtual_machines(data: Path, disks: DiskPool) -> VirtualMachines | None:
    """VMs where qemu is installed (None: this node runs containers only)."""
    if not shutil.which(QEMU):
        return None
    qemu = QemuRuntime(data / "runtime")
    return VirtualMachines(data / "machines", runtime=qemu, disks=disks, cache=data / "guest")


def _gateways(
    config: NodeConfig, data: Path, chain: ChainClient, networks: NetworkPrimitive | None
) -> GatewayPrimitive | None:
    """A gateway node's front door and gateway primitive (None on other nodes)."""
    public = config.public
    if public is None or not public.domain:
        return None
    if config.gateway_ca is not None:
        tls = TlsIssuer(
            "internal", ca_certificate=config.gateway_ca[0], ca_key=config.gateway_ca[1]
        )
    else:
        tls = TlsIssuer("acme", acme_email=config.acme_email)
    front = FrontDoor(data / "gateway", listen=[a.ip for a in public.own], tls=tls)

    async def name_owner(name: str) -> int | None:
        found = await chain.name_contract(name)
        return None if found is None else int(found["twin_id"])

    return GatewayPrimitive(
        data / "gateways", front=front, domain=public.domain, name_owner=name_owner,
        networks=networks,
    )  # fmt: skip


async def _keep_front_door(front: FrontDoor, interval: float = 5.0) -> None:
    """Caddy and HAProxy started again, with every route, if either dies."""
    while True:
        try:
            if await front.routes() and not await front.alive():
                log.warning("the gateway's front door is down; starting it again")
                await front.ensure()
        except NodeError as exc:
            log.warning("cannot restart the gateway's front door: %s", exc)
        await asyncio.sleep(interval)


async def _public_side(
    public: PublicNetwork | None, data: Path, chain: ChainClient
) -> IpPrimitive | None:
    """The public bridge made, and the ip primitive on it (None: no public network)."""
    if public is None:
        return None
    await public.ensure()
    return IpPrimitive(data / "ips", public=public, reserved=_reserved_ips(chain))


def _public_config(settings: PublicSettings | None) -> PublicConfig | None:
    """What the ledger says of the node's public side (a gateway node's address and domain);
    None keeps what the record says."""
    if settings is None:
        return None
    v4, v6 = settings.ipv4, settings.ipv6
    return PublicConfig(
        ipv4=v4.cidr if v4 else "",
        gw4=v4.gateway if v4 else "",
        ipv6=v6.cidr if v6 else "",
        gw6=v6.gateway if v6 else "",
        domain=settings.domain,
    )


def _reserved_ips(chain: ChainClient) -> ReservedIps:
    async def reserved(contract_id: int) -> list[PublicAddress]:
        contract = await chain.contract(contract_id)
        return [
            PublicAddress(str(ip["ip"]), str(ip["gateway"]))
            for ip in contract.get("public_ips", [])
        ]

    return reserved


async def _when_idle(engine: Engine, then: Callable[[], None]) -> None:
    await asyncio.sleep(0)
    await engine.wait_idle()
    then()


async def _supervise(zdb: ZdbServer, yggdrasil: Yggdrasil, interval: float = 5.0) -> None:
    """The node's own services are started again if they die."""
    while True:
        await asyncio.sleep(interval)
        for service in (zdb, yggdrasil):
            try:
                await service.ensure_running()
            except Exception as exc:
                log.warning("cannot restart %s: %s", type(service).__name__, exc)
