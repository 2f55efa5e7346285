"""Run a validator process: the ledger's block producer and its HTTP API on one event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import uvicorn

from zgrid.chain.api import create_app
from zgrid.chain.ledger import Ledger

__all__ = ["parse_listen", "serve"]

log = logging.getLogger(__name__)


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:8700' -> ('127.0.0.1', 8700); '[::1]:8700' works too."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def serve(
    data_dir: Path,
    *,
    host: str,
    port: int,
    block_time: float = 1.0,
    on_ready: Callable[[Ledger], None] | None = None,
) -> None:
    """Serve the chain in ``data_dir`` until SIGINT/SIGTERM; raise if block storage fails."""
    ledger = Ledger.open(data_dir, block_time=block_time)
    config = uvicorn.Config(
        create_app(ledger),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    stop = asyncio.Event()
    producer = asyncio.create_task(ledger.run(stop), name="block-producer")
    api = asyncio.create_task(server.serve(), name="http-api")

    async def end_streams_on_shutdown() -> None:
        # uvicorn waits for open connections before it stops; event streams never
        # finish by themselves, so end them as soon as a shutdown is asked for.
        while not server.should_exit:
            await asyncio.sleep(0.05)
        await ledger.close_streams()

    closer = asyncio.create_task(end_streams_on_shutdown(), name="stream-closer")
    try:
        while not server.started and not api.done():
            await asyncio.sleep(0.01)
        if server.started and on_ready is not None:
            on_ready(ledger)
        await asyncio.wait({producer, api}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stop.set()
        await asyncio.gather(api, closer, return_exceptions=True)
        try:
            await producer
        finally:
            ledger.close()
