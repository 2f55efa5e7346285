"""ZdbClient, the asyncio client the flist store and the node use, against a real server."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.processes import free_port
from tests.zdb.conftest import ZdbProcess
from zgrid.zdb import ClientError, ConnectionLost, ZdbClient


def test_client_round_trip(zdb: ZdbProcess) -> None:
    async def scenario() -> None:
        async with await ZdbClient.connect("127.0.0.1", zdb.port) as client:
            assert await client.ping()
            assert await client.set(b"key", b"value") == b"key"
            assert await client.set(b"key", b"value") is None  # unchanged
            assert await client.get(b"key") == b"value"
            assert await client.exists(b"key")
            await client.delete(b"key")
            assert await client.get(b"key") is None
            with pytest.raises(ClientError, match="Key not found"):
                await client.delete(b"key")
            await client.nsnew("blocks")
            await client.nsset("blocks", "password", "pw")
            await client.nsset("blocks", "public", "0")
        async with await ZdbClient.connect(
            "127.0.0.1", zdb.port, namespace="blocks", password="pw"
        ) as client:
            # Many requests in flight at once: replies are matched in order.
            keys = [f"block-{n}".encode() for n in range(200)]
            await asyncio.gather(*(client.set(key, key * 3) for key in keys))
            values = await asyncio.gather(*(client.get(key) for key in keys))
            assert values == [key * 3 for key in keys]
        with pytest.raises(ClientError, match="Namespace protected and private"):
            await ZdbClient.connect("127.0.0.1", zdb.port, namespace="blocks")

    asyncio.run(scenario())


def test_client_sees_a_lost_connection(zdb: ZdbProcess) -> None:
    async def scenario() -> None:
        client = await ZdbClient.connect("127.0.0.1", zdb.port)
        assert await client.ping()
        await asyncio.to_thread(zdb.stop)
        with pytest.raises(ConnectionLost, match=f"connection to zdb at 127.0.0.1:{zdb.port} lost"):
            for _ in range(50):  # the close reaches the reader soon after the stop
                await client.ping()
                await asyncio.sleep(0.05)
        await client.close()

    asyncio.run(scenario())


def test_calls_waiting_and_later_raise_connection_lost_naming_the_server(
    zdb: ZdbProcess, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        client = await ZdbClient.connect("127.0.0.1", zdb.port)
        waiting = asyncio.create_task(client.execute("WAIT", "SET", "60000"))
        assert await client.ping()  # the WAIT is in flight, its reply still to come
        await asyncio.to_thread(zdb.kill9)
        where = f"connection to zdb at 127.0.0.1:{zdb.port} lost"
        with pytest.raises(ConnectionLost, match=where):
            await asyncio.wait_for(waiting, 10)
        with pytest.raises(ConnectionLost, match=where):
            await client.ping()
        await client.close()
        with pytest.raises(ConnectionLost):
            await client.ping()

    with caplog.at_level(logging.WARNING, logger="zgrid.zdb.client"):
        asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records] == [
        f"connection to zdb at 127.0.0.1:{zdb.port} lost: closed by the server"
    ]


def test_a_reply_nobody_asked_for_ends_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(100)
            writer.write(b"+PONG\r\n+EXTRA\r\n")
            await reader.read(100)

        server = await asyncio.start_server(chatty, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = await ZdbClient.connect("127.0.0.1", port)
        with pytest.raises(ConnectionLost, match="a reply nobody asked for"):
            for _ in range(100):
                await client.ping()
                await asyncio.sleep(0.01)
        await client.close()
        server.close()

    asyncio.run(scenario())


def test_client_refuses_an_unreachable_server(unused_tcp_port: int) -> None:
    async def scenario() -> None:
        with pytest.raises(ClientError, match="cannot connect to zdb"):
            await ZdbClient.connect("127.0.0.1", unused_tcp_port)

    asyncio.run(scenario())


@pytest.fixture
def unused_tcp_port() -> int:
    return free_port()


@pytest.mark.parametrize(
    "reply", [b"%1\r\n~1\r\n$1\r\nk\r\n", b"*4294967295\r\n"], ids=["map-of-set", "huge-array"]
)
def test_a_reply_the_parser_cannot_build_ends_the_connection_cleanly(reply: bytes) -> None:
    # A store's address comes from an flist anyone may write: its server may be hostile.
    async def scenario() -> None:
        async def hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(100)
            writer.write(reply)
            await reader.read(100)

        server = await asyncio.start_server(hostile, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = await ZdbClient.connect("127.0.0.1", port)
        with pytest.raises(ConnectionLost, match="not a RESP reply"):
            await asyncio.wait_for(client.get(b"key"), 10)
        await client.close()
        server.close()

    asyncio.run(scenario())
