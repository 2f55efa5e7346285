"""Hostile load: huge replies, clients that never read, too many clients, idle ones."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.zdb.conftest import ZdbProcess
from tests.zdb.helpers import RawSocket, ReplyError, encode

MIB = 1024 * 1024
TOO_MANY = b"-Too many clients connected, try again later\r\n"


def rss(server: ZdbProcess) -> int:
    """The server's resident memory in bytes, from /proc."""
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@contextmanager
def watching(server: ZdbProcess) -> Iterator[dict[str, float]]:
    """While the block runs: the server's peak RSS, and the slowest PING another client saw."""
    seen = {"rss": float(rss(server)), "ping": 0.0}
    done = threading.Event()

    def watch() -> None:
        with RawSocket(server.port, timeout=30) as sock:
            while not done.is_set():
                started = time.monotonic()
                assert sock.call("PING") == b"PONG"
                seen["ping"] = max(seen["ping"], time.monotonic() - started)
                seen["rss"] = max(seen["rss"], float(rss(server)))
                time.sleep(0.02)

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join()


def _store(server: ZdbProcess, key: str, size: int) -> None:
    with RawSocket(server.port, timeout=30) as sock:
        assert sock.call("SET", key, os.urandom(size)) == key.encode()
        assert len(sock.call("GET", key)) == size  # type: ignore[arg-type]


def test_mget_of_one_huge_key_many_times_is_refused_before_it_costs_memory(
    zdb: ZdbProcess,
) -> None:
    _store(zdb, "big", 8 * MIB)
    before = rss(zdb)
    with watching(zdb) as seen, RawSocket(zdb.port, timeout=30) as sock:
        for _ in range(3):
            assert sock.call("MGET", *["big"] * 100) == ReplyError("Reply too large")
        three = sock.call("MGET", "big", "big", "big")  # 24 MiB: under the 32 MiB default
        assert isinstance(three, list) and [len(v) for v in three] == [8 * MIB] * 3  # type: ignore[arg-type]
    assert seen["rss"] - before < 150 * MIB, (seen, before)
    assert seen["ping"] < 0.3, seen


def test_clients_that_never_read_hold_at_most_the_pending_budget(
    zdb_factory: Callable[..., ZdbProcess],
) -> None:
    server = zdb_factory("--max-pending", "64M", "--max-reply", "16M")
    _store(server, "big", 8 * MIB)
    before = rss(server)
    requests = encode("GET", "big") * 5
    with watching(server) as seen, ExitStack() as stack:
        for _ in range(50):  # each asks for 40 MiB and reads nothing
            hostile = stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
            hostile.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            hostile.sendall(requests)
        time.sleep(2)
        with RawSocket(server.port, timeout=30) as sock:  # small replies still flow
            assert sock.call("SET", "small", "v") == b"small"
            assert sock.call("GET", "small") == b"v"
    assert seen["rss"] - before < 150 * MIB, (seen["rss"] - before) / MIB
    assert seen["ping"] < 0.3, seen
    with RawSocket(server.port, timeout=30) as sock:  # and large ones again once they are gone
        assert len(sock.call("GET", "big")) == 8 * MIB  # type: ignore[arg-type]


def _refused(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        received = b""
        while chunk := sock.recv(1024):
            received += chunk
        return received


def _fill(stack: ExitStack, port: int, cap: int) -> list[RawSocket]:
    """Connect until refused; the clients let in (the cap, less the start check's own)."""
    clients: list[RawSocket] = []
    while True:
        client = stack.enter_context(RawSocket(port))
        reply = client.call("PING")
        if reply != b"PONG":
            assert reply == ReplyError(TOO_MANY[1:-2].decode())
            assert client.expect_closed() == b""
            break
        clients.append(client)
        assert len(clients) <= cap
    assert cap - 1 <= len(clients) <= cap  # the readiness check may still hold one
    return clients


def test_clients_beyond_the_cap_are_told_and_the_others_go_on(
    zdb_factory: Callable[..., ZdbProcess],
) -> None:
    server = zdb_factory("--max-clients", "30")
    with ExitStack() as stack:
        clients = _fill(stack, server.port, 30)
        assert _refused(server.port) == TOO_MANY
        assert all(client.call("PING") == b"PONG" for client in clients)
        clients[0].close()
        time.sleep(0.2)
        with RawSocket(server.port) as again:
            assert again.call("PING") == b"PONG"
    assert "refusing a client: 30 connected" in server.log.read_text()


class LowDescriptorLimit(ZdbProcess):
    def argv(self) -> list[str]:
        return ["sh", "-c", 'ulimit -n 320 && exec "$@"', "sh", *super().argv()]


def test_the_client_cap_follows_the_descriptor_limit(tmp_path: Path) -> None:
    server = LowDescriptorLimit(tmp_path)
    server.start()
    try:
        assert "at most 64 clients: the descriptor limit (ulimit -n) is 320" in (
            server.log.read_text()
        )
        with ExitStack() as stack:
            _fill(stack, server.port, 64)
            for _ in range(20):  # refused with a word, not by running out of descriptors
                assert _refused(server.port) == TOO_MANY
    finally:
        server.stop()


def test_idle_clients_are_closed_after_the_idle_timeout(
    zdb_factory: Callable[..., ZdbProcess],
) -> None:
    server = zdb_factory("--idle-timeout", "0.5")
    with RawSocket(server.port) as idle, RawSocket(server.port) as busy:
        assert idle.call("PING") == b"PONG"
        for _ in range(10):
            assert busy.call("PING") == b"PONG"
            time.sleep(0.2)
        assert idle.expect_closed(timeout=3) == b""
        assert busy.call("PING") == b"PONG"


def test_without_an_idle_timeout_quiet_clients_stay(zdb: ZdbProcess) -> None:
    with RawSocket(zdb.port) as quiet:
        time.sleep(1.5)
        assert quiet.call("PING") == b"PONG"
