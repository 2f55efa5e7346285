"""Errors of zgrid.zdb.

ZdbError
├── ProtocolError       a client sent bytes that are not an acceptable RESP request
├── CommandError        a command was refused; the message is the reply sent to the client
├── StorageError        a data or index file cannot be read or written
├── ReplyHeld           a large reply waits for room in the reply budget (not sent to anyone)
└── ClientError         the zdb client got an error reply or lost the connection
    └── ConnectionLost  the connection to the server ended; every call on it raises this
"""

from __future__ import annotations

from zgrid.errors import ZgridError

__all__ = [
    "ClientError",
    "CommandError",
    "ConnectionLost",
    "ProtocolError",
    "ReplyHeld",
    "StorageError",
    "ZdbError",
]


class ZdbError(ZgridError):
    """Root of the zdb package's errors."""


class ProtocolError(ZdbError):
    """The request stream is malformed or breaks a limit; the connection cannot continue."""


class CommandError(ZdbError):
    """A command refused; ``str(error)`` is the text of the error reply."""


class StorageError(ZdbError):
    """The on-disk files cannot be read or written, or are damaged beyond repair."""


class ClientError(ZdbError):
    """An error reply, or a broken connection, seen by the client."""


class ConnectionLost(ClientError):
    """The connection to the server ended (closed, reset, or a reply that makes no sense)."""


class ReplyHeld(ZdbError):
    """A read sized its reply before building it and the budget has no room; run it later."""

    def __init__(self, size: int) -> None:
        super().__init__(f"a reply of {size} bytes waits for room")
        self.size = size
