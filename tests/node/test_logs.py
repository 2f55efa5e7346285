"""The log channel on a real node Zero-DB: live, private, rotated, resumed, bounded."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import free_port
from zgrid.node.logs import ENTRY_MAX, LogAccess, LogChannel, follow_logs, read_tail
from zgrid.node.primitives.zdb import namespace_info
from zgrid.node.zdbserver import ZdbServer
from zgrid.zdb import ClientError, ZdbClient


@pytest.fixture
def log_server(tmp_path: Path) -> Iterator[ZdbServer]:
    server = ZdbServer(tmp_path / "zdb", port=free_port())
    asyncio.run(server.ensure_running())
    try:
        yield server
    finally:
        asyncio.run(server.stop())


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as file:
        file.write(data)


async def read_until(
    access: LogAccess, marker: bytes, *, timeout: float = 10, follow: bool = True
) -> bytes:
    """Everything the log yields until ``marker`` is in it."""
    seen = b""

    async def reading() -> None:
        nonlocal seen
        async for chunk in follow_logs(
            "127.0.0.1", access.port, access.namespace, access.password, follow=follow
        ):
            seen += chunk
            if marker in seen:
                return

    await asyncio.wait_for(reading(), timeout)
    return seen


async def read_all(access: LogAccess) -> bytes:
    chunks = [
        chunk
        async for chunk in follow_logs(
            "127.0.0.1", access.port, access.namespace, access.password, follow=False
        )
    ]
    return b"".join(chunks)


def test_output_reaches_a_live_reader(log_server: ZdbServer, tmp_path: Path) -> None:
    source = tmp_path / "web.log"

    async def scenario() -> None:
        channel = LogChannel(log_server, tmp_path / "logs")
        try:
            access = await channel.open("7-12-web", source)
            assert access == await channel.open("7-12-web", source)  # a repeat: the same
            secret = tmp_path / "logs" / "7-12-web.password"
            assert secret.stat().st_mode & 0o777 == 0o600
            assert secret.read_text().strip() == access.password
            seen = b""
            arrived = asyncio.Event()

            async def reader() -> None:
                nonlocal seen
                async for chunk in follow_logs(
                    "127.0.0.1", access.port, access.namespace, access.password
                ):
                    seen += chunk
                    arrived.set()

            task = asyncio.create_task(reader())
            await asyncio.sleep(0.3)  # the reader waits on an empty log
            began = time.monotonic()
            append(source, b"hello\n")
            await asyncio.wait_for(arrived.wait(), 5)
            latency = time.monotonic() - began
            arrived.clear()
            append(source, b"world\n")
            await asyncio.wait_for(arrived.wait(), 5)
            assert seen == b"hello\nworld\n"
            assert latency < 1.5, latency
            print(f"log latency (file append -> reader): {latency * 1000:.0f} ms")
            task.cancel()
            assert await channel.present() == {"7-12-web"}
            assert channel.following() == {"7-12-web"}
        finally:
            await channel.aclose()

    asyncio.run(scenario())


def test_a_rotated_source_keeps_being_followed(log_server: ZdbServer, tmp_path: Path) -> None:
    source = tmp_path / "web.log"

    async def scenario() -> None:
        channel = LogChannel(log_server, tmp_path / "logs")
        try:
            access = await channel.open("7-12-web", source)
            append(source, b"before\n")
            await read_until(access, b"before\n")
            with source.open("ab") as old:
                os.rename(source, source.with_name("web.log.1"))
                await asyncio.sleep(0.3)
                old.write(b"late\n")  # still written to the old file after the rename
            await read_until(access, b"late\n")
            append(source, b"after\n")
            assert await read_until(access, b"after\n") == b"before\nlate\nafter\n"
            assert read_tail(source, 12) == b"before\nlate\nafter\n"[-12:]
        finally:
            await channel.aclose()

    asyncio.run(scenario())


def test_only_the_password_holder_reads(log_server: ZdbServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        channel = LogChannel(log_server, tmp_path / "logs")
        try:
            mine = await channel.open("7-12-web", tmp_path / "web.log")
            theirs = await channel.open("8-13-api", tmp_path / "api.log")
            assert mine.password != theirs.password
            with pytest.raises(ClientError, match="Namespace protected and private"):
                await ZdbClient.connect("127.0.0.1", mine.port, namespace=mine.namespace)
            for wrong in ("wrong", theirs.password):
                with pytest.raises(ClientError, match="Access denied"):
                    await read_all(LogAccess(mine.namespace, wrong, mine.port))
            async with await log_server.admin() as admin:
                info = namespace_info(await admin.execute("NSINFO", mine.namespace))
            assert info["public"] == "no" and info["mode"] == "sequential"
            assert int(info["data_limits_bytes"]) == 16 << 20
        finally:
            await channel.aclose()

    asyncio.run(scenario())


def test_a_restarted_channel_neither_repeats_nor_loses(
    log_server: ZdbServer, tmp_path: Path
) -> None:
    source = tmp_path / "web.log"
    lines = [f"line {n}\n".encode() for n in range(200)]

    async def scenario() -> None:
        channel = LogChannel(log_server, tmp_path / "logs")
        access = await channel.open("7-12-web", source)
        for line in lines[:50]:
            append(source, line)
        await read_until(access, lines[49])
        await channel.aclose()  # the daemon stops (or dies)
        for line in lines[50:100]:
            append(source, line)  # the machine keeps writing meanwhile
        # The saved position lost: the namespace's last entry still says where it was.
        (tmp_path / "logs" / "7-12-web.position").unlink()
        channel = LogChannel(log_server, tmp_path / "logs")
        try:
            assert await channel.open("7-12-web", source) == access
            await read_until(access, lines[99])
            await channel.aclose()
            for line in lines[100:]:
                append(source, line)
            channel = LogChannel(log_server, tmp_path / "logs")
            await channel.open("7-12-web", source)
            await read_until(access, lines[-1])
            assert await read_all(access) == b"".join(lines)
        finally:
            await channel.aclose()

    asyncio.run(scenario())


def test_the_bound_holds_and_readers_go_on(log_server: ZdbServer, tmp_path: Path) -> None:
    source = tmp_path / "web.log"
    bound = 4 * ENTRY_MAX
    output = b"".join(f"{n:07d} {'x' * 40}\n".encode() for n in range(30000))  # 1.4 MiB

    async def scenario() -> None:
        channel = LogChannel(log_server, tmp_path / "logs", max_bytes=bound)
        try:
            access = await channel.open("7-12-web", source)
            live = asyncio.create_task(read_until(access, output[-49:], timeout=30))
            await asyncio.sleep(0.3)
            append(source, output)
            seen = await live
            assert b"bytes of earlier output were dropped" in seen
            assert seen.endswith(output[-49:])
            async with await log_server.admin() as admin:
                info = namespace_info(await admin.execute("NSINFO", access.namespace))
            assert int(info["data_size_bytes"]) <= bound
            kept = await read_all(access)
            assert kept.startswith(b"\n[zgrid: the log holds at most")
            notice_end = kept.index(b"]\n") + 2
            assert output.endswith(kept[notice_end:])  # what is kept is the newest output
        finally:
            await channel.aclose()

    asyncio.run(scenario())


def test_close_removes_the_namespace_and_its_secret(log_server: ZdbServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        channel = LogChannel(log_server, tmp_path / "logs")
        try:
            first = await channel.open("7-12-web", tmp_path / "web.log")
            await channel.close("7-12-web")
            await channel.close("7-12-web")
            assert await channel.present() == set() and channel.following() == set()
            assert list((tmp_path / "logs").iterdir()) == []
            with pytest.raises(ClientError, match="Namespace not found"):
                await read_all(first)
            again = await channel.open("7-12-web", tmp_path / "web.log")
            assert again.password != first.password
        finally:
            await channel.aclose()

    asyncio.run(scenario())


def test_the_channel_rides_out_a_server_restart(log_server: ZdbServer, tmp_path: Path) -> None:
    source = tmp_path / "web.log"

    async def scenario() -> None:
        channel = LogChannel(log_server, tmp_path / "logs")
        try:
            access = await channel.open("7-12-web", source)
            append(source, b"one\n")
            await read_until(access, b"one\n")
            for pid in log_server.pids():
                os.kill(pid, signal.SIGKILL)
            append(source, b"two\n")  # written while the server is down
            await asyncio.sleep(0.5)
            await log_server.ensure_running()  # as the daemon's supervision does
            append(source, b"three\n")
            assert await read_until(access, b"three\n", timeout=20) == b"one\ntwo\nthree\n"
        finally:
            await channel.aclose()

    asyncio.run(scenario())
