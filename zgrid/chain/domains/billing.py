"""Billing: every live contract pays, once per billing period of ledger time, for what it
used since its last bill; what it cannot pay it owes through a grace period.

A bill charges the seconds that really passed since the contract's last one at the price
of that moment (FORMATS.md "Ledger economics"): a node contract for the capacity its
node reported, its public IPs and the traffic reported since; a rent contract half of the
whole node; a name contract the unique-name price. Certified farms cost 25% more. The
amount in tokens (at the oracle's price, rounded down) is lowered by the twin's staking
discount, computed from its balance and the hourly spend of all its contracts, and paid
out as :func:`zgrid.chain.economy.split_payment` says: 35% burned, 50% to the farmer's
twin (for a name contract, the policy's sales account), 5% to the validator, 10% to the
foundation.

A twin that cannot pay a bill puts the contract in its grace period: the bill is owed,
the node pauses the workloads, later bills add to what is owed. A top-up (a transfer or
faucet call to the twin's account) or a later bill that can pay everything owed ends it;
after :data:`GRACE_PERIOD` of ledger time the contract is deleted for lack of funds,
which releases its public IPs and its name. Grace-period hours are billed like others:
the node still holds the capacity for the contract.

The work is the contracts due in a block (zgrid.chain.domains.schedule), never a scan.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from zgrid.chain import economy
from zgrid.chain.domains import money
from zgrid.chain.domains.base import LedgerContext
from zgrid.chain.domains.schedule import schedule
from zgrid.chain.genesis import Genesis, PricePolicy
from zgrid.chain.records import Bill, Contract, Node, Split, Twin
from zgrid.chain.tables import LedgerState, bill_key
from zgrid.chain.units import MAX_AMOUNT, U64_MAX, UNITS_PER_TOKEN
from zgrid.types import Capacity

__all__ = [
    "GRACE_PERIOD",
    "ITEM",
    "MAX_TRAFFIC_REPORT",
    "Discount",
    "bill_contract",
    "forgive",
    "grace_expired",
    "reprice",
    "settle_debts",
    "start_billing",
    "stop_billing",
    "twin_discount",
]

GRACE_PERIOD = 14 * 86400  # seconds of ledger time an unpaid contract is kept
MAX_TRAFFIC_REPORT = 10**15  # bytes in one report: a petabyte an hour is no real node
ITEM = "bill"


def _item(contract_id: int) -> str:
    return f"{ITEM}:{contract_id}"


def start_billing(ctx: LedgerContext, contract: Contract) -> Contract:
    """The new contract's billing fields, its first bill scheduled a period from now."""
    due = ctx.timestamp + economy.BILLING_PERIOD
    schedule(ctx.state, due, _item(contract.id))
    started = contract.model_copy(update={"billed_until": ctx.timestamp, "next_bill": due})
    return reprice(ctx, started)


def reprice(ctx: LedgerContext, contract: Contract) -> Contract:
    """``contract`` with its hourly price as of now, and its twin's spend following it
    (the discount counts the spend of every live contract, also ones not billed yet)."""
    hourly = _capped(hourly_price(ctx, contract)[0])
    if hourly == contract.hourly:
        return contract
    twin = ctx.state.twins.get(contract.twin_id)
    if twin is not None:
        spend = min(MAX_AMOUNT, max(0, twin.spend - contract.hourly + hourly))
        ctx.state.twins.put(twin.id, twin.model_copy(update={"spend": spend}))
    return contract.model_copy(update={"hourly": hourly})


def stop_billing(ctx: LedgerContext, contract: Contract) -> None:
    """Take an ending contract out of its twin's spend and grace list (its scheduled bill
    finds it deleted and does nothing)."""
    twin = ctx.state.twins.get(contract.twin_id)
    if twin is not None:
        grace = [cid for cid in twin.grace if cid != contract.id]
        if contract.hourly or grace != twin.grace:
            ctx.state.twins.put(
                twin.id,
                twin.model_copy(
                    update={"spend": max(0, twin.spend - contract.hourly), "grace": grace}
                ),
            )


