"""Real `zgrid zdb run` processes on free ports, and redis-py clients talking to them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.chain.conftest import free_port

ZGRID = str(Path(sys.executable).parent / "zgrid")


class ZdbProcess:
    """A zgrid zdb server in a subprocess; restartable, killable with -9."""

    def __init__(self, root: Path, *extra: str) -> None:
        self.root = root
        self.data = root / "data"
        self.index = root / "index"
        self.extra = list(extra)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / f"zdb-{self.port}.log"

    @property
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

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"zdb exited with {self.process.returncode}: {self.log.read_text()}"
                )
            try:
                if redis.Redis(port=self.port, socket_timeout=1, protocol=2).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"zdb did not answer within 20 s: {self.log.read_text()}")

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

    def stop(self) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


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
