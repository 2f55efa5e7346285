"""Serving an ASGI app the way every zgrid server does.

The socket is bound before uvicorn starts, so "address in use" or "no such address"
is a ServeError with one clear line, never uvicorn's own exit. Connections are
bounded: at most ``max_connections`` at once (503 beyond), request headers must
arrive within ``header_timeout`` of the connection opening or of the previous
response (slowloris and idle connections are closed), and at most
``max_header_bytes`` of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from zgrid.web.errors import ServeError

__all__ = ["AppServer", "ConnectionLimits", "bind_socket", "listen_address"]

_ALL_ADDRESSES = ("", "::", "0.0.0.0")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLimits:
    """Bounds on what clients may hold open; the defaults suit a public server."""

    max_connections: int = 1024
    header_timeout: float = 10.0
    keep_alive: float = 5.0
    max_header_bytes: int = 64 * 1024
    graceful_shutdown: int = 5


def listen_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; '' or '::' is every address of both families."""
    where = listen_address(host or "::", port)
    try:
        if host in _ALL_ADDRESSES and socket.has_dualstack_ipv6():
            sock = socket.create_server(
                ("::", port), family=socket.AF_INET6, dualstack_ipv6=True, reuse_port=False
            )
        elif host in _ALL_ADDRESSES:
            sock = socket.create_server(("0.0.0.0", port))
        else:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            family, _, _, _, address = infos[0]
            sock = socket.create_server(address[:2], family=family)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {where}: unknown address ({exc.strerror})") from exc
    except OSError as exc:
        # create_server appends "(while attempting to bind ...)" to strerror: say only why.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ServeError(f"cannot listen on {where}: {reason}") from exc
    sock.set_inheritable(True)
    return sock


def _no_delay(transport: asyncio.BaseTransport) -> None:
    """Send each write at once. A response goes out as two writes (head, then body); with
    Nagle's algorithm the body waits for the client to acknowledge the head, which a client
    delays by up to 40 ms, so every request after the first on a kept-alive connection
    took 40 ms more."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _guarded_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    class GuardedProtocol(HttpToolsProtocol):
        """uvicorn's protocol with a deadline for each request's headers and a cap on them."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_deadline: asyncio.TimerHandle | None = None
            self._header_bytes = 0
            self._header_tail = b""

        def _arm(self) -> None:
            self._disarm()
            self._header_bytes = 0
            self._header_tail = b""
            self._header_deadline = self.loop.call_later(limits.header_timeout, self._expire)

        def _disarm(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _expire(self) -> None:
            self._header_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            _no_delay(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._header_deadline is not None:
                # Only the bytes up to the end of the headers count: the same read often
                # carries the start of the body, which is not the headers' to answer for.
                tail = self._header_tail
                end = (tail + data).find(b"\r\n\r\n")
                self._header_tail = (tail + data)[-3:]
                self._header_bytes += len(data) if end < 0 else max(0, end - len(tail))
                if self._header_bytes > limits.max_header_bytes:
                    self._disarm()
                    self.transport.write(
                        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                        b"content-length: 0\r\nconnection: close\r\n\r\n"
                    )
                    self.transport.close()
                    return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

    return GuardedProtocol


class AppServer:
    """One ASGI app on one bound socket: ``bind()`` (may raise ServeError), then ``serve()``."""

    def __init__(
        self, app: Any, *, host: str, port: int, limits: ConnectionLimits | None = None
    ) -> None:
        self.host = host
        self.limits = limits or ConnectionLimits()
        self._requested_port = port
        self._socket: socket.socket | None = None
        config = uvicorn.Config(
            app,
            http=_guarded_protocol(self.limits),
            log_level="warning",
            access_log=False,
            lifespan="off",
            limit_concurrency=self.limits.max_connections,
            timeout_keep_alive=int(max(1, self.limits.keep_alive)),
            timeout_graceful_shutdown=self.limits.graceful_shutdown,
        )
        # uvicorn catches SIGINT/SIGTERM while it serves (in the main thread), stops, and
        # raises them again after its shutdown: callers see a normal signal.
        self._server = uvicorn.Server(config)

    def bind(self) -> None:
        if self._socket is None:
            self._socket = bind_socket(self.host, self._requested_port)

    @property
    def port(self) -> int:
        """The port listened on (the real one when 0 was asked for)."""
        if self._socket is None:
            return self._requested_port
        return int(self._socket.getsockname()[1])

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    @property
    def stopping(self) -> bool:
        return bool(self._server.should_exit)

    def stop(self) -> None:
        self._server.should_exit = True

    async def serve(self) -> None:
        """Serve until ``stop()``; the socket is closed when this returns."""
        self.bind()
        assert self._socket is not None
        try:
            await self._server.serve(sockets=[self._socket])
        finally:
            with contextlib.suppress(OSError):
                self._socket.close()

    async def wait_started(self, serving: asyncio.Task[None]) -> bool:
        """Wait until the server accepts connections; False when ``serving`` ended first."""
        while not self._server.started and not serving.done():
            await asyncio.sleep(0.01)
        return bool(self._server.started)
