"""The devnet's hosts: a bridge in this machine's namespace and one network namespace per node.

The root side of the bridge is ``.1`` of the devnet's /24, so the ledger, the hub and the
host's yggdrasil bound there are reachable from every node; node N is host ``.N+1``
with a default route through ``.1``. Every step checks what exists first, so `up` can
run again over a half-made network.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import subprocess
from pathlib import Path

from zgrid.devnet.errors import DevnetError
from zgrid.devnet.layout import DevnetState
from zgrid.node import links, unique_name

__all__ = [
    "HostNetns",
    "ensure_network",
    "free_prefix",
    "host_netns",
    "plug_host",
    "remove_network",
]


class HostNetns:
    """The names of one node host: its netns and the root side of its veth."""

    def __init__(self, state: DevnetState, name: str, number: int) -> None:
        self.name = name
        self.number = number
        self.netns = unique_name("zgdh", state.bridge, name)
        self.veth = unique_name("zgdv", state.bridge, name)
        self.address = state.node_address(number)

    @property
    def path(self) -> Path:
        return links.netns_path(self.netns)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this host's netns (nothing else of the process changed)."""
        return ["nsenter", f"--net={self.path}", *argv]


def host_netns(state: DevnetState, number: int) -> HostNetns:
    return HostNetns(state, f"node-{number}", number)


def _used_ipv4_networks() -> list[ipaddress.IPv4Network]:
    done = subprocess.run(
        ["ip", "-4", "-j", "route", "show", "table", "all"],
        capture_output=True,
        text=True,
        check=False,
    )
    used = []
    with contextlib.suppress(ValueError):
        for route in json.loads(done.stdout or "[]"):
            destination = route.get("dst", "default")
            if destination != "default":
                with contextlib.suppress(ValueError):
                    used.append(ipaddress.IPv4Network(destination, strict=False))
    return used


def free_prefix() -> str:
    """A 10.x.y.0/24 that no route of this machine touches, as ``10.x.y``."""
    used = _used_ipv4_networks()
    for _ in range(2000):
        prefix = f"10.{random.randint(100, 254)}.{random.randint(0, 255)}"
        candidate = ipaddress.IPv4Network(f"{prefix}.0/24")
        if not any(candidate.overlaps(network) for network in used):
            return prefix
    raise DevnetError("no free 10.x.y.0/24 on this machine for the devnet's bridge")


async def ensure_network(state: DevnetState) -> list[HostNetns]:
    """The bridge and every node host, made where missing; returns the hosts."""
    if await links.get_link(state.bridge) is None:
        await links.add_bridge(state.bridge)
    if f"{state.gateway}/24" not in await links.addresses(state.bridge):
        await links.add_address(state.bridge, f"{state.gateway}/24")
    await links.set_up(state.bridge)
    hosts = [host_netns(state, number) for number in range(1, state.nodes + 1)]
    for host in hosts:
        await _plug(state, host)
    return hosts


async def _plug(state: DevnetState, host: HostNetns) -> None:
    await plug_host(
        host.netns, host.veth, bridge=state.bridge, address=f"{host.address}/24",
        gateway=state.gateway,
    )  # fmt: skip


async def plug_host(netns: str, veth: str, *, bridge: str, address: str, gateway: str) -> None:
    """A "machine" on ``bridge``: netns ``netns`` whose eth0 (the far end of ``veth``) has
    ``address`` (CIDR) and a default route via ``gateway``. Made where missing, so a repeat
    finishes a half-made one."""
    await links.add_netns(netns)  # also finds an existing one, loopback up
    if await links.get_link(veth) is None:
        await links.add_veth(veth, "eth0", peer_netns=netns)
    await links.set_master(veth, bridge)
    await links.set_up(veth)
    await links.add_address("eth0", address, netns=netns)  # `ip addr replace`: repeatable
    await links.set_up("eth0", netns=netns)
    await links.replace_route("default", via=gateway, netns=netns)


async def remove_network(state: DevnetState, *, nodes: int) -> None:
    """Delete every node host (``nodes`` of them, or more if some were added) and the bridge."""
    for number in range(1, max(nodes, state.nodes) + 1):
        host = host_netns(state, number)
        await links.delete_link(host.veth)
        await links.delete_netns(host.netns)
    await links.delete_link(state.bridge)
