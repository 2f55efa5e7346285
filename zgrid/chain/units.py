"""The ledger's numbers: token amounts and the ranges every integer it admits must fit.

Amounts are integers of the smallest unit, 1 token = 10,000,000 units (7 decimals).
Every integer a transaction carries, or a record holds, fits in 64 bits: counts,
ids and sizes are unsigned (0 … 2^64 − 1), amounts of tokens at most 2^63 − 1 units,
so every reader of the ledger's JSON (JavaScript's BigInt, Go's int64/uint64, SQLite)
reads the same number.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import Field, ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError

__all__ = [
    "I64_MAX",
    "I64_MIN",
    "MAX_AMOUNT",
    "U64",
    "U64_MAX",
    "UNITS_PER_TOKEN",
    "Amount",
    "Id",
    "format_tokens",
    "parse_tokens",
]

UNITS_PER_TOKEN = 10_000_000

U64_MAX = 2**64 - 1
I64_MIN = -(2**63)
I64_MAX = 2**63 - 1
MAX_AMOUNT = I64_MAX  # also the largest supply a genesis may issue


def parse_tokens(text: str) -> int:
    """'12.5' tokens -> 125000000 units; refuses more than 7 decimals, negatives and junk."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise ValueError(f"not an amount of tokens: {text!r}") from exc
    if not value.is_finite() or value < 0:
        raise ValueError(f"an amount must be a non-negative number of tokens, got {text!r}")
    units = value * UNITS_PER_TOKEN
    if units != units.to_integral_value():
        raise ValueError(f"an amount has at most 7 decimals, got {text!r}")
    return int(units)


def format_tokens(units: int) -> str:
    """125000000 units -> '12.5' (no trailing zeros, no exponent)."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), UNITS_PER_TOKEN)
    if not fraction:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:07d}".rstrip("0")


def _in_tokens(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # The range check stays pydantic's (and in the JSON schema); only its words change,
    # because the person reading them counts in tokens, not units.
    try:
        return handler(value)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "less_than_equal":
            raise PydanticCustomError(
                "too_many_tokens",
                "must be at most {limit} tokens",
                {"limit": format_tokens(MAX_AMOUNT)},
            ) from None
        raise


U64 = Annotated[int, Field(ge=0, le=U64_MAX)]
"""A count, size, version or time: 0 … 2^64 − 1."""

Id = Annotated[int, Field(ge=1, le=U64_MAX)]
"""The id of a twin, farm, node, contract or policy: 1 … 2^64 − 1."""

Amount = Annotated[int, Field(gt=0, le=MAX_AMOUNT), WrapValidator(_in_tokens)]
"""A positive amount of token units, at most 2^63 − 1."""
