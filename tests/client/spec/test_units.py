"""Sizes with units: exact, strict and bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zgrid.client import format_size, parse_size

MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("256MiB", 256 * 2**20),
        ("2GiB", 2 * 2**30),
        ("1.5GiB", 3 * 2**29),
        ("500MB", 500 * 10**6),
        ("1TiB", 2**40),
        ("4KiB", 4096),
        ("1 KB", 1000),
        ("7B", 7),
        ("1024", 1024),
        (0, 0),
        (4096, 4096),
        (MAX, MAX),
    ],
)
def test_accepted_sizes(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "2GB2",
            "bad memory unit 'GB2' (use one of B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)",
        ),
        ("2gib", "bad memory unit 'gib'"),
        ("-1GiB", "memory cannot be negative"),
        (-1, "memory cannot be negative"),
        ("1.5B", "is not a whole number of bytes"),
        ("0.1KiB", "is not a whole number of bytes"),
        ("8EiB", "bad memory unit 'EiB'"),
        ("9000PiB", "is too large"),
        (MAX + 1, "is too large"),
        ("1" * 33, "too long"),
        ("", "is not a size"),
        ("1e3MiB", "bad memory unit 'e3MiB'"),
        ("1,5GiB", "is not a size"),
        ("1_000", "is not a size"),
        ("١٢MiB", "is not a size"),  # digits of another script
        (" 1MiB", "is not a size"),
        ("1  MiB", "is not a size"),
        ("MiB", "is not a size"),
        (True, "must be a number of bytes"),
        (1.5, "must be a number of bytes"),
    ],
)
def test_refused_sizes(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_size(value, what="memory")  # type: ignore[arg-type]
    assert message in str(caught.value)


@given(
    st.integers(min_value=0, max_value=2**32), st.sampled_from(["KiB", "MiB", "GiB", "KB", "GB"])
)
def test_number_and_unit_multiply_exactly(number: int, unit: str) -> None:
    factor = {"KiB": 1024, "MiB": 2**20, "GiB": 2**30, "KB": 1000, "GB": 10**9}[unit]
    assert parse_size(f"{number}{unit}") == number * factor


@given(st.integers(min_value=0, max_value=MAX))
def test_formatted_size_reads_back(value: int) -> None:
    assert parse_size(format_size(value).replace(" ", "")) == value


@given(st.text(max_size=40))
def test_any_text_is_a_size_or_a_value_error(text: str) -> None:
    try:
        size = parse_size(text)
    except ValueError:
        return
    assert 0 <= size <= MAX
