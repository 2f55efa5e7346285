"""WireGuard links under wireguard-go: started in one namespace and moved into another,
configured and reconfigured with `wg syncconf`, found again, made again when their
process died, and removed with their process. (Traffic between two nodes' links is
tested in tests/node/test_network.py.)"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import require_root, require_tool
from zgrid.identity import wireguard_public_key
from zgrid.node.errors import NetworkFailure
from zgrid.node.naming import unique_name
from zgrid.node.net import links, wireguard


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _pids(name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                words = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")  # noqa: SIM115
            except OSError:
                continue
            if words[0].endswith(b"wireguard-go") and name.encode() in words[1:]:
                found.append(int(entry))
    return found


@pytest.fixture
def spaces() -> Iterator[tuple[str, str, str, str]]:
    """Two scratch namespaces and two link names unique on the machine."""
    require_root()
    for tool in ("wireguard-go", "wg", "ip"):
        require_tool(tool)
    token = secrets.token_hex(8)
    names = (
        unique_name("ztw", token, "1"),
        unique_name("ztw", token, "2"),
        unique_name("zwt", token, "1"),
        unique_name("zwt", token, "2"),
    )
    try:
        yield names
    finally:
        for netns, link in ((names[0], names[2]), (names[1], names[3])):
            asyncio.run(wireguard.delete_interface(link, netns))
            asyncio.run(links.delete_netns(netns))


def test_public_key_is_what_wg_derives() -> None:
    require_tool("wg")
    for _ in range(5):
        private = _key()
        derived = subprocess.run(
            ["wg", "pubkey"], input=private, capture_output=True, text=True, check=True
        )
        assert wireguard_public_key(private) == derived.stdout.strip()


def test_a_link_is_made_found_again_reconfigured_and_removed_with_its_process(
    spaces: tuple[str, str, str, str],
) -> None:
    netns, _, name, _ = spaces

    async def scenario() -> None:
        await links.add_netns(netns)
        await wireguard.ensure_interface(name, netns)
        assert await wireguard.interface_alive(name, netns)
        assert await links.get_link(name) is None  # moved out of this namespace
        (pid,) = _pids(name)
        await wireguard.ensure_interface(name, netns)  # a repeat finds it
        assert _pids(name) == [pid]
        one, two = wireguard_public_key(_key()), wireguard_public_key(_key())
        peers = [
            wireguard.WireguardPeer(one, ("10.9.1.0/24", "10.9.3.0/24")),
            wireguard.WireguardPeer(two, ("10.9.2.0/24",)),
        ]
        await wireguard.configure(name, private_key=_key(), port=0, peers=peers)
        assert await wireguard.peer_keys(name) == {one, two}
        await wireguard.configure(name, private_key=_key(), port=0, peers=peers[1:])
        assert await wireguard.peer_keys(name) == {two}
        await wireguard.delete_interface(name, netns)
        assert not await wireguard.interface_alive(name, netns)
        assert not (wireguard.SOCKET_DIR / f"{name}.sock").exists()
        for _ in range(50):
            if not _pids(name):
                break
            await asyncio.sleep(0.1)
        assert _pids(name) == []

    asyncio.run(scenario())


def test_a_link_whose_process_died_is_made_again(spaces: tuple[str, str, str, str]) -> None:
    netns, _, name, _ = spaces

    async def scenario() -> None:
        await links.add_netns(netns)
        await wireguard.ensure_interface(name, netns)
        (pid,) = _pids(name)
        os.kill(pid, 9)
        for _ in range(50):
            if not await wireguard.interface_alive(name, netns):
                break
            await asyncio.sleep(0.1)
        await wireguard.ensure_interface(name, netns)
        assert await wireguard.interface_alive(name, netns)
        assert len(_pids(name)) == 1 and _pids(name) != [pid]

    asyncio.run(scenario())


def test_a_port_in_use_is_named(spaces: tuple[str, str, str, str]) -> None:
    netns, other_netns, name, other = spaces

    async def scenario() -> None:
        for space, link in ((netns, name), (other_netns, other)):
            await links.add_netns(space)
            await wireguard.ensure_interface(link, space)
        await wireguard.configure(name, private_key=_key(), port=51911, peers=[])
        assert await wireguard.listen_port(name) == 51911
        # Both sockets live in this (the node's) namespace: the second cannot have the port.
        with pytest.raises(NetworkFailure, match="listen port 51911 is already used"):
            await wireguard.configure(other, private_key=_key(), port=51911, peers=[])

    asyncio.run(scenario())
