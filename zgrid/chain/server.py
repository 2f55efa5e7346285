"""Run a validator process: the ledger's block producer and its HTTP API on one event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from zgrid.chain.api import create_app
from zgrid.chain.ledger import Ledger
from zgrid.web import AppServer, ConnectionLimits

__all__ = ["parse_listen", "serve"]

log = logging.getLogger(__name__)


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:8700' -> ('127.0.0.1', 8700); '[::1]:8700' works too."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--listen must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def serve(
    data_dir: Path,
    *,
    host: str,
    port: int,
    block_time: float = 1.0,
    max_connections: int = 1024,
    header_timeout: float = 10.0,
    time_scale: float = 1.0,
    on_ready: Callable[[Ledger, int], None] | None = None,
) -> None:
    """Serve the chain in ``data_dir`` until SIGINT/SIGTERM; raise if block storage fails.

    The ledger is opened and the socket bound before anything runs, so a bad data
    directory or a busy port is a ChainError or ServeError with one clear line.
    At most ``max_connections`` are served at once, and a connection that takes longer
    than ``header_timeout`` to send a request's headers (idle, or slowloris) is closed.
    ``on_ready`` gets the ledger and the port listened on. ``time_scale`` (dev chains
    only) makes ledger time run that many times faster than the clock.
    """
    ledger = Ledger.open(data_dir, block_time=block_time, time_scale=time_scale)
    try:
        limits = ConnectionLimits(max_connections=max_connections, header_timeout=header_timeout)
        app = create_app(ledger)
        server = AppServer(app, host=host, port=port, limits=limits)
        server.bind()
    except BaseException:
        ledger.close()
        raise
    try:
        await app.state.workers.start()
    except BaseException:
        app.state.workers.close()
        ledger.close()
        raise
    stop = asyncio.Event()
    producer = asyncio.create_task(ledger.run(stop), name="block-producer")
    api = asyncio.create_task(server.serve(), name="http-api")

    async def end_streams_on_shutdown() -> None:
        # The server waits for open connections before it stops; event streams never
        # finish by themselves, so end them as soon as a shutdown is asked for.
        while not server.stopping:
            await asyncio.sleep(0.05)
        ledger.close_streams()

    closer = asyncio.create_task(end_streams_on_shutdown(), name="stream-closer")
    try:
        if await server.wait_started(api) and on_ready is not None:
            on_ready(ledger, server.port)
        await asyncio.wait({producer, api}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.stop()
        stop.set()
        served, _ = await asyncio.gather(api, closer, return_exceptions=True)
        try:
            await producer
        finally:
            app.state.workers.close()
            ledger.close()
        if isinstance(served, Exception):
            raise served
