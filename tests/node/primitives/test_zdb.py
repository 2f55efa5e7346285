"""The zdb primitive against a real node Zero-DB server: namespaces as workloads say."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import free_port
from zgrid.node.errors import ProvisionError
from zgrid.node.primitives.base import Primitive, Provisioning, Updatable, WorkloadRef
from zgrid.node.primitives.zdb import ZdbPrimitive, namespace_info
from zgrid.node.zdbserver import ZdbServer
from zgrid.types import Deployment
from zgrid.zdb import ClientError, ZdbClient

MiB = 1 << 20
ADDRESSES = ["192.0.2.10", "2001:db8::10"]


def zdb_item(name: str = "store", **data: Any) -> Provisioning:
    doc: dict[str, Any] = {
        "version": 0,
        "twin_id": 7,
        "contract_id": 12,
        "signature_requirement": {
            "requests": [{"twin_id": 7, "required": True, "weight": 1}],
            "weight_required": 1,
            "signatures": [],
        },
        "workloads": [{"version": 0, "name": name, "type": "zdb", "data": {"size": MiB, **data}}],
    }
    deployment = Deployment.model_validate(doc)
    return Provisioning(WorkloadRef(7, 12, name), deployment.workloads[0], deployment)


@pytest.fixture
def zdb_primitive(tmp_path: Path) -> Iterator[ZdbPrimitive]:
    server = ZdbServer(tmp_path / "zdb", port=free_port())
    asyncio.run(server.ensure_running())
    try:
        yield ZdbPrimitive(server, addresses=lambda: list(ADDRESSES))
    finally:
        asyncio.run(server.stop())


async def connect(primitive: ZdbPrimitive, namespace: str, password: str | None) -> ZdbClient:
    return await ZdbClient.connect(
        "127.0.0.1", primitive.server.port, namespace=namespace, password=password
    )


async def info(primitive: ZdbPrimitive, name: str) -> dict[str, str]:
    async with await primitive.server.admin() as admin:
        return namespace_info(await admin.execute("NSINFO", name))


def test_a_private_namespace_needs_its_password(zdb_primitive: ZdbPrimitive) -> None:
    assert isinstance(zdb_primitive, Updatable)
    _: Primitive = zdb_primitive
    item = zdb_item(password="secret", size=MiB)

    async def scenario() -> None:
        result = await zdb_primitive.provision(item)
        assert result == {
            "namespace": "7-12-store",
            "ips": ADDRESSES,
            "port": zdb_primitive.server.port,
        }
        assert await zdb_primitive.provision(item) == result  # a repeat changes nothing
        with pytest.raises(ClientError, match="Namespace protected and private"):
            await connect(zdb_primitive, "7-12-store", None)
        with pytest.raises(ClientError, match="Access denied"):
            await connect(zdb_primitive, "7-12-store", "wrong")
        async with await connect(zdb_primitive, "7-12-store", "secret") as client:
            assert await client.set(b"k", b"v") == b"k"
            assert await client.get(b"k") == b"v"
            with pytest.raises(ClientError, match="No space left"):
                await client.set(b"big", b"x" * (MiB + 1))  # the size is the namespace's bound
        seen = await zdb_primitive.inspect(item.ref)
        assert seen.exists and "userkey" in seen.detail

    asyncio.run(scenario())


def test_public_reads_without_the_password_but_cannot_write(zdb_primitive: ZdbPrimitive) -> None:
    async def scenario() -> None:
        await zdb_primitive.provision(zdb_item(password="pw", public=True))
        async with await connect(zdb_primitive, "7-12-store", "pw") as client:
            await client.set(b"k", b"v")
        async with await connect(zdb_primitive, "7-12-store", None) as client:
            assert await client.get(b"k") == b"v"
            with pytest.raises(ClientError, match=r"read-only|denied"):
                await client.set(b"k2", b"v")

    asyncio.run(scenario())


def test_update_changes_size_password_public_but_not_mode(zdb_primitive: ZdbPrimitive) -> None:
    async def scenario() -> None:
        await zdb_primitive.provision(zdb_item(password="old", mode="seq"))
        async with await connect(zdb_primitive, "7-12-store", "old") as client:
            assert len(await client.set(b"", b"first") or b"") == 8  # seq mode: an 8-byte id
        updated = zdb_item(password="new", mode="seq", size=4 * MiB, public=True)
        await zdb_primitive.update(updated)
        now = await info(zdb_primitive, "7-12-store")
        assert now["data_limits_bytes"] == str(4 * MiB) and now["public"] == "yes"
        assert now["mode"] == "sequential"
        with pytest.raises(ClientError, match="Access denied"):
            await connect(zdb_primitive, "7-12-store", "old")
        async with await connect(zdb_primitive, "7-12-store", "new") as client:
            assert await client.execute("DBSIZE") == 1
        with pytest.raises(ProvisionError, match=r"mode of zdb namespace 7-12-store cannot change"):
            await zdb_primitive.update(zdb_item(password="new", mode="user", size=4 * MiB))
        with pytest.raises(ProvisionError, match="at most 63 bytes"):
            await zdb_primitive.update(zdb_item(password="p" * 64, mode="seq"))

    asyncio.run(scenario())


def test_deprovision_present_and_a_half_made_namespace(zdb_primitive: ZdbPrimitive) -> None:
    async def scenario() -> None:
        async with await zdb_primitive.server.admin() as admin:
            await admin.nsnew("7-12-half")  # a crash right after NSNEW
            await admin.nsnew("logs-7-12-web")  # the log channel's: not a zdb workload
        half = zdb_item("half", mode="seq", password="pw")
        await zdb_primitive.provision(half)
        assert (await info(zdb_primitive, "7-12-half"))["mode"] == "sequential"
        assert (await info(zdb_primitive, "7-12-half"))["password"] == "yes"
        await zdb_primitive.provision(zdb_item("other"))
        assert await zdb_primitive.present() == {"7-12-half", "7-12-other"}
        await zdb_primitive.deprovision(half.ref)
        await zdb_primitive.deprovision(half.ref)
        assert not (await zdb_primitive.inspect(half.ref)).exists
        assert await zdb_primitive.present() == {"7-12-other"}

    asyncio.run(scenario())


def test_a_restarted_server_keeps_the_namespace(zdb_primitive: ZdbPrimitive) -> None:
    item = zdb_item(password="secret")

    async def scenario() -> None:
        await zdb_primitive.provision(item)
        async with await connect(zdb_primitive, "7-12-store", "secret") as client:
            await client.set(b"k", b"kept")
        for pid in zdb_primitive.server.pids():
            os.kill(pid, signal.SIGKILL)
        # The primitive brings the server back itself when it finds it gone.
        assert await zdb_primitive.present() == {"7-12-store"}
        with pytest.raises(ClientError, match="Namespace protected and private"):
            await connect(zdb_primitive, "7-12-store", None)
        async with await connect(zdb_primitive, "7-12-store", "secret") as client:
            assert await client.get(b"k") == b"kept"
        await zdb_primitive.provision(item)

    asyncio.run(scenario())
