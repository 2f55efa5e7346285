"""The ledger's economy in numbers: what a contract owes for a stretch of ledger time, the
staking discount, and how a payment is split (FORMATS.md "Ledger economics").

Pure: exact fractions throughout, one rounding per amount (down, so nobody is ever
charged a unit more than the formula says), and a split whose parts add up to the whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from zgrid.chain.units import UNITS_PER_TOKEN
from zgrid.types import Capacity, compute_units, storage_units

__all__ = [
    "BILLING_PERIOD",
    "CERTIFIED_MARKUP",
    "DISCOUNT_TIERS",
    "GB",
    "HOURS_PER_MONTH",
    "RENT_SHARE",
    "Prices",
    "Split",
    "discount_for_spend",
    "discount_percent",
    "node_contract_hourly",
    "period_cost",
    "rent_contract_hourly",
    "split_payment",
    "tokens_for",
    "traffic_usd",
]

BILLING_PERIOD = 3600  # seconds of ledger time between two bills of a contract
HOURS_PER_MONTH = 720  # the month the discount counts in
CERTIFIED_MARKUP = Fraction(5, 4)  # certified nodes cost 25% more
RENT_SHARE = Fraction(1, 2)  # a rent contract pays half the whole node's price
GB = 10**9  # traffic is priced per GB reported
# Months of the current spend rate the balance covers -> percent off, best first.
DISCOUNT_TIERS: tuple[tuple[Fraction, int], ...] = (
    (Fraction(18), 60),
    (Fraction(6), 40),
    (Fraction(3), 30),
    (Fraction(3, 2), 20),
)
# Percent of each payment: burned, to the farmer's twin, the validators, the foundation.
_SHARES = {"farmer": 50, "validators": 5, "foundation": 10}  # the rest (35) is burned


class Prices(Protocol):
    """What the numbers read of a pricing policy, units USD per hour (``nu``: per GB): the
    genesis's PricePolicy, or a client's copy of it read from the ledger's API."""

    @property
    def cu(self) -> int: ...
    @property
    def su(self) -> int: ...
    @property
    def nu(self) -> int: ...
    @property
    def ipu(self) -> int: ...


def node_contract_hourly(
    capacity: Capacity,
    *,
    public_ips: int,
    policy: Prices,
    certified: bool,
    on_rented_node: bool = False,
) -> Fraction:
    """Units USD per hour of a node contract using ``capacity`` with ``public_ips``.

    On a rented node the rent contract pays for the capacity: the node contract pays
    for its public IPs only (its traffic is billed apart, per GB).
    """
    if public_ips < 0:
        raise ValueError(f"public_ips must be 0 or more, got {public_ips}")
    price = Fraction(policy.ipu * public_ips)
    if not on_rented_node:
        price += policy.cu * compute_units(capacity) + policy.su * storage_units(capacity)
    return price * CERTIFIED_MARKUP if certified else price


def rent_contract_hourly(node: Capacity, *, policy: Prices, certified: bool) -> Fraction:
    """Units USD per hour of renting the whole node of ``node`` capacity."""
    whole = policy.cu * compute_units(node) + policy.su * storage_units(node)
    price = whole * RENT_SHARE
    return price * CERTIFIED_MARKUP if certified else price


def traffic_usd(traffic_bytes: int, policy: Prices) -> Fraction:
    """Units USD of ``traffic_bytes`` of network traffic at the policy's price per GB."""
    if traffic_bytes < 0:
        raise ValueError(f"traffic must be 0 bytes or more, got {traffic_bytes}")
    return Fraction(policy.nu * traffic_bytes, GB)


def tokens_for(usd_units: Fraction, token_price: int) -> int:
    """Token units for ``usd_units`` at ``token_price`` units USD per token, rounded down."""
    if token_price <= 0:
        raise ValueError(f"a token price is a positive number of units USD, got {token_price}")
    if usd_units < 0:
        raise ValueError(f"an amount owed is 0 or more, got {usd_units}")
    return int(usd_units * UNITS_PER_TOKEN / token_price)


def discount_percent(balance: int, hourly_tokens: Fraction) -> int:
    """Percent off for a twin whose ``balance`` (token units) covers that many months of
    spending ``hourly_tokens`` token units an hour; none when it spends nothing."""
    if balance < 0 or hourly_tokens < 0:
        raise ValueError("a balance and a spend rate are 0 or more")
    if hourly_tokens == 0:
        return 0
    months = Fraction(balance) / (hourly_tokens * HOURS_PER_MONTH)
    return next((percent for least, percent in DISCOUNT_TIERS if months >= least), 0)


def period_cost(
    hourly: Fraction, seconds: int, traffic_bytes: int, nu: int, token_price: int
) -> tuple[int, int]:
    """(units USD, token units) of ``seconds`` at ``hourly`` units USD an hour plus
    ``traffic_bytes`` at ``nu`` units USD per GB, at ``token_price``: both rounded down,
    once, in integers (what :func:`traffic_usd` and :func:`tokens_for` give together)."""
    if seconds < 0 or traffic_bytes < 0 or nu < 0 or hourly < 0:
        raise ValueError("seconds, traffic, prices are 0 or more")
    if token_price <= 0:
        raise ValueError(f"a token price is a positive number of units USD, got {token_price}")
    # usd = hourly·seconds/3600 + nu·bytes/GB, over one denominator
    denominator = hourly.denominator * BILLING_PERIOD * GB
    numerator = (
        hourly.numerator * seconds * GB + nu * traffic_bytes * hourly.denominator * BILLING_PERIOD
    )
    return numerator // denominator, numerator * UNITS_PER_TOKEN // (denominator * token_price)


def discount_for_spend(balance: int, spend_usd: int, token_price: int) -> int:
    """:func:`discount_percent` for a spend of ``spend_usd`` units USD an hour at
    ``token_price``, in integers: the same answer without building a fraction per bill."""
    if balance < 0 or spend_usd < 0 or token_price <= 0:
        raise ValueError("a balance, a spend rate and a token price are 0 or more")
    if not spend_usd:
        return 0
    # months = balance / (spend_usd · UNITS_PER_TOKEN / token_price · HOURS_PER_MONTH)
    have = balance * token_price
    month = spend_usd * UNITS_PER_TOKEN * HOURS_PER_MONTH
    for least, percent in DISCOUNT_TIERS:
        if have * least.denominator >= least.numerator * month:
            return percent
    return 0


@dataclass(frozen=True)
class Split:
    """Where a payment goes, in token units; the parts add up to the payment exactly."""

    burned: int
    farmer: int
    validators: int
    foundation: int

    @property
    def total(self) -> int:
        return self.burned + self.farmer + self.validators + self.foundation


def split_payment(amount: int) -> Split:
    """50% to the farmer's twin, 5% to the validators, 10% to the foundation, each rounded
    down; the rest (35% and every unit the rounding left) is burned."""
    if amount < 0:
        raise ValueError(f"a payment is 0 or more token units, got {amount}")
    farmer = amount * _SHARES["farmer"] // 100
    validators = amount * _SHARES["validators"] // 100
    foundation = amount * _SHARES["foundation"] // 100
    return Split(
        burned=amount - farmer - validators - foundation,
        farmer=farmer,
        validators=validators,
        foundation=foundation,
    )