@dataclass(frozen=True)
class _Payees:
    farmer: str
    policy: PricePolicy


def _capacity(resources: Any) -> Capacity:
    return Capacity(cru=resources.cru, mru=resources.mru, sru=resources.sru, hru=resources.hru)


def _node_terms(ctx: LedgerContext, node: Node | None) -> tuple[PricePolicy, bool, str]:
    """The node's farm's price policy, whether it is certified, and its farmer's account."""
    default = ctx.genesis.price_policies[0]
    farm = None if node is None else ctx.state.farms.get(node.farm_id)
    if farm is None:
        return default, False, default.certified_sales_account
    policy = ctx.genesis.price_policy(farm.pricing_policy_id) or default
    farmer = ctx.state.twins.get(farm.twin_id)
    account = policy.certified_sales_account if farmer is None else farmer.account
    return policy, farm.certification == "gold", account


def hourly_price(ctx: LedgerContext, contract: Contract) -> tuple[Fraction, _Payees, Node | None]:
    """Units USD an hour of ``contract`` costs now, who its payment goes to, and its node."""
    if contract.type == "name":
        policy = ctx.genesis.price_policies[0]
        return Fraction(policy.unique_name), _Payees(policy.certified_sales_account, policy), None
    node = ctx.state.nodes.get(contract.node_id)
    policy, certified, farmer = _node_terms(ctx, node)
    payees = _Payees(farmer, policy)
    if node is None:
        return Fraction(0), payees, None
    if contract.type == "rent":
        price = economy.rent_contract_hourly(
            _capacity(node.resources), policy=policy, certified=certified
        )
        return price, payees, node
    used = contract.used
    price = _node_hourly(
        (used.cru, used.mru, used.sru, used.hru),
        len(contract.public_ips),
        policy,
        certified,
        bool(node.rented_by),
    )
    return price, payees, node


@functools.lru_cache(maxsize=4096)
def _node_hourly(
    used: tuple[int, int, int, int],
    public_ips: int,
    policy: PricePolicy,
    certified: bool,
    rented: bool,
) -> Fraction:
    # Pure, and most contracts share a few sizes: computed once per size, not per bill.
    cru, mru, sru, hru = used
    return economy.node_contract_hourly(
        Capacity(cru=cru, mru=mru, sru=sru, hru=hru),
        public_ips=public_ips,
        policy=policy,
        certified=certified,
        on_rented_node=rented,
    )


@dataclass(frozen=True)
class Discount:
    """A twin's staking discount now: its balance covers ``months`` of its hourly spend."""

    percent: int
    balance: int
    spend_usd: int  # units USD per hour, its live contracts together
    spend_tokens: Fraction  # token units per hour at the price in force
    months: Fraction | None  # None: it spends nothing


def twin_discount(state: LedgerState, genesis: Genesis, twin: Twin) -> Discount:
    balance = money.free_balance(state, twin.account)
    price = money.token_price(state, genesis)
    spend_tokens = Fraction(twin.spend) * UNITS_PER_TOKEN / price
    months = (
        None if not spend_tokens else Fraction(balance) / (spend_tokens * economy.HOURS_PER_MONTH)
    )
    percent = economy.discount_for_spend(balance, twin.spend, price)
    return Discount(percent, balance, twin.spend, spend_tokens, months)


def _transfer_split(ctx: LedgerContext, payer: str, payees: _Payees, amount: int) -> Split:
    """Move ``amount`` from ``payer`` (who has enough) as the split says; returns the split."""
    parts = economy.split_payment(amount)
    money.take(ctx.state, payer, amount)
    ctx.count_burned(parts.burned)
    ctx.pay_out(payees.farmer, parts.farmer)
    ctx.pay_out(ctx.genesis.validator, parts.validators)
    ctx.pay_out(payees.policy.foundation_account, parts.foundation)
    return Split(
        burned=parts.burned,
        farmer=parts.farmer,
        validators=parts.validators,
        foundation=parts.foundation,
    )


