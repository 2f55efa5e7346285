"""kill -9 under a write load: every acknowledged write reads back after restart.

A killed process leaves the page cache behind, so this shows that writes reach
the files before their reply; that --sync also reaches the disk is the fsync
test of test_engine.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis

from tests.zdb.conftest import ZdbProcess

WRITERS = 4


class History:
    """What one writer sent per key, and how much of it the server acknowledged.

    After a crash a key must hold its last acknowledged value or a later one that
    was sent but whose reply never came: that write may or may not have landed.
    """

    def __init__(self) -> None:
        self.sent: dict[bytes, list[bytes]] = {}
        self.acknowledged: dict[bytes, int] = {}

    def send(self, key: bytes, value: bytes) -> None:
        self.sent.setdefault(key, []).append(value)

    def acknowledge(self, key: bytes, value: bytes) -> None:
        values = self.sent[key]
        self.acknowledged[key] = len(values) - 1 - values[::-1].index(value)

    def allowed(self, key: bytes) -> list[bytes]:
        return self.sent[key][self.acknowledged[key] :]


def _write_until_stopped(
    server: ZdbProcess, writer: int, history: History, stop: threading.Event
) -> None:
    client = server.client(socket_timeout=5)
    number = 0
    try:
        while not stop.is_set():
            key = f"w{writer}-{number}".encode()
            # Overwrite older keys too, so the index gets in-place updates under load.
            target = key if number % 3 else f"w{writer}-{number // 2}".encode()
            value = f"{writer}:{number}:".encode() * (1 + number % 50)
            writes = ((target, value), (key + b"-b", value[::-1]))
            # SETX is 0-db's alias of SET that redis-py does not turn into a boolean.
            pipe = client.pipeline(transaction=False)
            for sent_key, sent_value in writes:
                history.send(sent_key, sent_value)
                pipe.execute_command("SETX", sent_key, sent_value)
            replies = pipe.execute()
            for (sent_key, sent_value), reply in zip(writes, replies, strict=True):
                if reply in (sent_key, None):  # None: the same payload was already stored
                    history.acknowledge(sent_key, sent_value)
            number += 1
    except (redis.RedisError, OSError):
        pass  # the server died under us; whatever was not acknowledged may be lost
    finally:
        client.close()


def test_kill_9_under_load_loses_no_acknowledged_write(
    zdb_factory: Callable[..., ZdbProcess],
) -> None:
    server = zdb_factory("--sync", "--datasize", "512k")
    stop = threading.Event()
    histories = [History() for _ in range(WRITERS)]
    threads = [
        threading.Thread(target=_write_until_stopped, args=(server, n, histories[n], stop))
        for n in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while sum(len(h.acknowledged) for h in histories) < 3000 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill9()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    allowed = {key: history.allowed(key) for history in histories for key in history.acknowledged}
    assert len(allowed) >= 1000, "the load did not get going before the kill"

    server.start()
    client = server.client()
    keys = list(allowed)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        values = client.execute_command("MGET", *chunk)
        for key, value in zip(chunk, values, strict=True):
            assert value in allowed[key], (
                f"acknowledged write of {key!r} lost or wrong after kill -9"
            )
    # The data files rotated under load: the reloaded server can still write and read.
    assert client.execute_command("SETX", b"after-restart", b"ok") == b"after-restart"
    client.close()
