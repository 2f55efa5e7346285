"""Thirty days of ledger time over node, name and rent contracts with public IPs and traffic:
every bill checked against amounts this test computes from FORMATS.md "Ledger economics"
and the genesis prices, the supply checked after every block, farming rewards checked for
nodes with full, 96% and 90% uptime.

The test's own arithmetic (exact fractions, from FORMATS.md; the rounding rules zgrid
documents: amounts in tokens rounded down once per bill, each share of the split rounded
down and the rest burned) is written here again on purpose, apart from zgrid.chain.economy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from tests.chain.clocked import ClockedChain
from zgrid.chain import UNITS_PER_TOKEN, init_dev_chain, load_genesis, verify_chain
from zgrid.chain.genesis import FarmingPolicy, PricePolicy, load_validator_key
from zgrid.chain.records import Bill
from zgrid.identity import Identity

GIB = 1024**3
HOUR = 3600
DAY = 86400
START = 2_000_001_600  # a whole minute (and a multiple of the 1200 s block step)
STEP = 1200  # seconds of ledger time per block
UPTIME_EVERY = 2400
PERIOD = 30 * DAY
BOOTED = START - 5000  # every node booted before the chain started
HASH = "ab" * 32
SEALED = "c2VhbGVk"  # base64 of "sealed"


# --- FORMATS.md, "Ledger economics" -----------------------------------------------------------


def billing_cu(cru: int, mru: int) -> Fraction:
    m, c = Fraction(mru, GIB), Fraction(cru)
    return min(max(m / 4, c / 2), max(m / 8, c), max(m / 2, c / 4))


def billing_su(sru: int, hru: int) -> Fraction:
    return Fraction(hru, GIB) / 1200 + Fraction(sru, GIB) / 200


def farming_cu(cru: int, mru: int, sru: int) -> Fraction:
    return max(
        Fraction(0), min((Fraction(mru, GIB) - 1) / 4, Fraction(cru * 2), Fraction(sru, GIB) / 50)
    )


def farming_su(sru: int, hru: int) -> Fraction:
    return Fraction(hru, GIB) / 1200 + Fraction(sru, GIB) * Fraction(8, 10) / 200


def tier(months: Fraction | None) -> int:
    if months is None:
        return 0
    for least, percent in ((18, 60), (6, 40), (3, 30), (Fraction(3, 2), 20)):
        if months >= least:
            return percent
    return 0


def split(amount: int) -> dict[str, int]:
    farmer, validators, foundation = amount * 50 // 100, amount * 5 // 100, amount * 10 // 100
    return {
        "burned": amount - farmer - validators - foundation,
        "farmer": farmer,
        "validators": validators,
        "foundation": foundation,
    }


# --- the scenario -------------------------------------------------------------------------------


def caps(cru: int = 0, mru: int = 0, sru: int = 0, hru: int = 0) -> dict[str, int]:
    return {"cru": cru, "mru": mru, "sru": sru, "hru": hru}


@dataclass
class Model:
    """What this test expects of one contract."""

    kind: str
    twin: str  # the twin's account
    node: int = 0
    used: dict[str, int] = field(default_factory=caps)
    ips: int = 0
    certified: bool = False
    rented: bool = False  # a node contract on a node its twin rents
    whole_node: dict[str, int] = field(default_factory=caps)  # for a rent contract
    traffic: int = 0  # reported, not billed yet
    last_bill: int = 0  # period_end of its last bill, or when it was created
    hourly: int = 0  # units USD per hour of its last bill (the twin's spend counts these)

    def hourly_price(self, prices: PricePolicy) -> Fraction:
        if self.kind == "name":
            return Fraction(prices.unique_name)
        if self.kind == "rent":
            whole = self.whole_node
            price = (
                prices.cu * billing_cu(whole["cru"], whole["mru"])
                + prices.su * billing_su(whole["sru"], whole["hru"])
            ) / 2
        else:
            price = Fraction(prices.ipu * self.ips)
            if not self.rented:
                price += prices.cu * billing_cu(self.used["cru"], self.used["mru"])
                price += prices.su * billing_su(self.used["sru"], self.used["hru"])
        return price * Fraction(5, 4) if self.certified else price


@dataclass
class Uptime:
    """A node's uptime reports as this test plans them, and the credit it expects."""

    node: Identity
    node_id: int
    down: tuple[int, int] | None = None  # (from, to): no reports; it reboots at ``to``
    boot: int = BOOTED
    last: int = 0
    last_uptime: int = 0
    credited: int = 0

    def due(self, now: int) -> bool:
        if self.down and self.down[0] <= now < self.down[1]:
            return False
        return (now - START) % UPTIME_EVERY == 0

    def report(self, chain: ClockedChain, now: int, period_start: int) -> None:
        if self.down and now >= self.down[1] > self.boot:
            self.boot = self.down[1] - 100  # it came back up just before this report
        uptime = now - self.boot
        chain.submit(self.node, "nodes.report_uptime", {"uptime": uptime, "timestamp": now})
        # The credit rules zgrid documents (zgrid.chain.domains.farming), at most 2460 s each.
        if not self.last or self.last < period_start:
            credit = min(now - period_start, uptime)
        elif abs((uptime - self.last_uptime) - (now - self.last)) <= 60:
            credit = uptime - self.last_uptime
        else:  # rebooted
            credit = uptime
        if period_start == START:  # the first farming period, the one this test checks
            self.credited += min(credit, 2460)
        self.last, self.last_uptime = now, uptime


