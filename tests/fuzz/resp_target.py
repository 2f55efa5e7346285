"""One fuzz input for Zero-DB's request parser: the same answer however the bytes arrive.

The first byte of an input picks how the rest is cut into reads; the rest is the
stream. Whole, byte by byte and in the picked pieces, the parser must give exactly
what 0-db's plain reading gives (tests/zdb/reference.py), and nothing but its own
RequestFault may escape.
"""

from __future__ import annotations

import random

from tests.zdb.reference import feed_in_pieces, reference

__all__ = ["one_input"]


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