def _pay(ctx: LedgerContext, payer: str, payees: _Payees, bill: Bill) -> Bill:
    """Pay an owed ``bill`` from ``payer`` (who has enough) as the split says."""
    split = _transfer_split(ctx, payer, payees, bill.amount)
    paid = bill.model_copy(update={"status": "paid", "paid_at": ctx.timestamp, "split": split})
    ctx.state.bills.put(bill_key(bill.contract_id, bill.number), paid)
    return paid


def _owed_bills(ctx: LedgerContext, contract: Contract) -> list[Bill]:
    start = contract.first_owed_bill or contract.bills + 1
    found = (
        ctx.state.bills.get(bill_key(contract.id, n)) for n in range(start, contract.bills + 1)
    )
    return [bill for bill in found if bill is not None and bill.status == "owed"]


def _clear_debt(ctx: LedgerContext, contract: Contract, payer: str, payees: _Payees) -> Contract:
    """Pay every bill the contract owes (the payer has enough) and end its grace period."""
    for bill in _owed_bills(ctx, contract):
        _pay(ctx, payer, payees, bill)
    ctx.emit(
        "ContractGracePeriodEnded",
        contract_id=contract.id,
        twin_id=contract.twin_id,
        node_id=contract.node_id,
        paid=contract.owed,
    )
    twin = ctx.state.twins.get(contract.twin_id)
    if twin is not None and contract.id in twin.grace:
        grace = [cid for cid in twin.grace if cid != contract.id]
        ctx.state.twins.put(twin.id, twin.model_copy(update={"grace": grace}))
    return contract.model_copy(
        update={"state": "created", "owed": 0, "first_owed_bill": 0, "grace_since": 0}
    )


def forgive(ctx: LedgerContext, contract: Contract) -> Contract:
    """Mark what an ending contract owes unpaid; returns it owing nothing."""
    for bill in _owed_bills(ctx, contract):
        ctx.state.bills.put(
            bill_key(contract.id, bill.number), bill.model_copy(update={"status": "unpaid"})
        )
    return contract.model_copy(update={"owed": 0})


def _capped(value: Fraction) -> int:
    return min(MAX_AMOUNT, int(value))


def grace_expired(contract: Contract, now: int) -> bool:
    return contract.state == "grace_period" and now - contract.grace_since >= GRACE_PERIOD


def bill_contract(ctx: LedgerContext, contract: Contract, *, final: bool = False) -> Contract:
    """Bill ``contract`` up to now and store it; ``final`` for a contract that is ending.

    Returns the stored contract. Whether its grace period ran out is the caller's to ask
    (:func:`grace_expired`): ending a contract is the contracts domain's work.
    """
    state, now = ctx.state, ctx.timestamp
    seconds = max(0, now - contract.billed_until)
    twin = state.twins.get(contract.twin_id)
    hourly, payees, node = hourly_price(ctx, contract)
    usd = hourly * seconds / economy.BILLING_PERIOD
    traffic = contract.traffic if contract.type == "node" else 0
    if traffic:
        usd += economy.traffic_usd(traffic, payees.policy)
    hourly_units = 0 if final else _capped(hourly)
    update: dict[str, Any] = {"billed_until": now, "traffic": 0, "hourly": hourly_units}
    if twin is not None and hourly_units != contract.hourly:
        spend = min(MAX_AMOUNT, max(0, twin.spend - contract.hourly + hourly_units))
        twin = twin.model_copy(update={"spend": spend})
        state.twins.put(twin.id, twin)
    if node is not None and contract.type == "node" and (traffic or contract.public_ips):
        state.nodes.put(
            node.id,
            node.model_copy(
                update={
                    "period_traffic": min(U64_MAX, node.period_traffic + traffic),
                    "period_ip_seconds": min(
                        U64_MAX, node.period_ip_seconds + len(contract.public_ips) * seconds
                    ),
                }
            ),
        )
    price = money.token_price(state, ctx.genesis)
    # Capacity near 64 bits prices past anything a ledger holds: such a bill is capped
    # (nobody can pay it anyway, so the contract goes into its grace period).
    tokens = min(MAX_AMOUNT, economy.tokens_for(usd, price))
    if tokens and twin is not None:
        _charge(ctx, contract, twin, payees, Fraction(usd), price, tokens, traffic, update, final)
    if final and (update.get("owed") or contract.owed):
        contract = forgive(ctx, contract.model_copy(update=update))  # nothing left to hold
    else:
        if not final:
            due = contract.next_bill + economy.BILLING_PERIOD
            update["next_bill"] = due if due > now else now + economy.BILLING_PERIOD
            schedule(state, update["next_bill"], _item(contract.id))
        contract = contract.model_copy(update=update)
    state.contracts.put(contract.id, contract)
    return contract


