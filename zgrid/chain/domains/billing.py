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

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from zgrid.chain import economy
from zgrid.chain.domains import money
from zgrid.chain.domains.base import LedgerContext
from zgrid.chain.genesis import Genesis, PricePolicy
from zgrid.chain.records import Bill, Billing, BillStatus, Contract, Node, Split, Twin
from zgrid.chain.tables import LedgerState, bill_key
from zgrid.chain.units import MAX_AMOUNT, UNITS_PER_TOKEN
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


def start_billing(ctx: LedgerContext, contract: Contract) -> None:
    """A new contract's billing: its first bill scheduled a period from now, its price
    counted in its twin's spend."""
    due = ctx.timestamp + economy.BILLING_PERIOD
    ctx.schedule(due, _item(contract.id))
    _store(ctx, contract, Billing(billed_until=ctx.timestamp, next_bill=due))
    reprice(ctx, contract)


def _store(ctx: LedgerContext, contract: Contract, billing: Billing) -> None:
    ctx.state.billing.put(contract.id, billing)


def reprice(ctx: LedgerContext, contract: Contract) -> None:
    """Set ``contract``'s hourly price as of now, its twin's spend following it (the
    discount counts the spend of every live contract, also ones not billed yet)."""
    billing = ctx.state.billing_of(contract.id)
    hourly = _capped(hourly_price(ctx, contract)[0])
    if hourly != billing.hourly:
        _respend(ctx, contract.twin_id, billing.hourly, hourly)
        _store(ctx, contract, billing.model_copy(update={"hourly": hourly}))


def _respend(ctx: LedgerContext, twin_id: int, was: int, now: int) -> Twin | None:
    twin = ctx.state.twins.get(twin_id)
    if twin is not None and was != now:
        spend = min(MAX_AMOUNT, max(0, twin.spend - was + now))
        twin = twin.model_copy(update={"spend": spend})
        ctx.state.twins.put(twin.id, twin)
    return twin


def stop_billing(ctx: LedgerContext, contract: Contract) -> None:
    """An ending contract leaves its twin's spend and grace list (its scheduled bill finds
    it deleted and does nothing)."""
    billing = ctx.state.billing_of(contract.id)
    _respend(ctx, contract.twin_id, billing.hourly, 0)
    _leave_grace(ctx, contract)
    if billing.hourly:
        _store(ctx, contract, billing.model_copy(update={"hourly": 0}))


@dataclass(frozen=True)
class _Payees:
    farmer: str
    policy: PricePolicy


def _capacity(resources: Any) -> Capacity:
    return Capacity(cru=resources.cru, mru=resources.mru, sru=resources.sru, hru=resources.hru)


def _node_terms(ctx: LedgerContext, node: Node | None) -> tuple[PricePolicy, bool, str]:
    """The node's farm's price policy, whether it is certified, and its farmer's account
    (looked up once per farm in a block's work: nothing there changes a farm)."""
    memo = ctx.farm_terms
    if node is not None and memo is not None:
        found = memo.get(node.farm_id)
        if found is None:
            found = memo[node.farm_id] = _farm_terms(ctx, node)
        return found
    return _farm_terms(ctx, node)


def _farm_terms(ctx: LedgerContext, node: Node | None) -> tuple[PricePolicy, bool, str]:
    default = ctx.genesis.price_policies[0]
    farm = None if node is None else ctx.state.farms.get(node.farm_id)
    if farm is None:
        return default, False, default.certified_sales_account
    if farm.pricing_policy_id == default.id:
        policy = default
    else:
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
    key = (used.cru, used.mru, used.sru, used.hru, len(contract.public_ips), certified)
    kept = _PRICES.get(id(policy))
    if kept is None or kept[0] is not policy:
        kept = _PRICES[id(policy)] = (policy, {})
    prices = kept[1]
    found = prices.get((*key, bool(node.rented_by)))
    if found is not None:
        return found, payees, node
    price = _node_hourly(key, policy, bool(node.rented_by))
    if len(prices) < _PRICES_KEPT:
        prices[(*key, bool(node.rented_by))] = price
    return price, payees, node


# Prices of node contracts by size, per price policy: pure, and most contracts share a
# few sizes, so a bill looks its price up instead of working out fractions.
_PRICES: dict[int, tuple[PricePolicy, dict[tuple[int | bool, ...], Fraction]]] = {}
_PRICES_KEPT = 4096


def _node_hourly(
    key: tuple[int, int, int, int, int, bool], policy: PricePolicy, rented: bool
) -> Fraction:
    cru, mru, sru, hru, public_ips, certified = key
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


