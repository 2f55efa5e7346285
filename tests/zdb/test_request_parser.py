"""The request parser against a plain reading of 0-db's framing, on random streams cut anywhere."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.zdb.reference import feed_in_pieces, reference
from zgrid.zdb.resp import RequestFault, RequestParser

TRICKY = [b"\n+", b"\r\n", b"*1\r\n", b"$3\r\n", b"\n=", b"\n(", b"\n|", b"\n", b"+OK\r\n"]


def random_argument(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.1:
        return b""
    if kind < 0.15:
        return rng.randbytes(rng.randrange(20_000, 120_000))
    parts = [rng.choice(TRICKY) if rng.random() < 0.3 else rng.randbytes(rng.randrange(1, 40))]
    for _ in range(rng.randrange(4)):
        parts.append(
            rng.choice(TRICKY) if rng.random() < 0.3 else rng.randbytes(rng.randrange(1, 40))
        )
    return b"".join(parts)


def number(rng: random.Random, value: int) -> bytes:
    """``value`` written as 0-db's atoi reads it, canonically or not."""
    style = rng.random()
    if style < 0.8:
        return b"%d" % value
    return rng.choice([b"0%d", b"+%d", b" %d", b"%dabc", b"%d "]) % value


def random_command(rng: random.Random) -> tuple[list[bytes], bytes]:
    arguments = [rng.choice([b"SET", b"GET", b"PING"])] + [
        random_argument(rng) for _ in range(rng.randrange(4))
    ]
    eol = b"\r\n" if rng.random() < 0.85 else b"\n"
    wire = [b"*" + number(rng, len(arguments)) + eol]
    for argument in arguments:
        terminator = b"\r\n" if rng.random() < 0.9 else rng.randbytes(2)
        wire.append(b"$" + number(rng, len(argument)) + eol + argument + terminator)
    return arguments, b"".join(wire)


BAD_TAILS = [
    b"PING\r\n",
    b"\r\n",
    b"*0\r\n",
    b"*abc\r\n",
    b"*-1\r\n",
    b"*1025\r\n",
    b"*2\r\n$3\r\nGET\r\n+PING\r\n",
    b"*2\r\n$3\r\nGET\r\n:12\r\n",
    b"*2\r\n$3\r\nGET\r\n*1\r\n$1\r\nk\r\n",
    b"*1\r\n$-1\r\n",
    b"*1\r\n$9000000\r\n",
    b"+OK\r\n",
    b"x" * 9000,
    b"*1\r\n$" + b"9" * 9000,
]


def feed_in_chunks(
    data: bytes, rng: random.Random, sizes: list[int] | None = None
) -> tuple[list[list[bytes]], str | None]:
    """``data`` read in pieces of random sizes (from ``sizes`` when given)."""
    choices = sizes or [1, 2, 7, 64, 1000, 65536, len(data)]
    return feed_in_pieces(data, [rng.choice(choices) for _ in range(64)])


@pytest.mark.parametrize("seed", range(30))
def test_random_streams_parse_like_0db(seed: int) -> None:
    rng = random.Random(seed)
    expected: list[list[bytes]] = []
    stream = []
    for _ in range(rng.randrange(1, 40)):
        arguments, wire = random_command(rng)
        expected.append(arguments)
        stream.append(wire)
    if seed % 2:
        stream.append(rng.choice(BAD_TAILS))
    data = b"".join(stream)
    reference_commands, reference_fault = reference(data)
    if seed % 2 == 0:
        assert (reference_commands, reference_fault) == (expected, None)
    for _ in range(3):
        assert feed_in_chunks(data, rng) == (reference_commands, reference_fault)


