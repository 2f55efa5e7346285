"""0-db's request framing read plainly, one whole stream at a time: the oracle of the parser tests."""

from __future__ import annotations

import re

from zgrid.zdb.resp import RequestFault, RequestParser

_ATOI = re.compile(rb"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def atoi(text: bytes) -> int:
    match = _ATOI.match(text)
    return int(match.group(1)) if match else 0


def reference(data: bytes) -> tuple[list[list[bytes]], str | None]:
    """0-db's reading of ``data``: the whole commands, and the fault (None: no fault yet)."""
    commands: list[list[bytes]] = []
    position = 0

    def line(start: int) -> int | None:
        end = data.find(b"\n", start, start + 8192)
        if end < 0 and len(data) - start >= 8192:
            raise ValueError("")
        return None if end < 0 else end

    try:
        while position < len(data):
            end = line(position)
            if end is None:
                return commands, None
            if data[position : position + 1] != b"*":
                raise ValueError("Malformed request, array expected")
            count = atoi(data[position + 1 : end])
            if count == 0:
                raise ValueError("Missing arguments")
            if count > 1024:
                raise ValueError("Too many arguments")
            if count < 0:
                raise ValueError("Internal memory error")
            cursor = end + 1
            command = []
            for _ in range(count):
                if cursor >= len(data):
                    return commands, None
                end = line(cursor)
                if end is None:
                    return commands, None
                if data[cursor : cursor + 1] != b"$":
                    raise ValueError("Malformed query string")
                length = atoi(data[cursor + 1 : end])
                if length > 8 * 1024 * 1024:
                    raise ValueError("Payload too big")
                if length < 0:
                    raise ValueError("Malformed query string")
                if end + 1 + length + 2 > len(data):
                    return commands, None
                command.append(data[end + 1 : end + 1 + length])
                cursor = end + 1 + length + 2
            commands.append(command)
            position = cursor
    except ValueError as exc:
        return commands, str(exc)
    return commands, None


Outcome = tuple[list[list[bytes]], str | None]


def feed_in_pieces(stream: bytes, sizes: list[int]) -> Outcome:
    """The commands and the fault (None: none) when ``stream`` arrives in reads of ``sizes``, cycled."""
    parser = RequestParser()
    commands: list[list[bytes]] = []
    position = 0
    turn = 0
    while position < len(stream):
        size = max(1, sizes[turn % len(sizes)])
        turn += 1
        try:
            commands.extend(parser.feed(stream[position : position + size]))
        except RequestFault as fault:
            commands.extend(fault.before)
            return commands, str(fault)
        position += size
    return commands, None
