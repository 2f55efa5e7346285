"""The `ip` helpers, in a scratch netns of their own so the machine is never touched."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest

from tests.conftest import require_root, require_tool
from zgrid.node.errors import NetworkFailure
from zgrid.node.naming import unique_name
from zgrid.node.net import links


@pytest.fixture
def scratch() -> Iterator[tuple[str, str]]:
    """Two fresh network namespaces, deleted afterwards."""
    require_root()
    require_tool("ip")
    token = secrets.token_hex(8)
    first, second = unique_name("zta", token), unique_name("ztb", token)
    try:
        yield first, second
    finally:
        for name in (first, second):
            asyncio.run(links.delete_netns(name))


def test_netns_is_made_once_with_loopback_up(scratch: tuple[str, str]) -> None:
    name, _ = scratch

    async def scenario() -> None:
        assert not await links.netns_exists(name)
        await links.add_netns(name)
        await links.add_netns(name)
        assert await links.netns_exists(name)
        assert name in await links.list_netns()
        lo = await links.get_link("lo", netns=name)
        assert lo is not None and lo.up
        assert links.netns_path(name).exists()
        await links.delete_netns(name)
        await links.delete_netns(name)
        assert not await links.netns_exists(name)

    asyncio.run(scenario())


def test_a_stale_netns_file_is_made_again(scratch: tuple[str, str]) -> None:
    name, _ = scratch
    links.NETNS_DIR.mkdir(exist_ok=True)
    links.netns_path(name).touch()  # what a crash inside `ip netns add` leaves

    async def scenario() -> None:
        assert not await links.netns_exists(name)
        await links.add_netns(name)
        assert await links.netns_exists(name)

    asyncio.run(scenario())


def test_veth_bridge_address_route_and_sysctl(scratch: tuple[str, str]) -> None:
    outer, inner = scratch

    async def scenario() -> None:
        await links.add_netns(outer)
        await links.add_netns(inner)
        await links.add_bridge("br0", netns=outer)
        await links.add_bridge("br0", netns=outer)
        await links.add_veth("v0", "eth0", peer_netns=inner, netns=outer)
        await links.add_veth("v0", "eth0", peer_netns=inner, netns=outer)
        await links.set_master("v0", "br0", netns=outer)
        for name in ("br0", "v0"):
            await links.set_up(name, netns=outer)
        await links.set_up("eth0", netns=inner)
        veth = await links.get_link("v0", netns=outer)
        assert veth is not None and veth.kind == "veth" and veth.master == "br0" and veth.up
        bridge = await links.get_link("br0", netns=outer)
        assert bridge is not None and bridge.kind == "bridge"
        assert [link.name for link in await links.links(netns=outer)].count("v0") == 1

        await links.add_address("br0", "2001:db8::1/64", netns=outer, nodad=True)
        await links.add_address("br0", "2001:db8::1/64", netns=outer, nodad=True)
        assert (await links.addresses("br0", netns=outer)).count("2001:db8::1/64") == 1
        await links.add_address("eth0", "2001:db8::2/128", netns=inner, nodad=True)
        await links.replace_route("2001:db8::/32", via="fe80::1", dev="eth0", netns=inner)
        await links.replace_route("2001:db8::/32", via="fe80::1", dev="eth0", netns=inner)
        await links.replace_route("2001:db8:1::/48", unreachable=True, netns=outer)
        inner_routes = await links.routes(netns=inner)
        assert [r for r in inner_routes if r.dst == "2001:db8::/32"] == [
            links.Route(dst="2001:db8::/32", dev="eth0", gateway="fe80::1", type="unicast")
        ]
        outer_routes = await links.routes(netns=outer)
        assert any(r.dst == "2001:db8:1::/48" and r.type == "unreachable" for r in outer_routes)
        await links.delete_route("2001:db8::/32", dev="eth0", netns=inner)
        await links.delete_route("2001:db8::/32", dev="eth0", netns=inner)
        assert not [r for r in await links.routes(netns=inner) if r.dst == "2001:db8::/32"]

        await links.set_sysctl("net.ipv6.conf.all.forwarding", 1, netns=outer)
        assert await links.get_sysctl("net.ipv6.conf.all.forwarding", netns=outer) == "1"
        assert await links.get_sysctl("net.ipv6.conf.all.forwarding", netns=inner) == "0"

        await links.delete_link("v0", netns=outer)  # takes its peer along
        await links.delete_link("v0", netns=outer)
        assert await links.get_link("eth0", netns=inner) is None

    asyncio.run(scenario())


def test_failures_name_what_could_not_be_done(scratch: tuple[str, str]) -> None:
    name, _ = scratch

    async def scenario() -> None:
        await links.add_netns(name)
        with pytest.raises(NetworkFailure, match="cannot add address 2001:db8::5/64 to nope"):
            await links.add_address("nope", "2001:db8::5/64", netns=name)
        with pytest.raises(NetworkFailure, match="a device of that name exists"):
            await links.add_bridge("lo", netns=name)
        with pytest.raises(NetworkFailure, match="cannot list links in netns zzz-missing"):
            await links.links(netns="zzz-missing")

    asyncio.run(scenario())
