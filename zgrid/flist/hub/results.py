"""What the hub client reports: pushes, pulls, listings, and progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FlistEntry", "OwnerEntry", "PullReport", "PushReport", "TransferProgress"]

TransferProgress = Callable[[int, int], None]
"""``on_progress(done, total)``, in blocks: after each block is handled (a push first
reports the blocks the hub already has)."""


@dataclass(frozen=True, slots=True)
class PushReport:
    owner: int
    name: str
    hash: str
    size: int
    url: str
    blocks: int  # distinct blocks the flist names
    uploaded: int  # of them, how many the hub lacked and got


@dataclass(frozen=True, slots=True)
class PullReport:
    path: Path
    hash: str
    size: int
    blocks: int = 0  # distinct blocks the flist names (0 without ``blocks_to``)
    copied: int = 0  # of them, how many were fetched from the hub


@dataclass(frozen=True, slots=True)
class FlistEntry:
    name: str
    hash: str
    size: int
    updated: int


@dataclass(frozen=True, slots=True)
class OwnerEntry:
    owner: int
    count: int
