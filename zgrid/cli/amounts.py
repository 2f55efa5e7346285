"""Amounts and times as the economy's commands show them: tokens (7 decimals), USD, UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

__all__ = ["USD_UNITS", "percent_text", "tokens_text", "usd_text", "utc_text"]

USD_UNITS = 10_000_000  # units USD per USD


def tokens_text(units: int) -> str:
    """Token units as tokens: 125000000 -> '12.5'."""
    from zgrid.chain import format_tokens  # noqa: PLC0415  # the ledger's package is heavy: load it on use

    return format_tokens(units)


def usd_text(units: int | Fraction) -> str:
    """Units USD as USD, exact to 7 decimals (trailing zeros cut): 25000 -> '0.0025'."""
    from zgrid.types import decimal_text  # noqa: PLC0415  # loaded on use, as the others

    return decimal_text(Fraction(units) / USD_UNITS)


def percent_text(permille: int) -> str:
    """Per mille as a percent: 955 -> '95.5%'."""
    whole, tenth = divmod(permille, 10)
    return f"{whole}.{tenth}%" if tenth else f"{whole}%"


def utc_text(timestamp: int) -> str:
    """Ledger time (Unix seconds) as UTC, '2026-12-02 01:00:00'; '-' for 0 (never)."""
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
