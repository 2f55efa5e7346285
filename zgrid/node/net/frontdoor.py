"""The gateway node's front door: HAProxy on :443 and Caddy behind it, configured from one
routes file.

``routes.json`` in the directory is the truth: every change is written there first, then
the full configuration is pushed to both proxies, and :meth:`FrontDoor.ensure` after a
crash starts whichever proxy is gone with every route. Both proxies run detached, so they
outlive the node daemon; a new FrontDoor on the same directory finds them by their
sockets there (Caddy's admin API, HAProxy's master CLI).

Connections on :443 are sorted by SNI: passthrough routes' raw TLS goes to their backends,
everything else to Caddy on a loopback port, which terminates TLS and proxies HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import ipaddress
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from zgrid.node.errors import GatewayError, HostTaken, NodeConfigError, NodeError
from zgrid.node.net import links
from zgrid.node.net.caddy import Caddy
from zgrid.node.net.haproxy import (
    FORWARD_DIR,
    HAProxy,
    default_maxconn,
    forward_socket,
    haproxy_config,
)
from zgrid.node.net.proxyroute import ROUTES_MAX, ProxyRoute, RouteFile, TlsIssuer

__all__ = ["INTERNAL_PORT", "FrontDoor", "ProxyRoute", "TlsIssuer"]

INTERNAL_PORT = 8443  # Caddy's HTTPS on 127.0.0.1 of the namespace, fed by HAProxy
_UNIX_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL
_LONGEST_SOCKET = "haproxy.sock"


def _addresses(listen: Sequence[str]) -> tuple[str, ...]:
    if not listen:
        raise NodeConfigError("the front door needs at least one address to listen on")
    found = []
    for text in listen:
        try:
            found.append(str(ipaddress.ip_address(text)))
        except ValueError as exc:
            raise NodeConfigError(f"the front door listens on IP addresses, got {text!r}") from exc
    if len(set(found)) != len(found):
        raise NodeConfigError(f"the front door's listen addresses repeat: {list(listen)}")
    return tuple(found)


class FrontDoor:
    """Caddy and HAProxy serving the routes kept in ``directory/routes.json``.

    ``listen``: the public IPs to bind :443 and :80 on; ``netns``: the named namespace
    both proxies run in (None: this process's own).
    """

    def __init__(
        self,
        directory: Path,
        *,
        listen: Sequence[str],
        tls: TlsIssuer,
        netns: str | None = None,
        internal_port: int = INTERNAL_PORT,
        caddy_binary: str = "caddy",
        haproxy_binary: str = "haproxy",
    ) -> None:
        self.directory = Path(directory).absolute()
        self.listen = _addresses(listen)
        self.tls = tls
        self.netns = netns
        if not 0 < internal_port < 65536 or internal_port in (80, 443):
            raise NodeConfigError(
                f"Caddy's internal port must be a free TCP port, not {internal_port}"
            )
        self.internal_port = internal_port
        if len(str(self.directory / _LONGEST_SOCKET)) > _UNIX_PATH_MAX:
            raise NodeConfigError(
                f"the front door's directory {self.directory} is too long for its sockets "
                f"(at most {_UNIX_PATH_MAX - len(_LONGEST_SOCKET) - 1} characters)"
            )
        self._routes = RouteFile(self.directory / "routes.json")
        self._caddy = Caddy(self.directory, netns=netns, binary=caddy_binary)
        self._haproxy = HAProxy(self.directory, netns=netns, binary=haproxy_binary)
        self._lock = asyncio.Lock()

    # --- the pids, for whoever watches the processes ------------------------------------

    def caddy_pid(self) -> int | None:
        return self._caddy.pid()

    def haproxy_pid(self) -> int | None:
        """The HAProxy master's pid."""
        return self._haproxy.pid()

    # --- public operations --------------------------------------------------------------

    async def ensure(self) -> None:
        """Start Caddy and HAProxy unless they run, every route configured in both."""
        async with self._locked():
            await self._apply(self._routes.load())

    async def set_route(self, route: ProxyRoute) -> None:
        """Add ``route``, or replace the route of the same id."""
        async with self._locked():
            before = self._routes.load()
            kept = [known for known in before if known.id != route.id]
            for other in kept:
                if other.host == route.host:
                    raise HostTaken(route.host, other.id, route.id)
            if len(kept) >= ROUTES_MAX:
                raise GatewayError(f"the gateway serves {ROUTES_MAX} routes already")
            after = [*kept, route]
            self._routes.save(after)
            try:
                await self._apply(after)
            except NodeError:
                # The route is refused as a whole: the file says again what is served.
                self._routes.save(before)
                if await self._alive():
                    with contextlib.suppress(NodeError):
                        await self._apply(before)
                raise

    async def remove_route(self, route_id: str) -> None:
        """Remove the route of that id; one that is not there is not an error."""
        async with self._locked():
            before = self._routes.load()
            after = [route for route in before if route.id != route_id]
            if len(after) == len(before):
                return
            # Kept removed even if a proxy fails now: the next ensure() pushes it.
            self._routes.save(after)
            await self._apply(after)

    async def routes(self) -> list[ProxyRoute]:
        """Every route, sorted by id."""
        return self._routes.load()

    async def alive(self) -> bool:
        """Whether both proxies run and answer on their sockets."""
        return await self._alive()

    async def stop(self) -> None:
        """Stop both proxies and remove their sockets and pid files (the routes stay)."""
        async with self._locked():
            await self._haproxy.stop()
            await self._caddy.stop()

    # --- inside ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        """Held across a change, by this object and by any other process on the directory."""
        async with self._lock:
            try:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(self.directory / "frontdoor.lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise GatewayError(f"cannot use the front door's directory: {exc}") from exc
            try:
                await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the lock

    def _as_caddy_sees(self, route: ProxyRoute) -> ProxyRoute:
        """A route on a private network goes, for Caddy, to HAProxy's socket for it."""
        if not route.netns or route.tls_passthrough:
            return route
        socket = forward_socket(self.directory, route)
        return dataclasses.replace(route, backends=(f"unix/{socket}",), netns="")

    async def _alive(self) -> bool:
        return await self._caddy.answering() and await self._haproxy.answering()

    async def _apply(self, routes: list[ProxyRoute]) -> None:
        if self.netns is not None and not await links.netns_exists(self.netns):
            raise GatewayError(f"the front door's netns {self.netns} does not exist")
        FORWARD_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        caddy = self._caddy.config(
            [self._as_caddy_sees(route) for route in routes],
            listen=self.listen,
            issuer=self.tls,
            internal_port=self.internal_port,
        )
        if await self._caddy.answering():
            await self._caddy.load(caddy)
        else:
            ports = [(address, 80) for address in self.listen]
            await self._caddy.start(caddy, [*ports, ("127.0.0.1", self.internal_port)])
        haproxy = haproxy_config(
            routes,
            listen=self.listen,
            caddy_port=self.internal_port,
            maxconn=default_maxconn(),
            directory=self.directory,
        )
        if await self._haproxy.answering():
            await self._haproxy.update(haproxy)
        else:
            await self._haproxy.start(haproxy, [(address, 443) for address in self.listen])
