"""Errors of the explorer, each one line a person can act on.

ZgridError
  ExplorerError            the root of this package
    ExplorerStoreError     the explorer's database cannot be opened, migrated or written
    LedgerMismatch         the database indexes another chain than the ledger it is told to follow
    UntrustedBlock         a block read from the ledger fails its checks: nothing of it is stored
    BadQuery               a query's parameter is out of range or unknown (HTTP 400)
    NotIndexed             no such node, farm, twin or contract in the index (HTTP 404)
"""

from __future__ import annotations

from zgrid.errors import ZgridError

__all__ = [
    "BadQuery",
    "ExplorerError",
    "ExplorerStoreError",
    "LedgerMismatch",
    "NotIndexed",
    "UntrustedBlock",
]


class ExplorerError(ZgridError):
    """Something the explorer cannot do; the message says what and why."""


class ExplorerStoreError(ExplorerError):
    """The explorer's database cannot be opened, migrated or written."""


class LedgerMismatch(ExplorerError):
    """The database was built from another chain than the ledger the explorer follows."""


class UntrustedBlock(ExplorerError):
    """A block from the ledger fails its checks (signature, hash links, events root)."""


class BadQuery(ExplorerError):
    """A query parameter is malformed, out of range or not known."""


class NotIndexed(ExplorerError):
    """No such entity in the index."""
