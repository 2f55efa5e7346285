"""Token amounts: integers of the smallest unit, 1 token = 10,000,000 units (7 decimals)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = ["UNITS_PER_TOKEN", "format_tokens", "parse_tokens"]

UNITS_PER_TOKEN = 10_000_000


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
