"""ZdbClient, the asyncio client the flist store and the node use, against a real server."""

from __future__ import annotations

import asyncio

import pytest

from tests.processes import free_port
from tests.zdb.conftest import ZdbProcess
from zgrid.zdb import ClientError, ZdbClient


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
        with pytest.raises(ClientError, match="connection to zdb lost"):
            for _ in range(50):  # the close reaches the reader soon after the stop
                await client.ping()
                await asyncio.sleep(0.05)
        await client.close()

    asyncio.run(scenario())


def test_client_refuses_an_unreachable_server(unused_tcp_port: int) -> None:
    async def scenario() -> None:
        with pytest.raises(ClientError, match="cannot connect to zdb"):
            await ZdbClient.connect("127.0.0.1", unused_tcp_port)

    asyncio.run(scenario())


@pytest.fixture
def unused_tcp_port() -> int:
    return free_port()
