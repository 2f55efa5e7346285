"""0-db's command table order and its name matching (a case-insensitive prefix, first wins)."""

from __future__ import annotations

__all__ = ["NAMES", "match"]

# The order decides which command a prefix means: "S" is SET, "M" is MIRROR, "D" is DATA.
NAMES: tuple[str, ...] = (
    "*", "WAIT", "MIRROR", "MASTER", "PING", "TIME", "AUTH", "HOOKS", "INDEX", "DATA",
    "SET", "SETX", "GET", "MGET", "DEL", "EXISTS", "CHECK", "SCAN", "SCANX", "RSCAN", "KSCAN",
    "HISTORY", "KEYCUR", "LENGTH", "KEYTIME", "INFO", "STOP", "DBSIZE", "NSNEW", "NSDEL",
    "NSLIST", "NSSET", "NSINFO", "NSJUMP", "SELECT", "RELOAD", "FLUSH",
)  # fmt: skip
_ENCODED = tuple(name.encode() for name in NAMES)
_cache: dict[bytes, str | None] = {}


def match(name: bytes) -> str | None:
    """The table name ``name`` selects, or None (0-db answers "Command not supported")."""
    found = _cache.get(name, "")
    if found != "":
        return found
    if b"\0" in name:
        head = name.split(b"\0", 1)[0].upper()
        result = next(
            (text for text, raw in zip(NAMES, _ENCODED, strict=True) if raw == head), None
        )
    else:
        upper = name.upper()
        result = next(
            (text for text, raw in zip(NAMES, _ENCODED, strict=True) if raw.startswith(upper)), None
        )
    if len(_cache) < 4096:  # the names clients really use; garbage is not remembered forever
        _cache[name] = result
    return result