def _transfer_split(ctx: LedgerContext, payer: str, payees: _Payees, amount: int) -> economy.Split:
    """Move ``amount`` from ``payer`` (who has enough) as the split says; returns the split."""
    parts = economy.split_payment(amount)
    ctx.take(payer, amount)
    ctx.count_burned(parts.burned)
    ctx.pay_out(payees.farmer, parts.farmer)
    ctx.pay_out(ctx.genesis.validator, parts.validators)
    ctx.pay_out(payees.policy.foundation_account, parts.foundation)
    return parts


def _split_record(parts: economy.Split) -> Split:
    return Split(
        burned=parts.burned,
        farmer=parts.farmer,
        validators=parts.validators,
        foundation=parts.foundation,
    )


def _pay(ctx: LedgerContext, payer: str, payees: _Payees, bill: Bill) -> Bill:
    """Pay an owed ``bill`` from ``payer`` (who has enough) as the split says."""
    split = _split_record(_transfer_split(ctx, payer, payees, bill.amount))
    paid = bill.model_copy(update={"status": "paid", "paid_at": ctx.timestamp, "split": split})
    ctx.state.bills.put(bill_key(bill.contract_id, bill.number), paid)
    ctx.emit(
        "BillPaid",
        contract_id=bill.contract_id,
        number=bill.number,
        amount=bill.amount,
        split=split.model_dump(),
    )
    return paid


def _owed_bills(ctx: LedgerContext, contract_id: int, billing: Billing) -> list[Bill]:
    start = billing.first_owed_bill or billing.bills + 1
    found = (ctx.state.bills.get(bill_key(contract_id, n)) for n in range(start, billing.bills + 1))
    return [bill for bill in found if bill is not None and bill.status == "owed"]


def _clear_debt(
    ctx: LedgerContext, contract: Contract, billing: Billing, payer: str, payees: _Payees
) -> tuple[Contract, Billing]:
    """Pay every bill the contract owes (the payer has enough) and end its grace period."""
    for bill in _owed_bills(ctx, contract.id, billing):
        _pay(ctx, payer, payees, bill)
    ctx.emit(
        "ContractGracePeriodEnded",
        contract_id=contract.id,
        twin_id=contract.twin_id,
        node_id=contract.node_id,
        paid=billing.owed,
    )
    _leave_grace(ctx, contract)
    contract = contract.model_copy(update={"state": "created", "updated": ctx.timestamp})
    ctx.state.contracts.put(contract.id, contract)
    cleared = billing.model_copy(update={"owed": 0, "first_owed_bill": 0, "grace_since": 0})
    return contract, cleared


def _leave_grace(ctx: LedgerContext, contract: Contract) -> None:
    """Take ``contract`` off its twin's list of contracts in their grace period."""
    twin = ctx.state.twins.get(contract.twin_id)
    if twin is not None and contract.id in twin.grace:
        grace = [cid for cid in twin.grace if cid != contract.id]
        ctx.state.twins.put(twin.id, twin.model_copy(update={"grace": grace}))


def forgive(ctx: LedgerContext, contract: Contract) -> None:
    """Mark what an ending contract owes unpaid: it owes nothing any more."""
    billing = ctx.state.billing_of(contract.id)
    for bill in _owed_bills(ctx, contract.id, billing):
        ctx.state.bills.put(
            bill_key(contract.id, bill.number), bill.model_copy(update={"status": "unpaid"})
        )
        ctx.emit("BillUnpaid", contract_id=contract.id, number=bill.number, amount=bill.amount)
    if billing.owed:
        _store(ctx, contract, billing.model_copy(update={"owed": 0}))


def _capped(value: Fraction) -> int:
    return min(MAX_AMOUNT, int(value))


def grace_expired(ctx: LedgerContext, contract: Contract) -> bool:
    if contract.state != "grace_period":
        return False
    return ctx.timestamp - ctx.state.billing_of(contract.id).grace_since >= GRACE_PERIOD


