"""Run an explorer process: the indexer following the ledger and the HTTP API (with the
web pages) on one event loop, over one database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from zgrid.chain import ChainClient, LedgerUnavailable
from zgrid.explorer.api import ExplorerView, create_app
from zgrid.explorer.errors import ExplorerError, LedgerMismatch, UntrustedBlock
from zgrid.explorer.indexer import Indexer, IndexerStatus
from zgrid.explorer.pages import install_pages
from zgrid.explorer.store import ExplorerStore
from zgrid.web import AppServer, ConnectionLimits

__all__ = ["ExplorerSettings", "index_once", "serve"]

log = logging.getLogger(__name__)

_RETRY = 2.0  # seconds between attempts to reach a ledger that does not answer


@dataclass(frozen=True)
class ExplorerSettings:
    ledger: str
    database: str
    host: str = "127.0.0.1"
    port: int = 8800
    rebuild: bool = False
    validator: str | None = None
    batch: int = 100
    poll: float = 0.5
    max_connections: int = 1024


def _open(settings: ExplorerSettings) -> ExplorerStore:
    store = ExplorerStore(settings.database)
    try:
        store.migrate()
        if settings.rebuild:
            store.clear()
    except BaseException:
        store.close()
        raise
    return store


async def index_once(
    settings: ExplorerSettings,
    *,
    until: int | None = None,
    on_block: Callable[[IndexerStatus], None] | None = None,
) -> IndexerStatus:
    """Index every block the ledger has now (up to ``until``), then return."""
    store = _open(settings)
    try:
        async with ChainClient(settings.ledger) as chain:
            indexer = Indexer(
                store,
                chain,
                validator=settings.validator,
                header_batch=settings.batch,
                on_block=on_block,
                until=until,
            )
            await indexer.catch_up()
            return indexer.status
    finally:
        store.close()


async def serve(
    settings: ExplorerSettings, *, on_ready: Callable[[int, IndexerStatus], None] | None = None
) -> None:
    """Index and serve until SIGINT/SIGTERM. A database of another chain, a busy port or a
    bad database URL fail before anything runs; a ledger that does not answer yet is waited
    for while the API serves what was indexed."""
    store = _open(settings)
    chain = ChainClient(settings.ledger)
    try:
        indexer = Indexer(
            store,
            chain,
            validator=settings.validator,
            header_batch=settings.batch,
            poll=settings.poll,
        )
        with contextlib.suppress(LedgerUnavailable):
            await indexer.prepare()  # refuses another chain's database at once
        view = ExplorerView(store, indexer.status)
        app = create_app(view, pages=install_pages)
        limits = ConnectionLimits(max_connections=settings.max_connections)
        server = AppServer(app, host=settings.host, port=settings.port, limits=limits)
        server.bind()
        stop = asyncio.Event()
        following = asyncio.create_task(_follow(indexer, stop), name="indexer")
        api = asyncio.create_task(server.serve(), name="explorer-api")
        try:
            if await server.wait_started(api) and on_ready is not None:
                on_ready(server.port, indexer.status)
            await api
        finally:
            server.stop()
            stop.set()
            await asyncio.gather(api, following, return_exceptions=True)
    finally:
        await chain.close()
        store.close()


async def _follow(indexer: Indexer, stop: asyncio.Event) -> None:
    """Follow the ledger for as long as the process runs. A block that fails its checks, or
    a ledger that is not the chain indexed, stops indexing (what was stored stays served)."""
    while not stop.is_set():
        try:
            await indexer.run(stop)
        except LedgerUnavailable as exc:
            indexer.status.error = str(exc)
            log.warning("indexer: %s; trying again in %s s", exc, _RETRY)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _RETRY)
        except (UntrustedBlock, LedgerMismatch) as exc:
            indexer.status.error = str(exc)
            log.error("indexer stopped: %s", exc)
            return
        except ExplorerError as exc:  # the database failed: try again, it may come back
            indexer.status.error = str(exc)
            log.error("indexer: %s; trying again in %s s", exc, _RETRY)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _RETRY)
