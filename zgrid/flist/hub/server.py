"""Running a hub process: open its data, serve the API with uvicorn, stop cleanly on
SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from zgrid.chain import ChainClient
from zgrid.flist.errors import HubError, StoreUrlError
from zgrid.flist.hub.app import Hub, create_app
from zgrid.flist.hub.auth import Authenticator
from zgrid.flist.hub.storage import FlistStorage
from zgrid.flist.stores import open_store

__all__ = ["DEFAULT_HUB_PORT", "HubOptions", "open_hub", "run_hub", "serve"]

DEFAULT_HUB_PORT = 8780
_ALL_ADDRESSES = ("", "0.0.0.0", "::")


@dataclass(frozen=True, slots=True)
class HubOptions:
    """How a hub runs. ``blocks`` defaults to ``dir://<data>/blocks``; ``public_url`` (the
    address consumers reach the hub at) defaults to ``http://<host>:<port>``."""

    data: Path
    ledger: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_HUB_PORT
    blocks: str | None = None
    public_url: str | None = None

    def blocks_url(self) -> str:
        return self.blocks or f"dir://{self.data.resolve() / 'blocks'}"

    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        if self.host in _ALL_ADDRESSES:
            raise HubError(
                "the hub listens on every address: pass --public-url, the URL consumers "
                "reach it at (it is written into every flist pushed to it)"
            )
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def open_hub(options: HubOptions) -> Hub:
    """The hub's store, flists and authenticator; raises a FlistError naming what is wrong."""
    public_url = options.resolved_public_url()
    store = open_store(options.blocks_url())
    if store.read_only:
        raise StoreUrlError(f"the hub needs a block store it can write, not {store.url}")
    storage = FlistStorage(options.data)
    return Hub(
        store=store,
        storage=storage,
        auth=Authenticator(ChainClient(options.ledger)),
        public_url=public_url,
    )


async def serve(
    options: HubOptions,
    *,
    on_ready: Callable[[Hub], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve until uvicorn is told to stop (SIGINT/SIGTERM in the main thread) or ``stop``."""
    hub = open_hub(options)
    config = uvicorn.Config(
        create_app(hub),
        host=options.host,
        port=options.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    api = asyncio.create_task(server.serve(), name="hub-api")

    async def watch_stop() -> None:
        while stop is not None and not stop.is_set() and not api.done():
            await asyncio.sleep(0.05)
        server.should_exit = True

    watcher = asyncio.create_task(watch_stop(), name="hub-stop")
    try:
        while not server.started and not api.done():
            await asyncio.sleep(0.01)
        if server.started and on_ready is not None:
            on_ready(hub)
        await api
    finally:
        server.should_exit = True
        watcher.cancel()
        await asyncio.gather(api, watcher, return_exceptions=True)
        await hub.close()


def run_hub(options: HubOptions, *, on_ready: Callable[[Hub], None] | None = None) -> None:
    """Serve in this (main) thread until SIGINT or SIGTERM, then return normally."""
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        # uvicorn catches both signals while it serves and raises them again once it has
        # shut down; arriving here, before or after, they only ask for the stop.
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        asyncio.run(serve(options, on_ready=on_ready, stop=stop))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
