"""ZdbClient: an asyncio client for 0-db compatible servers (zgrid's or the original).

Requests are pipelined: any number of coroutines may call it at once; replies are
matched to requests in order. Error replies raise ClientError with the server's text;
once the connection ends (closed, reset, a reply nobody asked for), the calls waiting
and every later call raise ConnectionLost naming the server, and the loss is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import hiredis

from zgrid.zdb.errors import ClientError, ConnectionLost

__all__ = ["ZdbClient"]

log = logging.getLogger(__name__)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _encode(args: tuple[bytes | str | int, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for argument in args:
        raw = (
            argument.encode()
            if isinstance(argument, str)
            else b"%d" % argument
            if isinstance(argument, int)
            else argument
        )
        parts.append(b"$%d\r\n%b\r\n" % (len(raw), raw))
    return b"".join(parts)


class ZdbClient:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        address: str = "zdb",
    ) -> None:
        self.address = address  # named in errors: "zdb at 127.0.0.1:9900"
        self._reader = reader
        self._writer = writer
        self._lost: ConnectionLost | None = None
        self._closing = False
        self._parser = hiredis.Reader()
        self._pending: asyncio.Queue[asyncio.Future[Any]] = asyncio.Queue()
        self._task = asyncio.create_task(self._read_replies())

    @classmethod
    async def connect(
        cls,
        host: str = "127.0.0.1",
        port: int = 9900,
        *,
        unix_socket: Path | None = None,
        namespace: str | None = None,
        password: str | None = None,
    ) -> ZdbClient:
        address = f"unix://{unix_socket}" if unix_socket else _host_port(host, port)
        try:
            if unix_socket is not None:
                reader, writer = await asyncio.open_unix_connection(str(unix_socket))
            else:
                reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            raise ClientError(f"cannot connect to zdb at {address}: {exc.strerror or exc}") from exc
        client = cls(reader, writer, address=address)
        if namespace is not None:
            try:
                await client.select(namespace, password)
            except BaseException:
                await client.close()  # nobody else holds it: do not leak the socket
                raise
        return client

    async def _read_replies(self) -> None:
        reason = "closed by the server"
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                self._parser.feed(data)
                while (reply := self._parser.gets()) is not False:
                    if self._pending.empty():
                        reason = "a reply nobody asked for"
                        return
                    future = self._pending.get_nowait()
                    if not future.done():
                        future.set_result(reply)
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
        except hiredis.ProtocolError as exc:
            reason = f"not a RESP reply ({exc})"
        except (TypeError, ValueError, MemoryError, OverflowError) as exc:
            # hiredis builds RESP3 maps (keys must hash) and arrays of the declared size.
            reason = f"not a RESP reply zgrid can read ({type(exc).__name__}: {exc})"
        finally:
            self._lose(reason)

    def _lose(self, reason: str) -> None:
        """Fail every waiting call and every later one with ConnectionLost."""
        if self._lost is None:
            self._lost = ConnectionLost(f"connection to zdb at {self.address} lost: {reason}")
            if not self._closing:
                log.warning("%s", self._lost)
        while not self._pending.empty():
            future = self._pending.get_nowait()
            if not future.done():
                future.set_exception(ConnectionLost(str(self._lost)))

    async def execute(self, *args: bytes | str | int) -> Any:
        """Send one command and return its reply (bytes, int, list or None)."""
        if self._lost is not None:
            raise ConnectionLost(str(self._lost))
        if self._closing:
            raise ConnectionLost(f"connection to zdb at {self.address} is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.put_nowait(future)
        self._writer.write(_encode(args))
        reply = await future
        if isinstance(reply, hiredis.ReplyError):
            raise ClientError(str(reply))
        return reply

    async def close(self) -> None:
        self._closing = True  # a loss from here on is ours, not news worth a warning
        self._writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await self._writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def __aenter__(self) -> ZdbClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # -- commands -------------------------------------------------------------------------

    async def ping(self) -> bool:
        return bool(await self.execute("PING") == b"PONG")

    async def select(self, namespace: str, password: str | None = None) -> None:
        await (
            self.execute("SELECT", namespace)
            if password is None
            else self.execute("SELECT", namespace, password)
        )

    async def set(self, key: bytes, value: bytes) -> bytes | None:
        """Store ``value``; returns the key (seq mode: the new 8-byte id), None if unchanged."""
        result: bytes | None = await self.execute("SET", key, value)
        return result

    async def get(self, key: bytes) -> bytes | None:
        result: bytes | None = await self.execute("GET", key)
        return result

    async def exists(self, key: bytes) -> bool:
        return bool(await self.execute("EXISTS", key))

    async def delete(self, key: bytes) -> None:
        await self.execute("DEL", key)

    async def nsnew(self, namespace: str) -> None:
        await self.execute("NSNEW", namespace)

    async def nsset(self, namespace: str, prop: str, value: str) -> None:
        await self.execute("NSSET", namespace, prop, value)
