"""Canonical JSON and BLAKE2b-256: the exact bytes everything in zgrid signs and hashes.

This module sits at the root of the package (beside ``errors``) because both
``zgrid.identity`` and ``zgrid.types`` need it and neither may import the other;
``zgrid.identity`` re-exports it as the public face.

Canonical form: object keys sorted by code point, no insignificant whitespace
(``,`` and ``:`` separators), UTF-8 without ``\\u`` escapes for non-ASCII text,
and only JSON's exact types: objects with string keys, arrays, strings,
integers, booleans and null. Floats are refused because their text form is not
unique across implementations, which would make two honest signers disagree.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

from zgrid.errors import ZgridError

__all__ = [
    "CanonicalJSONError",
    "blake2b256",
    "canonical_dumps",
    "canonical_loads",
    "plain_dumps",
]

DIGEST_SIZE = 32


class CanonicalJSONError(ZgridError):
    """A value cannot be written as, or read from, canonical JSON."""


def _plain(value: Any) -> bool:
    """Whether ``value`` is made of JSON's exact types only: the fast walk, with no paths;
    anything else (also subclasses) goes through :func:`_check`, which names the problem."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is dict:
        return all(type(key) is str and _plain(item) for key, item in value.items())
    if kind is list:
        return all(_plain(item) for item in value)
    return False


def _check(value: Any, path: str) -> None:
    # An explicit walk (rather than json's `default=` hook) because json accepts
    # floats, tuples and non-string keys silently, and each of those breaks
    # the one-encoding-per-value property signatures depend on.
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        raise CanonicalJSONError(f"{path}: floats are not allowed in canonical JSON ({value!r})")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJSONError(f"{path}: object keys must be strings, got {key!r}")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise CanonicalJSONError(
        f"{path}: {type(value).__name__} is not a JSON type (use str, int, bool, None, list, dict)"
    )


def plain_dumps(value: Any) -> bytes:
    """What :func:`canonical_dumps` makes of a value the caller knows holds only JSON's
    exact types (str, int, bool, None, list, dict with str keys), fast: orjson writes
    the same bytes (sorted keys, no spaces, UTF-8 unescaped) and refuses, as the ledger
    does, any integer outside [-2**63, 2**64 - 1], so its refusal is a CanonicalJSONError.
    Floats, tuples and dataclasses it would write are the caller's to keep out."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:  # out-of-range integers, lone surrogates, odd types, depth
        raise CanonicalJSONError(f"$: cannot encode as canonical JSON: {exc}") from exc


def canonical_dumps(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON bytes; raise CanonicalJSONError if it cannot be."""
    try:
        if not _plain(value):
            _check(value, "$")
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")
    except (ValueError, UnicodeEncodeError) as exc:  # lone surrogates, circular values
        raise CanonicalJSONError(f"$: cannot encode as canonical JSON: {exc}") from exc
    except RecursionError as exc:
        raise CanonicalJSONError("$: value nested too deeply for canonical JSON") from exc


def _refuse_float(text: str) -> Any:
    raise CanonicalJSONError(f"floats are not allowed in canonical JSON ({text})")


def _refuse_constant(text: str) -> Any:
    raise CanonicalJSONError(f"{text} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in pairs:
        if key in result:
            raise CanonicalJSONError(f"duplicate object key {key!r}")
        result[key] = item
    return result


def canonical_loads(data: bytes | str) -> Any:
    """Parse JSON written by :func:`canonical_dumps` (or any JSON without floats)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(
            text,
            parse_float=_refuse_float,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except UnicodeDecodeError as exc:
        raise CanonicalJSONError(f"not UTF-8: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise CanonicalJSONError(f"not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise CanonicalJSONError("JSON nested too deeply") from exc


def blake2b256(data: bytes) -> bytes:
    """BLAKE2b with a 32-byte digest, unkeyed: the hash of transactions, blocks, deployments."""
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).digest()
