"""Farming: proof of capacity. A node earns, per farming period of ledger time, what its
farm's farming policy pays for its capacity (farming CU and SU), the traffic and the public
IP hours billed on it, scaled by its uptime in the period, when that uptime is at least
the policy's minimum (95%). The reward is minted to the farmer's twin.

Uptime is credited from the node's own reports (every 40 minutes of ledger time): the
seconds since its previous report when the uptime it reports grew by as much, or the
uptime itself after a reboot, never more than :data:`MAX_CREDIT` per report. A report that
does not follow from the previous one (uptime grew faster than time, or fell without a
reboot fitting the gap), comes out of order or too soon is refused.
"""

from __future__ import annotations

from fractions import Fraction

from zgrid.chain import economy
from zgrid.chain.domains import money
from zgrid.chain.domains.base import CallContext, LedgerContext
from zgrid.chain.errors import RejectCode, TransactionRejected
from zgrid.chain.genesis import FarmingPolicy
from zgrid.chain.records import Node, Reward
from zgrid.chain.tables import reward_key
from zgrid.chain.units import MAX_AMOUNT
from zgrid.types import Capacity, farming_units

__all__ = [
    "FARMING_PERIOD",
    "MAX_CREDIT",
    "MIN_REPORT_GAP",
    "UPTIME_INTERVAL",
    "credit_uptime",
    "end_period",
    "start_farming",
]

FARMING_PERIOD = 30 * 86400  # seconds of ledger time
UPTIME_INTERVAL = 2400  # a node reports its uptime every 40 minutes of ledger time
SLACK = 60  # seconds of clock difference a report may carry
MAX_CREDIT = UPTIME_INTERVAL + SLACK  # seconds one report can credit
MIN_REPORT_GAP = UPTIME_INTERVAL // 2  # sooner than this after the last report is too soon
ITEM = "farm"


def _item(node_id: int) -> str:
    return f"{ITEM}:{node_id}"


def start_farming(ctx: LedgerContext, node: Node) -> Node:
    """A new node's first farming period, from now."""
    ctx.schedule(ctx.timestamp + FARMING_PERIOD, _item(node.id))
    return node.model_copy(update={"period_start": ctx.timestamp})


def credit_uptime(ctx: CallContext, node: Node, uptime: int) -> Node:
    """The node after its report of ``uptime`` seconds since boot, at block time; or a refusal."""
    now, last = ctx.timestamp, node.last_uptime_report
    if last and now < last:
        raise _refused(f"it is older than the node's last report (ledger time {last})")
    if last and now - last < MIN_REPORT_GAP:
        raise _refused(
            f"the node reported {now - last} s ago; reports come every {UPTIME_INTERVAL} s "
            f"(at least {MIN_REPORT_GAP} s apart)"
        )
    if not last or last < node.period_start:
        credit = min(now - node.period_start, uptime)
    else:
        elapsed, grown = now - last, uptime - node.uptime
        if abs(grown - elapsed) <= SLACK:
            credit = min(grown, elapsed + SLACK)
        elif uptime <= elapsed + SLACK:  # rebooted since the last report
            credit = uptime
        elif grown > elapsed:
            raise _refused(
                f"uptime grew by {grown} s in the {elapsed} s since the last report "
                f"({node.uptime} s)"
            )
        else:
            raise _refused(
                f"uptime {uptime} s fell short of the {node.uptime} s reported {elapsed} s ago "
                "without a reboot that fits"
            )
    credit = max(0, min(credit, MAX_CREDIT))
    period_uptime = min(FARMING_PERIOD, node.period_uptime + credit)
    return node.model_copy(
        update={"uptime": uptime, "last_uptime_report": now, "period_uptime": period_uptime}
    )


def _refused(reason: str) -> TransactionRejected:
    return TransactionRejected(RejectCode.INVALID_ARGS, f"uptime report refused: {reason}")


def period_reward_usd(
    node: Node, policy: FarmingPolicy, uptime_permille: int
) -> tuple[Fraction, Fraction, Fraction]:
    """(units USD, farming CU, farming SU) the policy pays ``node`` for the period."""
    resources = node.resources
    cu, su = farming_units(
        Capacity(cru=resources.cru, mru=resources.mru, sru=resources.sru, hru=resources.hru)
    )
    full = (
        cu * policy.cu
        + su * policy.su
        + Fraction(node.period_traffic, economy.GB) * policy.nu
        + Fraction(node.period_ip_seconds, FARMING_PERIOD) * policy.ipv4
    )
    return full * uptime_permille / 1000, cu, su


def _policy(ctx: LedgerContext, node: Node) -> FarmingPolicy:
    farm = ctx.state.farms.get(node.farm_id)
    wanted = 1 if farm is None else farm.pricing_policy_id
    policies = ctx.genesis.farming_policies
    return next((p for p in policies if p.id == wanted), policies[0])


def end_period(ctx: LedgerContext, node_id: int, due: int) -> None:
    """Pay ``node_id``'s farming reward for the period that ended at ``due`` and start the
    next (nothing for a node that is gone)."""
    state = ctx.state
    node = state.nodes.get(node_id)
    end = None if node is None else node.period_start + FARMING_PERIOD
    if node is None or end != due:
        return
    policy = _policy(ctx, node)
    uptime_permille = min(1000, node.period_uptime * 1000 // FARMING_PERIOD)
    usd, cu, su = period_reward_usd(node, policy, uptime_permille)
    price = money.token_price(state, ctx.genesis)
    farm = state.farms.get(node.farm_id)
    farmer = None if farm is None else state.twins.get(farm.twin_id)
    reason = ""
    tokens = 0
    if uptime_permille < policy.minimal_uptime_permille:
        reason = (
            f"uptime {uptime_permille / 10:g}% is under the "
            f"{policy.minimal_uptime_permille / 10:g}% the policy asks"
        )
    elif farmer is None:
        reason = "the farm has no twin to pay"
    else:
        owed = min(MAX_AMOUNT, economy.tokens_for(usd, price))
        tokens = money.mint(state, ctx.genesis, farmer.account, owed)
    period = node.period + 1
    state.rewards.put(
        reward_key(node.id, period),
        Reward(
            node_id=node.id,
            farm_id=node.farm_id,
            period=period,
            period_start=node.period_start,
            period_end=end,
            uptime_permille=uptime_permille,
            cu=_decimal(cu),
            su=_decimal(su),
            traffic=node.period_traffic,
            ip_seconds=node.period_ip_seconds,
            usd=min(MAX_AMOUNT, int(usd)),
            token_price=price,
            tokens=tokens,
            reason=reason,
        ),
    )
    ctx.emit(
        "FarmingRewardPaid" if tokens else "FarmingRewardWithheld",
        node_id=node.id,
        farm_id=node.farm_id,
        period=period,
        uptime_permille=uptime_permille,
        tokens=tokens,
        reason=reason,
    )
    state.nodes.put(
        node.id,
        node.model_copy(
            update={
                "period": period,
                "period_start": end,
                "period_uptime": 0,
                "period_traffic": 0,
                "period_ip_seconds": 0,
            }
        ),
    )
    ctx.schedule(end + FARMING_PERIOD, _item(node.id))


def _decimal(value: Fraction, places: int = 6) -> str:
    scaled = value * 10**places
    whole = int(scaled)
    text = f"{whole // 10**places}.{whole % 10**places:0{places}d}".rstrip("0").rstrip(".")
    return text
