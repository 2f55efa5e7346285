"""Running a hub process: open its data, bind its socket (a clear error when it cannot),
serve the API, stop cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from zgrid.chain import ChainClient
from zgrid.flist.errors import HubError, StoreUrlError
from zgrid.flist.hub.app import Hub, create_app
from zgrid.flist.hub.auth import Authenticator
from zgrid.flist.hub.limits import UploadLimits
from zgrid.flist.hub.nonces import NonceStore
from zgrid.flist.hub.storage import FlistStorage
from zgrid.flist.stores import open_store
from zgrid.web import AppServer, ConnectionLimits, listen_address

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
    uploads: UploadLimits = field(default_factory=UploadLimits)
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)

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
        return f"http://{listen_address(self.host, self.port)}"

    def hosts(self) -> frozenset[str]:
        """The Host values signed requests may name: the public URL's, and the listening
        address when it is one address."""
        hosts = {httpx.Request("GET", self.resolved_public_url()).headers["host"]}
        if self.host not in _ALL_ADDRESSES:
            hosts.add(listen_address(self.host, self.port))
        return frozenset(hosts)


def open_hub(options: HubOptions, *, worker_processes: bool = True) -> Hub:
    """The hub's store, flists and authenticator; raises a FlistError naming what is wrong.

    With ``worker_processes`` pushed flists are checked in a pool of processes (one per
    ``uploads.checks``), otherwise in threads.
    """
    public_url = options.resolved_public_url()
    store = open_store(options.blocks_url())
    if store.read_only:
        raise StoreUrlError(f"the hub needs a block store it can write, not {store.url}")
    storage = FlistStorage(options.data)
    nonces = NonceStore(options.data / "nonces.db")
    writes = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hub-writes")
    checks: ProcessPoolExecutor | ThreadPoolExecutor
    workers = max(1, options.uploads.checks)
    if worker_processes:
        checks = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        )
    else:
        checks = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hub-checks")
    return Hub(
        store=store,
        storage=storage,
        auth=Authenticator(
            ChainClient(options.ledger), nonces, hosts=options.hosts(), executor=writes
        ),
        nonces=nonces,
        public_url=public_url,
        limits=options.uploads,
        checks=checks,
        writes=writes,
    )


async def serve(
    options: HubOptions,
    *,
    on_ready: Callable[[Hub], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (in the main thread) or ``stop``. Raises ServeError when
    the address cannot be listened on, before anything else is opened."""
    hub = open_hub(options)
    try:
        server = AppServer(
            create_app(hub), host=options.host, port=options.port, limits=options.connections
        )
        server.bind()
        api = asyncio.create_task(server.serve(), name="hub-api")

        async def watch_stop() -> None:
            while stop is not None and not stop.is_set() and not api.done():
                await asyncio.sleep(0.05)
            server.stop()

        watcher = asyncio.create_task(watch_stop(), name="hub-stop")
        try:
            if await server.wait_started(api) and on_ready is not None:
                on_ready(hub)
            await api
        finally:
            server.stop()
            watcher.cancel()
            await asyncio.gather(api, watcher, return_exceptions=True)
    finally:
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
