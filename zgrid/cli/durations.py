"""Durations as commands take them: seconds, or a number with s, m, h or d (90s, 36h, 14d)."""

from __future__ import annotations

import re

import typer

__all__ = ["parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, *, most: int, param_hint: str) -> int:
    """'90', '90s', '30m', '1h', '7d' -> seconds; wrong usage (BadParameter) unless it is
    more than 0 and at most ``most`` seconds."""
    match = re.fullmatch(r"\s*(\d{1,10})\s*([smhd]?)\s*", text)
    if match is None:
        raise typer.BadParameter(
            f"{text!r} is not a duration; use seconds or a number with s, m, h or d (like 1h)",
            param_hint=param_hint,
        )
    seconds = int(match[1]) * _UNITS[match[2] or "s"]
    if not 0 < seconds <= most:
        limit = f"{most // 86400}d" if most % 86400 == 0 else f"{most}s"
        raise typer.BadParameter(f"must be more than 0 and at most {limit}", param_hint=param_hint)
    return seconds
