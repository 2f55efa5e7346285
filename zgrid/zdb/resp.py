"""RESP: parsing client requests (no I/O) and encoding replies."""

from __future__ import annotations

__all__ = [
    "MAX_ARGUMENTS",
    "MAX_ARGUMENT_SIZE",
    "RequestFault",
    "RequestParser",
    "array",
    "bulk",
    "c_atoll",
    "error",
    "integer",
    "simple",
]

import re

from zgrid.zdb.errors import ProtocolError

MAX_ARGUMENTS = 1024
MAX_ARGUMENT_SIZE = 8 * 1024 * 1024
MAX_LINE = 8192  # 0-db's input buffer: a header line must fit in it
_HEADROOM = 64 * 1024  # the other arguments of a command carrying one maximal payload

NIL = b"$-1\r\n"
OK = b"+OK\r\n"

_LEADING_NUMBER = re.compile(rb"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def c_atoll(text: bytes) -> int:
    """C's atoi/atoll: leading blanks, a sign, digits; anything after them is ignored, none gives 0."""
    match = _LEADING_NUMBER.match(text)
    return int(match.group(1)) if match else 0


class RequestFault(ProtocolError):
    """A request the server cannot accept, after the complete requests that came before it.

    ``str(fault)`` is the error reply to send before closing; empty means close silently.
    """

    def __init__(self, message: str, before: list[list[bytes]]) -> None:
        super().__init__(message)
        self.before = before


class RequestParser:
    """Incremental parser of requests with 0-db's framing: RESP arrays of bulk strings.

    Lines end at "\\n"; the two bytes after a payload are skipped unchecked; a
    header that is not "*" (request) or "$" (argument), a count of zero, too many
    arguments, a negative or too large length, each end the connection with
    0-db's error (a header line longer than 0-db's buffer: without one).

    One reading, kept where it stopped: the arguments of a command cut by the end
    of the data are kept with the count still due, and only the bytes from the next
    header on wait in the buffer, so a command arriving in many small pieces costs
    its size once, and the same bytes give the same commands and the same fault
    however they are split. Nothing is allocated from a declared count before that
    count is checked. The bytes held for one command (its arguments so far and the
    unread rest) are capped at one maximal argument plus headroom for the others,
    so a client cannot make memory run away.
    """

    __slots__ = (
        "_arguments",
        "_buffer",
        "_held",
        "_limit",
        "_needed",
        "_remaining",
        "max_argument_size",
        "max_arguments",
    )

    def __init__(
        self, *, max_arguments: int = MAX_ARGUMENTS, max_argument_size: int = MAX_ARGUMENT_SIZE
    ) -> None:
        self.max_arguments = max_arguments
        self.max_argument_size = max_argument_size
        self._limit = max_argument_size + _HEADROOM
        self._buffer = bytearray()  # unread bytes of a cut command, from its next header on
        self._needed = 0  # buffered bytes without which the cut command cannot go on
        self._arguments: list[bytes] = []  # the cut command's arguments read so far
        self._held = 0  # their total size
        self._remaining = 0  # arguments the cut command still owes; 0 between commands

    def feed(self, data: bytes) -> list[list[bytes]]:
        """Add ``data``; return the commands it completed, or raise RequestFault."""
        commands: list[list[bytes]] = []
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) < self._needed:
                self._check_held(commands)
                return commands
            data = bytes(buffer)
            buffer.clear()
        try:
            self._parse(data, commands)
        except ProtocolError as exc:
            self._reset()
            raise RequestFault(str(exc), commands) from None
        self._check_held(commands)
        return commands

    def _reset(self) -> None:
        self._buffer.clear()
        self._arguments = []
        self._held = self._remaining = self._needed = 0

    def _check_held(self, commands: list[list[bytes]]) -> None:
        if self._held + len(self._buffer) > self._limit:
            self._reset()
            raise RequestFault("Payload too big", commands)

    # The messages are 0-db's replies for the same faults.
    def _parse(self, data: bytes, commands: list[list[bytes]]) -> None:
        """Read ``data`` on from where the last call stopped; keep what a cut command left."""
        size = len(data)
        find = data.find
        max_size = self.max_argument_size
        max_arguments = self.max_arguments
        arguments = self._arguments
        remaining = self._remaining
        held = self._held
        position = 0
        needed = 0
        while position < size:
            end = find(b"\n", position, position + MAX_LINE)
            if end < 0:
                _check_line(size - position)
                needed = size - position + 1
                break
            # Canonical numbers ("12\r") are read at once; anything else as C's atoll does.
            digits = data[position + 1 : end - 1]
            if data[end - 1] == 0x0D and digits.isdigit():  # "\r"
                number = int(digits)
            else:
                number = _header_number(data, position + 1, end)
            if remaining:
                if data[position] != 0x24:  # "$"
                    raise ProtocolError("Malformed query string")
                if number > max_size:
                    raise ProtocolError("Payload too big")
                if number < 0:
                    raise ProtocolError("Malformed query string")
                after = end + 3 + number  # the two terminator bytes are not checked
                if after > size:
                    # Wait for the whole argument; its short header is read again then.
                    needed = after - position
                    break
                arguments.append(data[end + 1 : after - 2])
                held += number
                position = after
                remaining -= 1
                if not remaining:
                    commands.append(arguments)
                    arguments = []
                    held = 0
                continue
            remaining = _argument_count(data[position], number, max_arguments)
            position = end + 1
        if position < size:
            self._buffer += memoryview(data)[position:]
        self._needed = needed
        self._arguments = arguments
        self._remaining = remaining
        self._held = held


def _argument_count(kind: int, number: int, max_arguments: int) -> int:
    """The count of a command's header, checked before anything is made for it."""
    if kind != 0x2A:  # "*"
        raise ProtocolError("Malformed request, array expected")
    if number == 0:
        raise ProtocolError("Missing arguments")
    if number > max_arguments:
        raise ProtocolError("Too many arguments")
    if number < 0:
        raise ProtocolError("Internal memory error")
    return number


def _check_line(line_bytes: int) -> None:
    """A header line still without its end may wait, unless it cannot fit 0-db's buffer."""
    if line_bytes >= MAX_LINE:
        raise ProtocolError("")  # 0-db closes without a word


def _header_number(buffer: bytes | bytearray, start: int, end: int) -> int:
    if end > start and buffer[end - 1] == 0x0D:  # "\r"
        end -= 1
    digits = buffer[start:end]
    if digits.isdigit():
        return int(digits)
    return c_atoll(bytes(digits))


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