def bill_contract(ctx: LedgerContext, contract: Contract, *, final: bool = False) -> Contract:
    """Bill ``contract`` up to now; ``final`` for a contract that is ending (what it then
    cannot pay is left unpaid). Returns the contract, its state changed if the bill
    started or ended its grace period. Whether that ran out is the caller's to ask
    (:func:`grace_expired`): ending a contract is the contracts domain's work.
    """
    state, now = ctx.state, ctx.timestamp
    billing = state.billing_of(contract.id)
    seconds = max(0, now - billing.billed_until)
    hourly, payees, node = hourly_price(ctx, contract)
    traffic = billing.traffic if contract.type == "node" else 0
    hourly_units = 0 if final else _capped(hourly)
    update: dict[str, Any] = {"billed_until": now, "traffic": 0, "hourly": hourly_units}
    twin = _respend(ctx, contract.twin_id, billing.hourly, hourly_units)
    if node is not None and contract.type == "node" and (traffic or contract.public_ips):
        ctx.add_node_usage(node.id, traffic, len(contract.public_ips) * seconds)
    price = money.token_price(state, ctx.genesis)
    nu = payees.policy.nu if traffic else 0
    # Capacity near 64 bits prices past anything a ledger holds: such a bill is capped
    # (nobody can pay it anyway, so the contract goes into its grace period).
    usd, tokens = economy.period_cost(hourly, seconds, traffic, nu, price)
    tokens = min(MAX_AMOUNT, tokens)
    if tokens and twin is not None:
        contract, billing = _charge(
            ctx,
            contract,
            billing,
            twin,
            payees,
            min(MAX_AMOUNT, usd),
            price,
            tokens,
            traffic,
            update,
            final,
        )
    if not final:
        due = billing.next_bill + economy.BILLING_PERIOD
        update["next_bill"] = due = due if due > now else now + economy.BILLING_PERIOD
        ctx.schedule(due, _item(contract.id))
    billing = billing.model_copy(update=update)
    _store(ctx, contract, billing)
    if final and billing.owed:
        forgive(ctx, contract)  # it ends owing these: there is nothing left to hold
    return contract


def _charge(  # noqa: PLR0917  (the one place a bill is made; its inputs are all needed)
    ctx: LedgerContext,
    contract: Contract,
    billing: Billing,
    twin: Twin,
    payees: _Payees,
    usd: int,
    price: int,
    tokens: int,
    traffic: int,
    update: dict[str, Any],
    final: bool,
) -> tuple[Contract, Billing]:
    """Make the bill of ``tokens`` and pay it, or owe it; the billing record's changes go
    into ``update``."""
    state, now = ctx.state, ctx.timestamp
    balance = ctx.free(twin.account)
    discount = economy.discount_for_spend(balance, twin.spend, price)
    amount = tokens * (100 - discount) // 100
    number = billing.bills + 1
    update["bills"] = number
    in_grace = contract.state == "grace_period"
    owed = billing.owed + amount if in_grace else amount
    settles = balance >= owed
    if not in_grace and settles:
        status: BillStatus = "paid"
        split = _transfer_split(ctx, twin.account, payees, amount)
    else:
        status, split = "owed", economy.Split(0, 0, 0, 0)
    bill = {
        "contract_id": contract.id,
        "number": number,
        "period_start": billing.billed_until,
        "period_end": now,
        "usd": usd,
        "token_price": price,
        "tokens": tokens,
        "discount": discount,
        "amount": amount,
        "traffic": traffic,
        "status": status,
        "paid_at": now if status == "paid" else 0,
        "split": {
            "burned": split.burned,
            "farmer": split.farmer,
            "validators": split.validators,
            "foundation": split.foundation,
        },
    }
    # Every bill is its ContractBilled event; one not paid at once is also kept in the
    # state until it is paid or left unpaid (a block of thousands of bills writes none).
    if status != "paid":
        state.bills.put(bill_key(contract.id, number), Bill.model_validate(bill))
    if in_grace:
        update["owed"] = min(MAX_AMOUNT, owed)
        if settles:  # with every bill it owed, each with its BillPaid event
            contract, billing = _clear_debt(
                ctx, contract, billing.model_copy(update=update), twin.account, payees
            )
            for key in ("owed", "first_owed_bill", "grace_since"):
                update[key] = getattr(billing, key)
    elif not settles:
        update.update(owed=amount, first_owed_bill=number)
        if not final:
            update["grace_since"] = now
            contract = contract.model_copy(update={"state": "grace_period", "updated": now})
            state.contracts.put(contract.id, contract)
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
    ctx.emit("ContractBilled", twin_id=contract.twin_id, node_id=contract.node_id, **bill)
    return contract, billing


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
        billing = ctx.state.billing_of(contract_id)
        if ctx.free(address) < billing.owed:
            continue
        _, payees, _ = hourly_price(ctx, contract)
        contract, billing = _clear_debt(ctx, contract, billing, address, payees)
        _store(ctx, contract, billing)
