"""kill -9 under a write load with --sync: every acknowledged write reads back after restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis

from tests.zdb.conftest import ZdbProcess

WRITERS = 4


def _write_until_stopped(
    server: ZdbProcess, writer: int, acknowledged: dict[bytes, bytes], stop: threading.Event
) -> None:
    client = server.client(socket_timeout=5)
    number = 0
    try:
        while not stop.is_set():
            key = f"w{writer}-{number}".encode()
            # SETX is 0-db's alias of SET that redis-py does not turn into a boolean.
            # Overwrite older keys too, so the index gets in-place updates under load.
            target = key if number % 3 else f"w{writer}-{number // 2}".encode()
            value = f"{writer}:{number}:".encode() * (1 + number % 50)
            pipe = client.pipeline(transaction=False)
            pipe.execute_command("SETX", target, value)
            pipe.execute_command("SETX", key + b"-b", value[::-1])
            replies = pipe.execute()
            for sent_key, sent_value, reply in (
                (target, value, replies[0]),
                (key + b"-b", value[::-1], replies[1]),
            ):
                if reply in (sent_key, None):  # None: the same payload was already stored
                    acknowledged[sent_key] = sent_value
            number += 1
    except (redis.RedisError, OSError):
        pass  # the server died under us; whatever was not acknowledged may be lost
    finally:
        client.close()


def test_kill_9_under_load_with_sync(zdb_factory: Callable[..., ZdbProcess]) -> None:
    server = zdb_factory("--sync", "--datasize", "512k")
    stop = threading.Event()
    acknowledged: list[dict[bytes, bytes]] = [{} for _ in range(WRITERS)]
    threads = [
        threading.Thread(target=_write_until_stopped, args=(server, n, acknowledged[n], stop))
        for n in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while sum(map(len, acknowledged)) < 3000 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill9()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    expected = {key: value for per_writer in acknowledged for key, value in per_writer.items()}
    assert len(expected) >= 1000, "the load did not get going before the kill"

    server.start()
    client = server.client()
    keys = list(expected)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        values = client.execute_command("MGET", *chunk)
        for key, value in zip(chunk, values, strict=True):
            assert value == expected[key], (
                f"acknowledged write of {key!r} lost or wrong after kill -9"
            )
    # The data files rotated under load: the reloaded server can still write and read.
    assert client.execute_command("SETX", b"after-restart", b"ok") == b"after-restart"
    client.close()
