"""Fuzzing of Zero-DB's request parser: hypothesis streams, the regression corpus, atheris."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.atheris_run import CORPUS, run_atheris
from tests.fuzz.budget import count, fuzz_seconds, fuzz_settings, keep_running
from tests.fuzz.resp_target import one_input
from tests.zdb.reference import feed_in_pieces, reference

# What RESP headers look like, with the numbers that matter to a parser: the limits and
# the sizes that break allocators.
TYPES = b"*$%~>|+-:_,#!=("
NUMBERS = [0, 1, 2, 3, -1, -2, 1023, 1024, 1025, 8 * 1024 * 1024, 8 * 1024 * 1024 + 1]
NUMBERS += [2_000_000_000, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 + 1]


def _request(*arguments: bytes) -> bytes:
    return b"*%d\r\n" % len(arguments) + b"".join(
        b"$%d\r\n%b\r\n" % (len(argument), argument) for argument in arguments
    )


header = st.builds(
    lambda kind, number, end: bytes([kind]) + b"%d" % number + end,
    st.one_of(st.sampled_from(b"*$%~>|"), st.sampled_from(TYPES)),
    st.one_of(st.sampled_from(NUMBERS), st.integers(min_value=-5, max_value=2000)),
    st.sampled_from([b"\r\n", b"\n", b"", b"\r", b"x\r\n", b" \r\n"]),
)
command = st.lists(st.binary(max_size=40), min_size=1, max_size=5).map(
    lambda arguments: _request(*arguments)
)
piece = st.one_of(
    header, command, header, st.binary(max_size=30), st.sampled_from([b"\r\n", b"\n", b"x"])
)
# Whole commands first, so that what follows is read at a command boundary, then headers
# (an odd frame, or an array nested in a command), then anything.
streams = st.tuples(
    st.lists(command, max_size=4),
    st.lists(st.one_of(header, command), max_size=4),
    st.lists(piece, max_size=8),
).map(lambda parts: b"".join(b"".join(part) for part in parts))
cuts = st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=8)


def test_streams_parse_alike_however_they_are_cut() -> None:
    @fuzz_settings(400)
    @given(stream=streams, sizes=cuts)
    def check(stream: bytes, sizes: list[int]) -> None:
        count("resp-streams")
        expected = reference(stream)
        assert feed_in_pieces(stream, [len(stream) or 1]) == expected
        assert feed_in_pieces(stream, sizes) == expected
        assert feed_in_pieces(stream, [1]) == expected

    keep_running(check)


def test_each_input_is_bounded_in_time_and_memory() -> None:
    # A declared count or length costs nothing until its bytes arrive: a short input
    # never takes long nor much memory, whatever it declares.
    @fuzz_settings(150)
    @given(stream=streams)
    def check(stream: bytes) -> None:
        count("resp-bounds")
        tracemalloc.start()
        started = time.process_time()
        try:
            feed_in_pieces(stream, [len(stream) or 1])
            feed_in_pieces(stream, [1])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert time.process_time() - started < 1.0
        assert peak < 64 * len(stream) + 256 * 1024, f"{peak} bytes for {len(stream)}"

    keep_running(check)


@pytest.mark.parametrize("path", sorted((CORPUS / "resp").iterdir()), ids=lambda path: path.name)
def test_the_corpus_still_passes(path: Path) -> None:
    count("resp-corpus")
    one_input(path.read_bytes())


def test_atheris_finds_nothing(tmp_path: Path) -> None:
    executed = run_atheris("resp", seconds=fuzz_seconds() or 10, work=tmp_path)
    count("resp-atheris", executed)
    assert executed > 0
