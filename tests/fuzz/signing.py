"""Signed transactions for API fuzzing: a generated body becomes one a test identity signed
with its next nonce, calling a real call of the ledger with arguments shaped like that
call's, so generated requests reach the state machine and not only the signature check."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import strategies as st

from zgrid.chain.domains import build_calls
from zgrid.chain.transaction import sign_transaction
from zgrid.identity import CanonicalJSONError, Identity

__all__ = ["CALLS", "call_arguments", "resign", "sign_body"]

CALLS = build_calls()
_HEX64 = "0123456789abcdef"


def _value(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """A loose strategy for values of ``schema``: mostly valid, sometimes at the edges."""
    if "$ref" in schema:
        return _value(defs[schema["$ref"].rsplit("/", 1)[1]], defs, depth)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([_value(option, defs, depth) for option in schema[key]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "integer":
        low = schema.get("minimum", 0)
        high = schema.get("maximum", 2**64 - 1)
        return st.one_of(st.integers(low, min(high, low + 20)), st.integers(low, high))
    if kind == "boolean":
        return st.booleans()
    if kind == "string" and "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True)
    if kind == "string":
        return st.one_of(
            st.text(_HEX64, min_size=64, max_size=64),
            st.sampled_from(["", "203.0.113.7/24", "203.0.113.1", "zgrid", "up", "down"]),
            st.text(max_size=schema.get("maxLength", 16) or 16),
        )
    if kind == "array" and depth < 3:
        return st.lists(_value(schema.get("items", {}), defs, depth + 1), max_size=3)
    if kind == "object" and depth < 3:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {
                name: _value(sub, defs, depth + 1)
                for name, sub in properties.items()
                if name in required
            },
            optional={
                name: _value(sub, defs, depth + 1)
                for name, sub in properties.items()
                if name not in required
            },
        )
    return st.none()


def call_arguments(call: str) -> st.SearchStrategy[dict[str, Any]]:
    schema = CALLS[call].args.model_json_schema()
    strategy: st.SearchStrategy[dict[str, Any]] = _value(schema, schema.get("$defs", {}))
    return strategy


def next_nonce(url: str, identity: Identity) -> int:
    account = httpx.get(f"{url}/accounts/{identity.address}", timeout=10).json()
    nonce: int = account["nonce"]
    return nonce


def sign_body(
    identity: Identity, *, chain_id: str, nonce: int, call: str, args: dict[str, Any]
) -> dict[str, Any]:
    return sign_transaction(
        identity, chain_id=chain_id, nonce=nonce, call=call, args=args
    ).to_json()


def resign(
    data: st.DataObject, identity: Identity, *, url: str, chain_id: str, body: Any, count: int = 1
) -> list[dict[str, Any]]:
    """``count`` transactions signed by ``identity`` with its next nonces.

    The call is drawn from the ledger's calls (or kept from ``body`` now and then, to
    reach the unknown-call refusal), with arguments shaped like that call's.
    """
    kept = body.get("body", {}) if isinstance(body, dict) else {}
    nonce = next_nonce(url, identity)
    signed = []
    for offset in range(count):
        call = data.draw(st.sampled_from(sorted(CALLS)), label="call")
        args = data.draw(call_arguments(call), label="args")
        if isinstance(kept.get("call"), str) and data.draw(st.integers(0, 9)) == 0:
            call = kept["call"]
            args = kept.get("args", {}) if isinstance(kept.get("args"), dict) else {}
        try:
            body_signed = sign_body(
                identity, chain_id=chain_id, nonce=nonce + offset, call=call, args=args
            )
        except CanonicalJSONError:  # generated arguments no transaction can hold (a float)
            body_signed = sign_body(
                identity, chain_id=chain_id, nonce=nonce + offset, call=call, args={}
            )
        signed.append(body_signed)
    return signed
