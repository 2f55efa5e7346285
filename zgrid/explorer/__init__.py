"""The explorer: the ledger's events indexed into SQLite or PostgreSQL, served with the
grid proxy's API and as public web pages.

:class:`Indexer` follows the ledger block by block (each header checked before anything of
it is stored) into an :class:`ExplorerStore`; :func:`serve` runs the indexer and the API in
one process (`zgrid explorer run`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zgrid.explorer.errors import (
    BadQuery,
    ExplorerError,
    ExplorerStoreError,
    LedgerMismatch,
    NotIndexed,
    UntrustedBlock,
)
from zgrid.lazy import lazy_members

if TYPE_CHECKING:
    from zgrid.explorer.api import ExplorerView, create_app
    from zgrid.explorer.indexer import Indexer, IndexerStatus
    from zgrid.explorer.service import ExplorerSettings, index_once, serve
    from zgrid.explorer.store import ExplorerStore, Position, database_url

# The web server, SQLAlchemy and the ledger's client load on first use.
_LAZY = {
    "ExplorerView": "zgrid.explorer.api",
    "create_app": "zgrid.explorer.api",
    "Indexer": "zgrid.explorer.indexer",
    "IndexerStatus": "zgrid.explorer.indexer",
    "ExplorerSettings": "zgrid.explorer.service",
    "index_once": "zgrid.explorer.service",
    "serve": "zgrid.explorer.service",
    "ExplorerStore": "zgrid.explorer.store",
    "Position": "zgrid.explorer.store",
    "database_url": "zgrid.explorer.store",
}

__all__ = [
    "BadQuery",
    "ExplorerError",
    "ExplorerSettings",
    "ExplorerStore",
    "ExplorerStoreError",
    "ExplorerView",
    "Indexer",
    "IndexerStatus",
    "LedgerMismatch",
    "NotIndexed",
    "Position",
    "UntrustedBlock",
    "create_app",
    "database_url",
    "index_once",
    "serve",
]

__getattr__, __dir__ = lazy_members(__name__, _LAZY, __all__)