@pytest.mark.parametrize("tail", BAD_TAILS)
def test_each_fault_keeps_the_commands_before_it(tail: bytes) -> None:
    data = b"*1\r\n$4\r\nPING\r\n" + tail
    expected = reference(data)
    assert expected[1] is not None
    assert feed_in_chunks(data, random.Random(0)) == expected
    parser = RequestParser()
    with pytest.raises(RequestFault) as caught:
        parser.feed(data)
    assert caught.value.before == [[b"PING"]]


def _request(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


@pytest.mark.parametrize("size", [4096, 65536, 512 * 1024])
def test_random_binary_payloads_parse_exactly(size: int) -> None:
    rng = random.Random(size)
    values = [rng.randbytes(size) for _ in range(200 if size <= 65536 else 20)]
    # Payloads full of what RESP3 headers look like, on purpose.
    values.append(b"\n+OK\r\n\n=3\r\n\n(12\r\n\n|1\r\n*1\r\n$1\r\n" * (size // 32))
    parser = RequestParser()
    data = b"".join(_request(b"SET", b"key-%d" % n, value) for n, value in enumerate(values))
    commands = parser.feed(data)
    assert commands == [[b"SET", b"key-%d" % n, value] for n, value in enumerate(values)]


@pytest.mark.parametrize(
    "odd",
    [b"*2\r\n+SET\r\n$1\r\nx\r\n", b"*2\r\n$3\r\nGET\r\n|1\r\n+a\r\n+b\r\n$1\r\nx\r\n"],
    ids=["simple-string", "attribute"],
)
def test_headers_0db_refuses_are_refused(odd: bytes) -> None:
    parser = RequestParser()
    with pytest.raises(RequestFault, match="Malformed query string") as caught:
        parser.feed(_request(b"PING") + odd + _request(b"PING"))
    assert caught.value.before == [[b"PING"]]


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.binary(max_size=3000), min_size=1, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=40000), max_size=6),
)
def test_any_binary_values_cut_anywhere_parse_exactly(values: list[bytes], cuts: list[int]) -> None:
    expected = [[b"SET", b"k%d" % n, value] for n, value in enumerate(values)]
    data = b"".join(_request(*command) for command in expected)
    parser = RequestParser()
    got: list[list[bytes]] = []
    start = 0
    for cut in sorted(c for c in cuts if c < len(data)):
        got += parser.feed(data[start:cut])
        start = cut
    got += parser.feed(data[start:])
    assert got == expected
    assert reference(data) == (expected, None)


@pytest.mark.parametrize(
    "data",
    [
        b"%1\r\n",
        b"%1\r\n~1\r\n",
        b"~1\r\n$4\r\nPING\r\n",
        b"*2\r\n$1\r\naXY+OK\r\n",
        b"*1\r\n*2000000000\r\n",
        b"*2000000000\r\n",
        b"*4294967295\r\n",
        b">1\r\n$4\r\nPING\r\n",
        b"|1\r\n+a\r\n+b\r\n*1\r\n$4\r\nPING\r\n",
    ],
)
def test_the_same_bytes_give_the_same_answer_however_they_arrive(data: bytes) -> None:
    stream = _request(b"PING") + data
    expected = reference(stream)
    assert expected[1] is not None
    whole = feed_in_chunks(stream, random.Random(0), sizes=[len(stream)])
    one_by_one = feed_in_chunks(stream, random.Random(0), sizes=[1])
    assert whole == one_by_one == expected


def test_a_command_in_small_pieces_is_read_once() -> None:
    # 1,023 one-byte arguments and one of 8 MiB, sent 1 KiB at a time: each piece adds to
    # what was read, instead of reading the command again from its start.
    arguments = [b"a"] * 1023 + [b"z" * (8 * 1024 * 1024)]
    data = _request(*arguments)
    parser = RequestParser()
    commands: list[list[bytes]] = []
    started = time.process_time()
    for start in range(0, len(data), 1024):
        commands += parser.feed(data[start : start + 1024])
    assert time.process_time() - started < 2.0  # it took 10 s when each piece re-read it all
    assert commands == [arguments]
