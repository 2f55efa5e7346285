"""Zero-DB: a Redis-protocol, append-only key-value server that reads and writes 0-db's files.

The engine (:class:`Store`, namespaces, data and index files) is usable without a
socket; :func:`run_server` serves it with 0-db's commands and replies, and
:class:`ZdbClient` talks to any 0-db compatible server.
"""

from zgrid.zdb.client import ZdbClient
from zgrid.zdb.errors import (
    ClientError,
    CommandError,
    ConnectionLost,
    ProtocolError,
    StorageError,
    ZdbError,
)
from zgrid.zdb.formats import MODE_SEQ, MODE_USER, crc32c
from zgrid.zdb.run import ServerOptions, parse_size, run_server
from zgrid.zdb.store import DEFAULT_NAMESPACE, Store

__all__ = [
    "DEFAULT_NAMESPACE",
    "MODE_SEQ",
    "MODE_USER",
    "ClientError",
    "CommandError",
    "ConnectionLost",
    "ProtocolError",
    "ServerOptions",
    "StorageError",
    "Store",
    "ZdbClient",
    "ZdbError",
    "crc32c",
    "parse_size",
    "run_server",
]
