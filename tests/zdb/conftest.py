"""Real `zgrid zdb run` processes on free ports, and redis-py clients talking to them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.processes import ZGRID, ServerProcess, free_port


class ZdbProcess(ServerProcess):
    """A zgrid zdb server in a subprocess; restartable, killable with -9."""

    name = "zdb"

    def __init__(self, root: Path, *extra: str) -> None:
        self.root = root
        self.data = root / "data"
        self.index = root / "index"
        self.extra = list(extra)
        self.port = free_port()
        super().__init__(root / f"zdb-{self.port}.log")

    def argv(self) -> list[str]:
        return [
            ZGRID,
            "zdb",
            "run",
            "--data",
            str(self.data),
            "--index",
            str(self.index),
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.extra,
        ]

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1, protocol=2).ping())
        except redis.RedisError:
            return False

    def client(self, **options: object) -> redis.Redis:
        # RESP2: 0-db (and so zgrid) has no HELLO, which redis-py 8 sends for RESP3.
        settings: dict[str, object] = {
            "host": "127.0.0.1",
            "port": self.port,
            "socket_timeout": 10,
            "protocol": 2,
            **options,
        }
        return redis.Redis(**settings)  # type: ignore[arg-type]


@pytest.fixture
def zdb_factory(tmp_path: Path) -> Iterator[Callable[..., ZdbProcess]]:
    """``zdb_factory("--mode", "seq")`` starts a server with those extra flags."""
    started: list[ZdbProcess] = []

    def start(*extra: str, root: Path | None = None) -> ZdbProcess:
        server = ZdbProcess(root or tmp_path / f"zdb{len(started)}", *extra)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def zdb(zdb_factory: Callable[..., ZdbProcess]) -> ZdbProcess:
    """A server in mixed mode, no admin password (everybody is admin)."""
    return zdb_factory()


@pytest.fixture
def client(zdb: ZdbProcess) -> Iterator[redis.Redis]:
    connection = zdb.client()
    yield connection
    connection.close()