def _charge(  # noqa: PLR0917  (the one place a bill is made; its inputs are all needed)
    ctx: LedgerContext,
    contract: Contract,
    twin: Twin,
    payees: _Payees,
    usd: Fraction,
    price: int,
    tokens: int,
    traffic: int,
    update: dict[str, Any],
    final: bool,
) -> None:
    """Make the bill of ``tokens`` and pay it, or owe it; the contract's changes go into
    ``update``."""
    state, now = ctx.state, ctx.timestamp
    balance = money.free_balance(state, twin.account)
    discount = economy.discount_for_spend(balance, twin.spend, price)
    amount = tokens * (100 - discount) // 100
    number = contract.bills + 1
    update["bills"] = number
    in_grace = contract.state == "grace_period"
    owed = contract.owed + amount if in_grace else amount
    settles = balance >= owed
    if not in_grace and settles:
        status, split = "paid", _transfer_split(ctx, twin.account, payees, amount)
    else:
        status, split = "owed", Split()
    bill = Bill(
        contract_id=contract.id,
        number=number,
        period_start=contract.billed_until,
        period_end=now,
        usd=_capped(usd),
        token_price=price,
        tokens=tokens,
        discount=discount,
        amount=amount,
        traffic=traffic,
        status=status,
        paid_at=now if status == "paid" else 0,
        split=split,
    )
    state.bills.put(bill_key(contract.id, number), bill)
    if in_grace:
        update["owed"] = min(MAX_AMOUNT, owed)
        if settles:
            status = "paid"  # with every bill it owed, just below
            done = _clear_debt(ctx, contract.model_copy(update=update), twin.account, payees)
            update.update(state=done.state, owed=done.owed, first_owed_bill=0, grace_since=0)
    elif not settles:
        update.update(owed=amount, first_owed_bill=number)
        if not final:
            update.update(state="grace_period", grace_since=now)
            fresh = state.twins.get(twin.id) or twin
            state.twins.put(
                twin.id, fresh.model_copy(update={"grace": [*fresh.grace, contract.id]})
            )
            ctx.emit(
                "ContractGracePeriodStarted",
                contract_id=contract.id,
                twin_id=contract.twin_id,
                node_id=contract.node_id,
                owed=amount,
            )
    ctx.emit(
        "ContractBilled",
        contract_id=contract.id,
        twin_id=contract.twin_id,
        node_id=contract.node_id,
        number=number,
        period_start=bill.period_start,
        period_end=now,
        amount=amount,
        discount=discount,
        status=status,
    )


def settle_debts(ctx: LedgerContext, address: str) -> None:
    """After ``address`` received tokens: end the grace period of each of its twin's
    contracts whose debt it can now pay, oldest first."""
    twin = ctx.state.twin_of_account(address)
    if twin is None or not twin.grace:
        return
    for contract_id in list(twin.grace):
        contract = ctx.state.contracts.get(contract_id)
        if contract is None or contract.state != "grace_period":
            continue
        if money.free_balance(ctx.state, address) < contract.owed:
            continue
        _, payees, _ = hourly_price(ctx, contract)
        ctx.state.contracts.put(contract.id, _clear_debt(ctx, contract, address, payees))
