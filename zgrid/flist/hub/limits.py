"""What a hub accepts: the sizes and names both the server and the client check."""

from __future__ import annotations

import re

__all__ = ["MAX_BLOCK_BYTES", "MAX_FLIST_BYTES", "MAX_MISSING_IDS", "NAME_PATTERN"]

MAX_BLOCK_BYTES = 1 << 20  # a block holds at most 512 KiB of data, compressed and sealed
MAX_FLIST_BYTES = 64 << 20  # the .fl metadata file
MAX_MISSING_IDS = 10_000  # ids per POST /blocks/missing
NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")  # conventionally ending in .fl
