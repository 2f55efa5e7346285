"""Canonical JSON: one encoding per value, floats refused, round trips exact."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zgrid.canonical import CanonicalJSONError, blake2b256, canonical_dumps, canonical_loads

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)


def _without_surrogates(value: Any) -> bool:
    if isinstance(value, str):
        return not any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, list):
        return all(_without_surrogates(item) for item in value)
    if isinstance(value, dict):
        return all(_without_surrogates(k) and _without_surrogates(v) for k, v in value.items())
    return True


@given(json_values.filter(_without_surrogates))
def test_round_trip_is_exact(value: Any) -> None:
    encoded = canonical_dumps(value)
    assert canonical_loads(encoded) == value
    assert canonical_dumps(canonical_loads(encoded)) == encoded


@given(st.dictionaries(st.text().filter(_without_surrogates), st.integers(), max_size=8))
def test_key_order_does_not_change_bytes_or_hash(mapping: dict[str, int]) -> None:
    reversed_mapping = dict(reversed(list(mapping.items())))
    assert canonical_dumps(mapping) == canonical_dumps(reversed_mapping)
    assert blake2b256(canonical_dumps(mapping)) == blake2b256(canonical_dumps(reversed_mapping))


def test_exact_form() -> None:
    assert (
        canonical_dumps({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()
    )


@pytest.mark.parametrize("value", [1.5, {"a": 0.0}, [math.inf], {"x": [1, {"y": float("nan")}]}])
def test_floats_refused(value: Any) -> None:
    with pytest.raises(CanonicalJSONError, match="float"):
        canonical_dumps(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [({1: "a"}, "keys must be strings"), ((1, 2), "tuple is not a JSON type"), (b"x", "bytes")],
)
def test_non_json_types_refused(value: Any, message: str) -> None:
    with pytest.raises(CanonicalJSONError, match=message):
        canonical_dumps(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"a": 1.5}', "float"),
        (b'{"a": 1, "a": 2}', "duplicate object key"),
        (b"NaN", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"{", "not valid JSON"),
    ],
)
def test_loads_refuses(text: bytes, message: str) -> None:
    with pytest.raises(CanonicalJSONError, match=message):
        canonical_loads(text)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    deep: Any = 0
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(CanonicalJSONError, match="nested too deeply"):
        canonical_dumps(deep)
    with pytest.raises(CanonicalJSONError, match="nested too deeply"):
        canonical_loads("[" * 100_000 + "]" * 100_000)


def test_blake2b256_known_answer() -> None:
    # BLAKE2b-256 of the empty string, from the reference implementation.
    assert blake2b256(b"").hex() == (
        "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
    )
