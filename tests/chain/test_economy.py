"""The economy's numbers, against figures worked out by hand from FORMATS.md."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zgrid.chain.economy import (
    discount_percent,
    node_contract_hourly,
    rent_contract_hourly,
    split_payment,
    tokens_for,
    traffic_usd,
)
from zgrid.chain.genesis import PricePolicy
from zgrid.types import GIB, Capacity

ADDRESS = "ab" * 32
POLICY = PricePolicy(
    id=1,
    name="default",
    cu=100_000,
    su=50_000,
    nu=15_000,
    ipu=40_000,
    unique_name=2_500,
    domain_name=5_000,
    foundation_account=ADDRESS,
    certified_sales_account=ADDRESS,
)


def test_a_node_contract_costs_cu_su_and_ips_per_hour() -> None:
    # 2 cores, 4 GiB: CU = min(max(1, 1), max(0.5, 2), max(2, 0.5)) = 1;
    # 100 GiB SSD, 1200 GiB HDD: SU = 1 + 0.5 = 1.5.
    used = Capacity(cru=2, mru=4 * GIB, sru=100 * GIB, hru=1200 * GIB)
    hourly = node_contract_hourly(used, public_ips=1, policy=POLICY, certified=False)
    assert hourly == 100_000 * 1 + 50_000 * Fraction(3, 2) + 40_000
    certified = node_contract_hourly(used, public_ips=1, policy=POLICY, certified=True)
    assert certified == hourly * Fraction(5, 4)
    rented = node_contract_hourly(
        used, public_ips=1, policy=POLICY, certified=False, on_rented_node=True
    )
    assert rented == 40_000  # the rent contract pays for the capacity
    with pytest.raises(ValueError, match="public_ips"):
        node_contract_hourly(used, public_ips=-1, policy=POLICY, certified=False)


def test_a_rent_contract_pays_half_the_whole_node() -> None:
    node = Capacity(cru=8, mru=32 * GIB, sru=1000 * GIB, hru=0)
    # CU = min(max(8, 4), max(4, 8), max(16, 2)) = 8; SU = 5.
    assert rent_contract_hourly(node, policy=POLICY, certified=False) == (
        (100_000 * 8 + 50_000 * 5) / Fraction(2)
    )


def test_traffic_and_tokens() -> None:
    assert traffic_usd(3 * 10**9, POLICY) == 45_000
    assert traffic_usd(1, POLICY) == Fraction(15_000, 10**9)
    # 0.1 USD a token (1,000,000 units USD): 45,000 units USD = 0.0045 USD = 0.045 tokens.
    assert tokens_for(Fraction(45_000), 1_000_000) == 450_000
    assert tokens_for(Fraction(1, 3), 1_000_000) == 3  # rounded down, never up
    with pytest.raises(ValueError, match="token price"):
        tokens_for(Fraction(1), 0)


@pytest.mark.parametrize(
    ("months", "percent"),
    [(0, 0), (Fraction(149, 100), 0), (Fraction(3, 2), 20), (3, 30), (6, 40), (17, 40), (18, 60)],
)
def test_the_discount_follows_the_months_the_balance_covers(
    months: Fraction | int, percent: int
) -> None:
    hourly = Fraction(1_000)
    balance = int(hourly * 720 * Fraction(months))
    assert discount_percent(balance, hourly) == percent


def test_no_spending_no_discount() -> None:
    assert discount_percent(10**12, Fraction(0)) == 0


@given(st.integers(min_value=0, max_value=2**62))
def test_a_split_accounts_for_every_unit(amount: int) -> None:
    split = split_payment(amount)
    assert split.total == amount
    assert split.farmer == amount * 50 // 100
    assert split.validators == amount * 5 // 100
    assert split.foundation == amount * 10 // 100
    assert amount * 35 // 100 <= split.burned <= amount * 35 // 100 + 3


def test_a_split_of_one_hundred_is_the_percentages() -> None:
    split = split_payment(100)
    assert (split.burned, split.farmer, split.validators, split.foundation) == (35, 50, 5, 10)
    assert split_payment(7).burned == 7 - 3 - 0 - 0
