"""Sizes as people write them in spec files: ``256MiB``, ``1.5GiB``, ``500MB``, or bytes."""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["MAX_SIZE", "MAX_SIZE_TEXT", "SIZE_UNITS", "format_size", "parse_size"]

MAX_SIZE = 2**63 - 1  # bytes: what a signed 64-bit field on the node holds
MAX_SIZE_TEXT = 32  # characters of a size written as text

# SI units are 1000-based, IEC units 1024-based; the unit's case is exact ("mib" is refused,
# so "mb" cannot silently mean millibytes or megabits to someone and megabytes to us).
SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "PB": 1000**5,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
    "PiB": 1024**5,
}
_ACCEPTED = ", ".join(SIZE_UNITS)
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?([A-Za-z][A-Za-z0-9]*)?", re.ASCII)


def parse_size(value: str | int, *, what: str = "size") -> int:
    """Bytes from an integer or a text like ``"1.5GiB"``; ``what`` names the value in errors.

    Strict: no sign, no exponent, no separators, at most one space before the unit, a
    whole number of bytes, at most :data:`MAX_SIZE`. Raises ValueError saying why.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{what} must be a number of bytes or a text like 256MiB, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{what} cannot be negative, got {value}")
        if value > MAX_SIZE:
            raise ValueError(f"{what} is too large: at most {MAX_SIZE} bytes")
        return value
    if len(value) > MAX_SIZE_TEXT:
        raise ValueError(f"{what} is too long to be a size: at most {MAX_SIZE_TEXT} characters")
    match = _SIZE.fullmatch(value)
    if match is None:
        if value.strip().startswith("-"):
            raise ValueError(f"{what} cannot be negative, got {value!r}")
        raise ValueError(
            f"{what} is not a size: {value!r} (a number of bytes, or a number followed by "
            f"one of {_ACCEPTED}, e.g. 256MiB)"
        )
    number, unit = match.group(1), match.group(2)
    if unit is not None and unit not in SIZE_UNITS:
        raise ValueError(f"bad {what} unit {unit!r} (use one of {_ACCEPTED})")
    exact = Fraction(number) * SIZE_UNITS[unit or "B"]
    if exact.denominator != 1:
        raise ValueError(f"{what} {value!r} is not a whole number of bytes")
    if exact > MAX_SIZE:
        raise ValueError(f"{what} {value!r} is too large: at most {MAX_SIZE} bytes")
    return int(exact)


def format_size(value: int) -> str:
    """Bytes in the largest IEC unit that divides them: 268435456 -> '256 MiB'."""
    for unit in ("PiB", "TiB", "GiB", "MiB", "KiB"):
        size = SIZE_UNITS[unit]
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} B"
