"""Capacity in the grid's units and the compute/storage unit math of billing and farming.

cru counts logical cores; mru, sru and hru are bytes of memory, SSD and HDD; ipv4
counts public IPv4 addresses. CU and SU follow FORMATS.md and are exact
fractions so the ledger computes the same price on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from zgrid.types.fields import GIB

__all__ = ["Capacity", "compute_units", "decimal_text", "farming_units", "storage_units"]


@dataclass(frozen=True, slots=True)
class Capacity:
    """Resources a workload uses or a node offers."""

    cru: int = 0
    mru: int = 0
    sru: int = 0
    hru: int = 0
    ipv4: int = 0

    def __add__(self, other: Capacity) -> Capacity:
        return Capacity(
            cru=self.cru + other.cru,
            mru=self.mru + other.mru,
            sru=self.sru + other.sru,
            hru=self.hru + other.hru,
            ipv4=self.ipv4 + other.ipv4,
        )

    def __sub__(self, other: Capacity) -> Capacity:
        return Capacity(
            cru=self.cru - other.cru,
            mru=self.mru - other.mru,
            sru=self.sru - other.sru,
            hru=self.hru - other.hru,
            ipv4=self.ipv4 - other.ipv4,
        )

    def fits_in(self, available: Capacity) -> bool:
        """True when every resource of ``self`` is at most what ``available`` has."""
        return (
            self.cru <= available.cru
            and self.mru <= available.mru
            and self.sru <= available.sru
            and self.hru <= available.hru
            and self.ipv4 <= available.ipv4
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "cru": self.cru,
            "mru": self.mru,
            "sru": self.sru,
            "hru": self.hru,
            "ipv4": self.ipv4,
        }


def compute_units(capacity: Capacity) -> Fraction:
    """Billing CU = min(max(mru/4, cru/2), max(mru/8, cru), max(mru/2, cru/4)), mru in GiB."""
    mru = Fraction(capacity.mru, GIB)
    cru = Fraction(capacity.cru)
    return min(max(mru / 4, cru / 2), max(mru / 8, cru), max(mru / 2, cru / 4))


def storage_units(capacity: Capacity) -> Fraction:
    """SU = hru/1200 + sru/200, both in GiB."""
    return Fraction(capacity.hru, GIB) / 1200 + Fraction(capacity.sru, GIB) / 200


def farming_units(capacity: Capacity) -> tuple[Fraction, Fraction]:
    """Farming (CU, SU): CU = min((mru-1)/4, cru*2, sru/50), SU = hru/1200 + sru*0.8/200 (GiB)."""
    mru = Fraction(capacity.mru, GIB)
    sru = Fraction(capacity.sru, GIB)
    cu = max(Fraction(0), min((mru - 1) / 4, Fraction(capacity.cru * 2), sru / 50))
    su = Fraction(capacity.hru, GIB) / 1200 + sru * Fraction(4, 5) / 200
    return cu, su


def decimal_text(value: Fraction, places: int = 7) -> str:
    """An exact amount as a decimal string, rounded half up to ``places`` (trailing zeros cut)."""
    scale = 10**places
    scaled = (abs(value) * scale * 2 + 1) // 2
    whole, fraction = divmod(int(scaled), scale)
    sign = "-" if value < 0 and scaled else ""
    text = f"{sign}{whole}.{fraction:0{places}d}".rstrip("0").rstrip(".")
    return text
