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

import hiredis

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

    hiredis parses the well-formed commands, which is nearly all of them; each one it
    returns is checked to have been written as 0-db requires ("*" and "$" headers at
    the places the lengths give: hiredis also takes "+", "|" and other RESP3 types,
    and refuses numbers that are not canonical), without looking inside payloads,
    so binary values of any content stay on this path. Where it stops (a command
    cut by the end of the data, or anything unusual) this class reads that one
    command itself, with 0-db's rules, then hands over again. The
    bytes waiting for one command are capped at one maximal argument plus headroom
    for the others, so a client cannot make memory run away.
    """

    __slots__ = (
        "_buffer",
        "_limit",
        "_reader",
        "max_argument_size",
        "max_arguments",
        "slow_commands",
    )

    def __init__(
        self, *, max_arguments: int = MAX_ARGUMENTS, max_argument_size: int = MAX_ARGUMENT_SIZE
    ) -> None:
        self._reader = hiredis.Reader()
        self._buffer = bytearray()  # the start of a command hiredis did not finish
        self.max_arguments = max_arguments
        self.max_argument_size = max_argument_size
        self._limit = max_argument_size + _HEADROOM
        self.slow_commands = 0  # commands this class had to read itself (cut or unusual)

    def feed(self, data: bytes) -> list[list[bytes]]:
        """Add ``data``; return the commands it completed, or raise RequestFault."""
        commands: list[list[bytes]] = []
        if self._buffer:
            buffer = self._buffer
            buffer += data
            end = self._one(buffer, 0, commands)
            if end is None:
                self._check_pending(commands)
                return commands
            data = bytes(buffer[end:])
            buffer.clear()
        position, size = 0, len(data)
        while position < size:
            position = self._fast(data, position, commands)
            if position >= size:
                break
            end = self._one(data, position, commands)
            if end is None:
                self._buffer += memoryview(data)[position:]
                self._check_pending(commands)
                break
            position = end
        return commands

    def _check_pending(self, commands: list[list[bytes]]) -> None:
        if len(self._buffer) > self._limit:
            self._buffer.clear()
            raise RequestFault("Payload too big", commands)

    def _fast(self, data: bytes, start: int, commands: list[list[bytes]]) -> int:
        """Let hiredis parse from ``start``; return where the commands it could take end."""
        reader = self._reader
        reader.feed(data, start)
        max_arguments = self.max_arguments
        max_size = self.max_argument_size
        position = start  # where the next command must begin, from the lengths alone
        valid = False
        try:
            while (command := reader.gets()) is not False:
                # hiredis starts each feed between commands: all of this one is in ``data``.
                if (
                    type(command) is not list
                    or not 0 < len(command) <= max_arguments
                    or data[position] != 0x2A  # "*"
                ):
                    break
                end = position + 3 + len(str(len(command)))
                for argument in command:
                    if type(argument) is not bytes or data[end] != 0x24:  # "$"
                        break
                    length = len(argument)
                    if length > max_size:
                        break
                    end += 5 + len(str(length)) + length
                else:
                    commands.append(command)
                    position = end
                    continue
                break
            else:
                valid = not reader.has_data() and _at_boundary(reader)
        except hiredis.ProtocolError:
            pass
        if valid:
            return len(data)
        # hiredis stopped inside a command, or took one 0-db would not: resume after the
        # last whole one, with a fresh reader.
        self._reader = hiredis.Reader()
        return position

    def _one(
        self, buffer: bytes | bytearray, start: int, commands: list[list[bytes]]
    ) -> int | None:
        """Read the command at ``start`` with 0-db's rules; where it ends, None if incomplete."""
        try:
            with memoryview(buffer) as view:
                parsed = self._command(buffer, view, start)
        except ProtocolError as exc:
            self._buffer.clear()
            raise RequestFault(str(exc), commands) from None
        if parsed is None:
            return None
        command, end = parsed
        commands.append(command)
        self.slow_commands += 1
        return end

    # The messages are 0-db's replies for the same faults.
    def _command(
        self, buffer: bytes | bytearray, view: memoryview, start: int
    ) -> tuple[list[bytes], int] | None:
        """The command at ``start`` and where it ends, or None while it is incomplete."""
        size = len(buffer)
        find = buffer.find
        end = find(b"\n", start, start + MAX_LINE)
        if end < 0:
            _check_line(size - start)
            return None
        if buffer[start] != 0x2A:  # "*"
            raise ProtocolError("Malformed request, array expected")
        count = _header_number(buffer, start + 1, end)
        if count == 0:
            raise ProtocolError("Missing arguments")
        if count > self.max_arguments:
            raise ProtocolError("Too many arguments")
        if count < 0:
            raise ProtocolError("Internal memory error")
        position = end + 1
        command: list[bytes] = []
        for _ in range(count):
            if position >= size:
                return None
            end = find(b"\n", position, position + MAX_LINE)
            if end < 0:
                _check_line(size - position)
                return None
            if buffer[position] != 0x24:  # "$"
                raise ProtocolError("Malformed query string")
            length = _header_number(buffer, position + 1, end)
            if length > self.max_argument_size:
                raise ProtocolError("Payload too big")
            if length < 0:
                raise ProtocolError("Malformed query string")
            position = end + 3 + length  # the two terminator bytes are not checked
            if position > size:
                return None
            command.append(bytes(view[end + 1 : end + 1 + length]))
        return command, position


_PROBE = b"*1\r\n$5\r\nPROBE\r\n"


def _at_boundary(reader: hiredis.Reader) -> bool:
    """Whether hiredis is between commands (it may have taken the start of one).

    A probe command comes back alone only if nothing was pending: otherwise its
    bytes complete the pending command, or become an array inside it.
    """
    reader.feed(_PROBE)
    return bool(reader.gets() == [b"PROBE"] and not reader.has_data())


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
