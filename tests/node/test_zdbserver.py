"""The node's Zero-DB server as real processes: start, reuse, restart, never two, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import free_port
from zgrid.node.errors import SystemCommandError
from zgrid.node.zdbserver import ZdbServer
from zgrid.zdb import ClientError, ZdbClient


@pytest.fixture
def node_zdb(tmp_path: Path) -> Iterator[ZdbServer]:
    server = ZdbServer(tmp_path / "zdb", port=free_port())
    try:
        yield server
    finally:
        asyncio.run(server.stop())
        assert server.pids() == []


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}").exists() else ""
        if stat and stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return
        time.sleep(0.05)


def test_start_is_authenticated_on_both_families_and_reused(node_zdb: ZdbServer) -> None:
    async def scenario() -> None:
        pid = await node_zdb.ensure_running()
        secret = node_zdb.root / "admin.secret"
        assert secret.stat().st_mode & 0o777 == 0o600
        assert node_zdb.password not in Path(f"/proc/{pid}/cmdline").read_text()
        assert int(node_zdb.pid_file.read_text()) == pid
        async with await node_zdb.admin() as admin:
            await admin.nsnew("kept")
        # Listening on :: takes IPv4 and IPv6 connections alike.
        for host in ("127.0.0.1", "::1"):
            async with await ZdbClient.connect(host, node_zdb.port) as client:
                assert await client.ping()
                with pytest.raises(ClientError, match="Permission denied"):
                    await client.nsnew("not-admin")  # no password: no admin rights
        assert await node_zdb.ensure_running() == pid
        again = ZdbServer(node_zdb.root, port=node_zdb.port)  # a restarted daemon
        assert await again.ensure_running() == pid
        assert again.password == node_zdb.password

    asyncio.run(scenario())


_DAEMON = """
import asyncio, os, sys
from pathlib import Path
from zgrid.node.errors import SystemCommandError
from zgrid.node.zdbserver import ZdbServer
server = ZdbServer(Path(sys.argv[1]), port=int(sys.argv[2]))
print(asyncio.run(server.ensure_running()), flush=True)
os.kill(os.getpid(), 9)
"""


def test_the_server_survives_a_daemon_kill_9(node_zdb: ZdbServer) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _DAEMON, str(node_zdb.root), str(node_zdb.port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    pid = int(done.stdout)
    assert node_zdb.pids() == [pid]
    assert asyncio.run(node_zdb.ensure_running()) == pid


def test_a_dead_or_mute_server_is_replaced_and_data_kept(node_zdb: ZdbServer) -> None:
    node_zdb.patience = 1.0

    async def scenario() -> None:
        first = await node_zdb.ensure_running()
        async with await node_zdb.admin() as admin:
            await admin.nsnew("kept")
        os.kill(first, signal.SIGKILL)
        await asyncio.to_thread(wait_gone, first)
        second = await node_zdb.ensure_running()
        assert second != first and node_zdb.pids() == [second]
        async with await node_zdb.admin() as admin:
            assert b"kept" in await admin.execute("NSLIST")
        os.kill(second, signal.SIGSTOP)  # alive but answering nothing
        third = await node_zdb.ensure_running()
        assert third != second and node_zdb.pids() == [third]
        assert not Path(f"/proc/{second}").exists() or second not in node_zdb.pids()

    asyncio.run(scenario())


def test_never_two_servers_on_one_root(node_zdb: ZdbServer) -> None:
    async def scenario() -> None:
        others = [ZdbServer(node_zdb.root, port=node_zdb.port) for _ in range(3)]
        pids = await asyncio.gather(*(server.ensure_running() for server in others))
        assert len(set(pids)) == 1 and node_zdb.pids() == [pids[0]]

    asyncio.run(scenario())


def test_stop_ends_it(node_zdb: ZdbServer) -> None:
    async def scenario() -> None:
        pid = await node_zdb.ensure_running()
        await node_zdb.stop()
        assert node_zdb.pids() == [] and not node_zdb.pid_file.exists()
        assert not Path(f"/proc/{pid}").exists() or pid not in node_zdb.pids()
        await node_zdb.stop()  # twice is fine

    asyncio.run(scenario())


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET6) as taken:
        taken.bind(("::", 0))
        taken.listen()
        server = ZdbServer(tmp_path / "zdb", port=taken.getsockname()[1])
        with pytest.raises(SystemCommandError, match="cannot listen on"):
            asyncio.run(server.ensure_running())
        assert server.pids() == []