def test_thirty_days_of_bills_rewards_and_supply(memory_dir: Path) -> None:
    data = memory_dir / "chain"
    init_dev_chain(data)
    genesis = load_genesis(data)
    prices = genesis.price_policies[0]
    farming = genesis.farming_policies[0]
    price = genesis.token_price
    chain = ClockedChain(data, START)
    try:
        _run(chain, data, prices, farming, price)
    finally:
        chain.close()
    report = verify_chain(data)
    assert report.supply == genesis.supply + report.minted - report.burned
    assert report.minted > 0 and report.burned > 0


def _run(
    chain: ClockedChain, data: Path, prices: PricePolicy, farming: FarmingPolicy, price: int
) -> None:
    state, genesis = chain.ledger.state, chain.ledger.genesis
    validator = load_validator_key(data)
    chain.submit(validator, "accounts.faucet", {"amount": UNITS_PER_TOKEN})
    farmer_a, _ = chain.twin(100)
    farmer_b, _ = chain.twin(100)
    farm_a = chain.farm(farmer_a, "farm-a", ["203.0.113.10", "203.0.113.11", "203.0.113.12"])
    farm_b = chain.farm(farmer_b, "farm-b")
    chain.submit(validator, "farms.set_certification", {"farm_id": farm_b, "certification": "gold"})
    big = caps(16, 64 * GIB, 1024 * GIB, 2048 * GIB)
    rented = caps(4, 16 * GIB, 200 * GIB, 1000 * GIB)
    node1, node1_id = chain.node(farmer_a, farm_a, big)
    node2, node2_id = chain.node(farmer_b, farm_b, big)
    node3, node3_id = chain.node(farmer_a, farm_a, rented)

    # The same contract for two twins: one whose balance covers under 1.5 months, one 20.
    web = caps(2, 4 * GIB, 50 * GIB)
    web_hourly = prices.cu * billing_cu(2, 4 * GIB) + prices.su * billing_su(50 * GIB, 0)
    web_hourly += prices.ipu
    dep1_spend = (
        web_hourly  # c1
        + prices.cu * billing_cu(1, 2 * GIB)  # c1b, before it grows
        + prices.unique_name
        + (prices.cu * billing_cu(4, 8 * GIB) + prices.su * billing_su(100 * GIB, 0))
        * Fraction(5, 4)
    )
    month_tokens = lambda usd_per_hour: usd_per_hour * 720 * UNITS_PER_TOKEN / price  # noqa: E731
    dep1_tokens = int(month_tokens(dep1_spend) * Fraction(13, 10) / UNITS_PER_TOKEN)
    dep2_tokens = int(month_tokens(web_hourly) * 20 / UNITS_PER_TOKEN) + 1
    dep1, _ = chain.twin(dep1_tokens)
    dep2, _ = chain.twin(dep2_tokens)
    dep3, _ = chain.twin(4000)

    def node_contract(who: Identity, node_id: int, capacity: dict[str, int], ips: int) -> int:
        args = {
            "node_id": node_id,
            "deployment_hash": HASH,
            "sealed_deployment": SEALED,
            "capacity": capacity,
            "public_ips": ips,
        }
        return int(chain.submit(who, "contracts.create_node_contract", args)["contract_id"])

    models: dict[int, Model] = {}
    node_of: dict[int, Identity] = {}
    now = chain.now
    c1 = node_contract(dep1, node1_id, web, 1)
    c2 = node_contract(dep2, node1_id, web, 1)
    c1b = node_contract(dep1, node1_id, caps(2, 8 * GIB, 10 * GIB), 0)
    c4 = node_contract(dep1, node2_id, caps(4, 8 * GIB, 100 * GIB), 0)
    name = int(
        chain.submit(dep1, "contracts.create_name_contract", {"name": "hello"})["contract_id"]
    )
    r3 = int(
        chain.submit(dep3, "contracts.create_rent_contract", {"node_id": node3_id})["contract_id"]
    )
    c3 = node_contract(dep3, node3_id, caps(2, 4 * GIB, 20 * GIB), 1)
    models[c1] = Model("node", dep1.address, node1_id, web, ips=1)
    models[c2] = Model("node", dep2.address, node1_id, web, ips=1)
    models[c1b] = Model("node", dep1.address, node1_id, caps(1, 2 * GIB))
    models[c4] = Model("node", dep1.address, node2_id, caps(4, 8 * GIB, 100 * GIB), certified=True)
    models[name] = Model("name", dep1.address)
    models[r3] = Model("rent", dep3.address, node3_id, whole_node=rented)
    models[c3] = Model(
        "node", dep3.address, node3_id, caps(2, 4 * GIB, 20 * GIB), ips=1, rented=True
    )
    node_of.update({c1: node1, c2: node1, c1b: node1, c4: node2, c3: node3})
    for contract_id, model in models.items():
        model.last_bill = now
        # A twin's spend counts each contract's price from the start (not from its bill).
        model.hourly = int(model.hourly_price(prices))
        if model.kind == "node":
            chain.submit(
                node_of[contract_id],
                "contracts.report_resources",
                {"contract_id": contract_id, "used": model.used},
            )
    uptimes = {
        node1_id: Uptime(node1, node1_id),
        node2_id: Uptime(node2, node2_id, down=(START + 10 * DAY, START + 10 * DAY + 96_000)),
        node3_id: Uptime(node3, node3_id, down=(START + 20 * DAY, START + 20 * DAY + 252_000)),
    }
    for uptime in uptimes.values():
        uptime.report(chain, chain.now, START)

    twins = {dep1.address, dep2.address, dep3.address}
    balances = {address: chain.free(address) for address in twins}
    received: dict[str, int] = {}
    burned_by_bills = 0
    bills_checked: dict[int, int] = dict.fromkeys(models, 0)
    farmer_account = {farm_a: farmer_a.address, farm_b: farmer_b.address}
    farm_of = {node1_id: farm_a, node2_id: farm_b, node3_id: farm_a}
    ip_seconds = dict.fromkeys(uptimes, 0)
    traffic_of_node = dict.fromkeys(uptimes, 0)
    rewards_seen: dict[int, dict[str, Any]] = {}
    made: dict[tuple[int, int], Bill] = {}

    while chain.now < START + PERIOD + HOUR:
        events = chain.step(STEP)
        now = chain.now
        # Bills come first in a block, before any transaction: each twin's balance is what
        # the last block left, less the bills already made in this one.
        for event in events:
            if event.name in {"FarmingRewardPaid", "FarmingRewardWithheld"}:
                rewards_seen[event.data["node_id"]] = event.data
                continue
            if event.name != "ContractBilled":
                continue
            contract_id = event.data["contract_id"]
            model = models[contract_id]
            # Every bill is its event; a bill paid at once is kept nowhere else.
            assert state.bills.get(f"{contract_id}:{event.data['number']}") is None
            bill = Bill.model_validate({key: event.data[key] for key in Bill.model_fields})
            made[(contract_id, bill.number)] = bill
            assert (bill.period_start, bill.period_end) == (model.last_bill, now)
            assert bill.period_end - bill.period_start == HOUR
            hourly = model.hourly_price(prices)
            usd = hourly * (now - model.last_bill) / HOUR
            usd += Fraction(model.traffic * prices.nu, 10**9)
            tokens = int(usd * UNITS_PER_TOKEN / price)
            # The twin's spend: every live contract's hourly price now.
            assert model.hourly == int(hourly)
            spend = sum(m.hourly for m in models.values() if m.twin == model.twin)
            spend_tokens = Fraction(spend) * UNITS_PER_TOKEN / price
            months = Fraction(balances[model.twin]) / (spend_tokens * 720) if spend else None
            discount = tier(months)
            amount = tokens * (100 - discount) // 100
            assert (bill.usd, bill.tokens, bill.discount, bill.amount) == (
                int(usd),
                tokens,
                discount,
                amount,
            ), f"bill {bill.number} of contract {contract_id}"
            assert bill.traffic == model.traffic and bill.token_price == price
            assert bill.status == "paid"
            parts = split(amount)
            assert bill.split.model_dump() == parts
            balances[model.twin] -= amount
            farmer = (
                prices.certified_sales_account
                if model.kind == "name"
                else farmer_account[farm_of[model.node]]
            )
            for account, part in (
                (farmer, parts["farmer"]),
                (genesis.validator, parts["validators"]),
                (prices.foundation_account, parts["foundation"]),
            ):
                received[account] = received.get(account, 0) + part
            burned_by_bills += parts["burned"]
            if model.kind == "node" and now < START + PERIOD:
                ip_seconds[model.node] += model.ips * (now - model.last_bill)
                traffic_of_node[model.node] += model.traffic
            model.traffic = 0
            model.last_bill = now
            bills_checked[contract_id] += 1

        # Transactions of this block: uptime, traffic, one change of used capacity.
        for uptime in uptimes.values():
            if uptime.due(now):
                period_start = START if now < START + PERIOD else START + PERIOD
                uptime.report(chain, now, period_start)
        if (now - START) % (6 * HOUR) == 0:
            for contract_id, gigabytes in ((c1, 3), (c2, 3), (c3, 7)):
                amount = gigabytes * 10**9 + 12345
                chain.submit(
                    node_of[contract_id],
                    "contracts.report_traffic",
                    {"contract_id": contract_id, "bytes": amount},
                )
                models[contract_id].traffic += amount
        if now == START + 10 * DAY:
            models[c1b].used = caps(2, 8 * GIB, 10 * GIB)
            models[c1b].hourly = int(models[c1b].hourly_price(prices))
            chain.submit(
                node1, "contracts.report_resources", {"contract_id": c1b, "used": models[c1b].used}
            )
        for address in twins:
            balances[address] = chain.free(address)
        supply = chain.supply()
        assert state.total_balances() == supply.total, f"block at {now}"
    chain.seal()

    # Every contract was billed every hour of the 30 days and an hour more.
    assert set(bills_checked.values()) == {PERIOD // HOUR + 1}, bills_checked
    # The staked twin paid 60% less for the same contract, bill after bill.
    for number in range(1, PERIOD // HOUR + 2):
        first, second = made[(c1, number)], made[(c2, number)]
        assert (first.discount, second.discount) == (0, 60)
        assert first.tokens == second.tokens
        assert second.amount == first.tokens * 40 // 100

    # Who received what: the foundation and validator hold only their shares.
    assert chain.free(prices.foundation_account) == received[prices.foundation_account]
    assert chain.free(genesis.validator) == (
        UNITS_PER_TOKEN - chain.fees[genesis.validator] + received[genesis.validator]
    )
    assert chain.free(prices.certified_sales_account) == received[prices.certified_sales_account]

    # Farming: full uptime and 96% are paid as the policy says, 90% is not.
    minted = 0
    for node_id, uptime in uptimes.items():
        node = state.nodes.get(node_id)
        assert node is not None
        reward = state.rewards.get(f"{node_id}:1")
        assert reward is not None
        permille = min(1000, uptime.credited * 1000 // PERIOD)
        assert reward.uptime_permille == permille, node_id
        resources = node.resources
        usd = (
            farming_cu(resources.cru, resources.mru, resources.sru) * farming.cu
            + farming_su(resources.sru, resources.hru) * farming.su
            + Fraction(traffic_of_node[node_id], 10**9) * farming.nu
            + Fraction(ip_seconds[node_id], PERIOD) * farming.ipv4
        ) * Fraction(permille, 1000)
        expected = int(usd * UNITS_PER_TOKEN / price) if permille >= 950 else 0
        assert (reward.ip_seconds, reward.traffic) == (
            ip_seconds[node_id],
            traffic_of_node[node_id],
        )
        assert reward.tokens == expected, node_id
        assert rewards_seen[node_id]["tokens"] == expected
        minted += expected
    assert 950 <= state.rewards.get(f"{node2_id}:1").uptime_permille < 970  # type: ignore[union-attr]
    assert 890 <= state.rewards.get(f"{node3_id}:1").uptime_permille < 910  # type: ignore[union-attr]
    assert state.rewards.get(f"{node3_id}:1").tokens == 0  # type: ignore[union-attr]
    assert "under the 95%" in state.rewards.get(f"{node3_id}:1").reason  # type: ignore[union-attr]
    assert state.rewards.get(f"{node1_id}:1").tokens > 0  # type: ignore[union-attr]

    # The farmers got their shares of the bills and their rewards, less their fees.
    for farm_id, account in farmer_account.items():
        start = 100 * UNITS_PER_TOKEN
        rewarded = sum(r.tokens for r in state.rewards.values() if r.farm_id == farm_id)
        assert (
            chain.free(account) == start - chain.fees[account] + received.get(account, 0) + rewarded
        )

    # Supply: genesis + minted − burned, burned being every fee and the burned shares.
    supply = chain.supply()
    assert supply.minted == minted
    assert supply.burned == sum(chain.fees.values()) + burned_by_bills
    assert state.total_balances() == supply.total
