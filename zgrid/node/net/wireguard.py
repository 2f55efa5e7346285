"""WireGuard interfaces run by ``wireguard-go`` and configured with ``wg``.

``wireguard-go`` is started in the node's own namespace, where its UDP socket stays (the
other nodes reach it at the node's address), and its TUN link is then moved into the
network's namespace, where the routes to the other nodes' subnets point at it. It runs
detached: a restarted node daemon finds it again by its control socket
(``/var/run/wireguard/<name>.sock``, which is why link names are unique on the machine),
and deleting the link ends it. Peers are applied with ``wg syncconf``, which changes only
what differs, so an update never drops a live session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from zgrid.node.errors import NetworkFailure, SystemCommandError
from zgrid.node.net import links
from zgrid.node.system import run_command

__all__ = [
    "SOCKET_DIR",
    "WireguardPeer",
    "configure",
    "delete_interface",
    "ensure_interface",
    "interface_alive",
    "listen_port",
    "peer_keys",
]

SOCKET_DIR = Path("/var/run/wireguard")
KEEPALIVE = 25  # seconds: keeps a NAT's mapping open and a peer's endpoint learned
_START_TIMEOUT = 10.0
_START_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class WireguardPeer:
    public_key: str
    allowed_ips: tuple[str, ...]
    endpoint: str = ""  # host:port or [v6]:port; empty: the peer makes the first contact


def _socket(name: str) -> Path:
    return SOCKET_DIR / f"{name}.sock"


async def interface_alive(name: str, netns: str) -> bool:
    """Whether ``name`` is up in ``netns`` with its wireguard-go answering."""
    if not await links.netns_exists(netns):
        return False
    link = await links.get_link(name, netns=netns)
    if link is None or not _socket(name).exists():
        return False
    return await listen_port(name) is not None


async def ensure_interface(name: str, netns: str) -> None:
    """The interface ``name`` in ``netns``, started (or found) with its wireguard-go."""
    if await interface_alive(name, netns):
        return
    for attempt in range(_START_ATTEMPTS):
        await links.delete_link(name, netns=netns)  # a link whose process died is remade
        if await links.get_link(name) is None:
            await _start(name)
        try:
            await links.move_link(name, netns)
            await links.set_up(name, netns=netns)
            return
        except NetworkFailure:
            # Its process ended meanwhile (the link went with it): start it once more.
            if attempt + 1 == _START_ATTEMPTS or await links.get_link(name, netns=netns):
                raise


async def _start(name: str) -> None:
    """Start wireguard-go for ``name`` and wait until it answers on its control socket.

    The parent makes the link and the socket, hands them to a child and exits; the child
    looks its link up by name while it starts, so the link is moved only once the child
    answers (moved earlier, the child does not find it and exits).
    """
    _socket(name).unlink(missing_ok=True)
    try:
        # Without LOG_LEVEL the child holds none of our pipes: this returns once the
        # parent has exited.
        await run_command(["wireguard-go", name], timeout=_START_TIMEOUT)
    except SystemCommandError as exc:
        raise NetworkFailure(f"cannot start wireguard-go for {name}: {exc}") from exc
    deadline = time.monotonic() + _START_TIMEOUT
    while not _socket(name).exists() or await listen_port(name) is None:
        if time.monotonic() > deadline:
            raise NetworkFailure(f"wireguard-go for {name} does not answer on its socket")
        await asyncio.sleep(0.02)


def _config(private_key: str, port: int, peers: Sequence[WireguardPeer]) -> str:
    lines = ["[Interface]", f"PrivateKey = {private_key}", f"ListenPort = {port}"]
    for peer in peers:
        lines += ["", "[Peer]", f"PublicKey = {peer.public_key}"]
        lines.append(f"AllowedIPs = {', '.join(peer.allowed_ips)}")
        if peer.endpoint:
            lines.append(f"Endpoint = {peer.endpoint}")
            lines.append(f"PersistentKeepalive = {KEEPALIVE}")
    return "\n".join(lines) + "\n"


async def configure(
    name: str, *, private_key: str, port: int, peers: Sequence[WireguardPeer]
) -> None:
    """Make the interface's key, port and peers exactly these (others are removed)."""
    text = _config(private_key, port, peers)
    try:
        await run_command(["wg", "syncconf", name, "/dev/stdin"], input=text.encode(), timeout=30)
    except SystemCommandError as exc:
        if "Address already in use" in exc.output or "Address in use" in exc.output:
            raise NetworkFailure(
                f"the WireGuard listen port {port} is already used on this node"
            ) from exc
        raise NetworkFailure(f"cannot configure WireGuard interface {name}: {exc}") from exc


async def listen_port(name: str) -> int | None:
    """The port the interface listens on; None when its wireguard-go does not answer."""
    try:
        out = await run_command(["wg", "show", name, "listen-port"], timeout=10)
    except SystemCommandError:
        return None
    return int(out.strip()) if out.strip().isdigit() else None


async def peer_keys(name: str) -> set[str]:
    """The public keys of the interface's peers."""
    try:
        out = await run_command(["wg", "show", name, "peers"], timeout=10)
    except SystemCommandError:
        return set()
    return set(out.split())


async def delete_interface(name: str, netns: str) -> None:
    """Remove the link (its wireguard-go ends with it) and a control socket left behind."""
    if await links.netns_exists(netns):
        await links.delete_link(name, netns=netns)
    await links.delete_link(name)  # not moved yet when a crash came between the two steps
    deadline = time.monotonic() + 5
    while _socket(name).exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    _socket(name).unlink(missing_ok=True)
