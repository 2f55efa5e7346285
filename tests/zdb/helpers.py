"""Shared helpers of the Zero-DB tests: raw replies, a byte-level client, redis-cli, hashes."""

from __future__ import annotations

import hashlib
import itertools
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

import pytest
import redis

from tests.conftest import require_tool
from tests.zdb.conftest import ZdbProcess

__all__ = [
    "RawSocket",
    "ReplyError",
    "crc32c_zdb",
    "encode",
    "error_of",
    "fresh_namespace",
    "info_fields",
    "raw",
    "redis_cli",
    "secure_hash",
    "shared_server",
    "unique",
]

_counter = itertools.count()


def unique(prefix: str = "ns") -> str:
    """A namespace or key name no other test of this run uses."""
    return f"{prefix}{next(_counter)}"


def raw(client: redis.Redis) -> redis.Redis:
    """The same client without redis-py's reply callbacks: every reply arrives as sent."""
    client.response_callbacks.clear()
    return client


def secure_hash(nonce: bytes | str, password: str) -> str:
    text = nonce.decode() if isinstance(nonce, bytes) else nonce
    return hashlib.sha1(f"{text}:{password}".encode(), usedforsecurity=False).hexdigest()


def redis_cli(port: int, *args: str, stdin: bytes | None = None) -> str:
    """Run the real redis-cli against the server; its stdout, without the trailing newline."""
    done = subprocess.run(
        [require_tool("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *args],
        input=stdin,
        capture_output=True,
        timeout=20,
        check=True,
    )
    return done.stdout.decode().rstrip("\n")


def fresh_namespace(server: ZdbProcess, *settings: tuple[str, str]) -> tuple[str, redis.Redis]:
    """Create a namespace (with NSSET ``settings``) and a raw client that selected it."""
    name = unique()
    admin = raw(server.client())
    assert admin.execute_command("NSNEW", name) == b"OK"
    for prop, value in settings:
        assert admin.execute_command("NSSET", name, prop, value) == b"OK"
    admin.close()
    client = raw(server.client())
    password = dict(settings).get("password")
    if password:
        assert client.execute_command("SELECT", name, password) == b"OK"
    else:
        assert client.execute_command("SELECT", name) == b"OK"
    return name, client


def shared_server(
    name: str, *flags: str
) -> Callable[[pytest.TempPathFactory], Iterator[ZdbProcess]]:
    """A module-scoped fixture ``name``: one server with ``flags`` for the tests of a module."""

    @pytest.fixture(scope="module", name=name)
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZdbProcess]:
        server = ZdbProcess(Path(tmp_path_factory.mktemp("zdb")), *flags)
        server.start()
        yield server
        server.stop()

    return fixture


class ReplyError(str):
    """An error reply (its text, without the leading "-")."""

    __slots__ = ()


Reply = bytes | int | None | ReplyError | list["Reply"]


class RawSocket:
    """A byte-level client: send any bytes, read exact replies, see the server close."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, *args: bytes | str) -> bytes:
        """Send one request (a RESP array of bulk strings) and return the raw reply bytes."""
        self.send(encode(*args))
        return self.raw_reply()

    def call(self, *args: bytes | str) -> Reply:
        self.send(encode(*args))
        return self.reply()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buffer += chunk

    def raw_reply(self) -> bytes:
        """The bytes of exactly one complete reply."""
        while True:
            end = _reply_end(self.buffer, 0)
            if end is not None:
                reply, self.buffer = self.buffer[:end], self.buffer[end:]
                return reply
            self._fill()

    def reply(self) -> Reply:
        return parse(self.raw_reply())

    def array(self) -> list[Reply]:
        """The next reply, which must be an array."""
        reply = self.reply()
        assert isinstance(reply, list), reply
        return reply

    def expect_closed(self, timeout: float = 5.0) -> bytes:
        """Wait for the server to close the connection; return what arrived before."""
        deadline = time.monotonic() + timeout
        received = self.buffer
        self.buffer = b""
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return received
            except TimeoutError:
                break
            if not chunk:
                return received
            received += chunk
        raise AssertionError(f"the server kept the connection open; received {received!r}")


def encode(*args: bytes | str) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for argument in args:
        data = argument.encode() if isinstance(argument, str) else argument
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


def _line_end(data: bytes, start: int) -> int | None:
    end = data.find(b"\r\n", start)
    return None if end < 0 else end


def _reply_end(data: bytes, start: int) -> int | None:
    """Where the reply starting at ``start`` ends, or None if it is not complete yet."""
    end = _line_end(data, start)
    if end is None:
        return None
    kind = data[start : start + 1]
    if kind in (b"+", b"-", b":"):
        return end + 2
    count = int(data[start + 1 : end])
    if kind == b"$":
        if count < 0:
            return end + 2
        stop = end + 2 + count + 2
        return stop if len(data) >= stop else None
    if kind == b"*":
        position: int | None = end + 2
        for _ in range(max(count, 0)):
            assert position is not None
            position = _reply_end(data, position)
            if position is None:
                return None
        return position
    raise AssertionError(f"not a RESP reply: {data[start:]!r}")


def parse(data: bytes) -> Reply:
    value, _ = _parse(data, 0)
    return value


def _parse(data: bytes, start: int) -> tuple[Reply, int]:
    end = data.index(b"\r\n", start)
    kind, line = data[start : start + 1], data[start + 1 : end]
    if kind == b"+":
        return line, end + 2
    if kind == b"-":
        return ReplyError(line.decode()), end + 2
    if kind == b":":
        return int(line), end + 2
    count = int(line)
    if kind == b"$":
        if count < 0:
            return None, end + 2
        return data[end + 2 : end + 2 + count], end + 2 + count + 2
    if count < 0:
        return None, end + 2
    items: list[Reply] = []
    position = end + 2
    for _ in range(count):
        item, position = _parse(data, position)
        items.append(item)
    return items, position


def error_of(client: redis.Redis, *args: bytes | str | int) -> str:
    """The text of the error reply ``args`` get (fails if they get anything else)."""
    with pytest.raises(redis.ResponseError) as caught:
        client.execute_command(*args)
    return str(caught.value)


def info_fields(text: bytes) -> dict[str, str]:
    """The ``name: value`` lines of an INFO or NSINFO reply, in order."""
    fields: dict[str, str] = {}
    for line in text.decode().splitlines():
        if ": " in line:
            name, value = line.split(": ", 1)
            fields[name] = value
    return fields


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc32c_zdb(data: bytes) -> int:
    """0-db's checksum: CRC-32C, initial value 0, no final xor."""
    crc = 0
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc
