"""What a hub accepts: the sizes and names both the server and the client check, and
how many uploads it takes at once."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "MAX_BLOCK_BYTES",
    "MAX_FLIST_BYTES",
    "MAX_MISSING_IDS",
    "NAME_PATTERN",
    "UploadLimits",
]

MAX_BLOCK_BYTES = 1 << 20  # a block holds at most 512 KiB of data, compressed and sealed
MAX_FLIST_BYTES = 64 << 20  # the .fl metadata file
MAX_MISSING_IDS = 10_000  # ids per POST /blocks/missing
NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")  # conventionally ending in .fl


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadLimits:
    """Uploads a hub takes at once (429 past a twin's share, 503 past the total), how long
    a body may stall, and how many pushed flists are checked at a time."""

    flists_per_twin: int = 2
    flists_total: int = 8
    blocks_per_twin: int = 32
    blocks_total: int = 256
    body_idle_timeout: float = 30.0
    checks: int = 2  # worker processes checking pushed flists
