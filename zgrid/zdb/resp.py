"""RESP: parsing client requests (no I/O) and encoding replies."""

from __future__ import annotations

__all__ = [
    "MAX_ARGUMENTS",
    "MAX_ARGUMENT_SIZE",
    "RequestParser",
    "array",
    "bulk",
    "error",
    "integer",
    "simple",
]

import hiredis

from zgrid.zdb.errors import ProtocolError

MAX_ARGUMENTS = 1024
MAX_ARGUMENT_SIZE = 8 * 1024 * 1024
_HEADROOM = 64 * 1024  # the other arguments of a command carrying one maximal payload

NIL = b"$-1\r\n"
OK = b"+OK\r\n"


class RequestParser:
    """Incremental parser of requests: RESP arrays of bulk strings, as every Redis client sends.

    hiredis does the byte work; this class enforces what a request may be. Since
    hiredis buffers an unfinished command whole, the bytes waiting for one command
    are capped at one maximal argument plus headroom for the others: a client that
    announces or sends more is refused before memory runs away.
    """

    __slots__ = ("_limit", "_reader", "max_argument_size", "max_arguments")

    def __init__(
        self, *, max_arguments: int = MAX_ARGUMENTS, max_argument_size: int = MAX_ARGUMENT_SIZE
    ) -> None:
        self._reader = hiredis.Reader()
        self.max_arguments = max_arguments
        self.max_argument_size = max_argument_size
        self._limit = max_argument_size + _HEADROOM

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole command."""
        return int(self._reader.len())

    def feed(self, data: bytes) -> list[list[bytes]]:
        """Add ``data``; return the commands it completed, or raise ProtocolError."""
        reader = self._reader
        try:
            reader.feed(data)
            commands: list[list[bytes]] = []
            while (command := reader.gets()) is not False:
                commands.append(self._check(command))
        except hiredis.ProtocolError:
            raise ProtocolError("Malformed request, array expected") from None
        if reader.len() > self._limit:
            raise ProtocolError("Payload too big")
        return commands

    # The messages are 0-db's replies for the same faults.
    def _check(self, command: object) -> list[bytes]:
        if not isinstance(command, list):
            raise ProtocolError("Malformed request, array expected")
        if not command:
            raise ProtocolError("Missing arguments")
        if len(command) > self.max_arguments:
            raise ProtocolError("Too many arguments")
        for argument in command:
            if not isinstance(argument, bytes):
                raise ProtocolError("Malformed query string")
            if len(argument) > self.max_argument_size:
                raise ProtocolError("Payload too big")
        return command


def simple(text: str) -> bytes:
    return b"+" + text.encode() + b"\r\n"


def error(text: str) -> bytes:
    return b"-" + text.encode() + b"\r\n"


def integer(value: int) -> bytes:
    return b":%d\r\n" % value


def bulk(value: bytes | None) -> bytes:
    if value is None:
        return NIL
    return b"$%d\r\n%b\r\n" % (len(value), value)


def array(items: list[bytes]) -> bytes:
    """An array of already-encoded replies."""
    return b"*%d\r\n" % len(items) + b"".join(items)
