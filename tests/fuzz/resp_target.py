"""One fuzz input for Zero-DB's request parser: the same answer however the bytes arrive.

The first byte of an input picks how the rest is cut into reads; the rest is the
stream. Whole, byte by byte and in the picked pieces, the parser must give exactly
what 0-db's plain reading gives (tests/zdb/reference.py), and nothing but its own
RequestFault may escape.
"""

from __future__ import annotations

import random

from tests.zdb.reference import reference
from zgrid.zdb.resp import RequestFault, RequestParser

__all__ = ["feed_in_pieces", "one_input"]

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


def one_input(data: bytes) -> None:
    if not data:
        return
    rng = random.Random(data[0])
    stream = data[1:]
    expected = reference(stream)
    picked = [rng.choice([1, 2, 3, 5, 8, 13, 64, 1000]) for _ in range(8)]
    for sizes in ([len(stream) or 1], [1], picked):
        got = feed_in_pieces(stream, sizes)
        assert got == expected, f"read in pieces of {sizes}: {got!r} != {expected!r}"
