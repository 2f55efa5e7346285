"""The ledger's calls, one module per domain; :func:`build_calls` is the whole dispatch table."""

from __future__ import annotations

from typing import Any

from zgrid.chain.domains import (
    accounts,
    billing,
    contracts,
    devtime,
    farming,
    farms,
    nodes,
    oracle,
    twins,
)
from zgrid.chain.domains.base import BlockContext, BlockStep, Call, CallContext
from zgrid.chain.domains.schedule import due_items

__all__ = ["BlockContext", "BlockStep", "Call", "CallContext", "build_block_steps", "build_calls"]


def build_calls() -> dict[str, Call[Any]]:
    """Every call the ledger accepts, by name. The only place that lists them."""
    return {
        "accounts.transfer": accounts.TRANSFER,
        "accounts.faucet": accounts.FAUCET,
        "twins.create": twins.CREATE,
        "twins.update": twins.UPDATE,
        "farms.create": farms.CREATE,
        "farms.add_ip": farms.ADD_IP,
        "farms.remove_ip": farms.REMOVE_IP,
        "farms.set_certification": farms.SET_CERTIFICATION,
        "farms.remove_node": farms.REMOVE_NODE,
        "nodes.register": nodes.REGISTER,
        "nodes.update": nodes.UPDATE,
        "nodes.report_uptime": nodes.REPORT_UPTIME,
        "nodes.set_power": nodes.SET_POWER,
        "contracts.create_node_contract": contracts.CREATE_NODE,
        "contracts.update_node_contract": contracts.UPDATE_NODE,
        "contracts.create_name_contract": contracts.CREATE_NAME,
        "contracts.create_rent_contract": contracts.CREATE_RENT,
        "contracts.cancel": contracts.CANCEL,
        "contracts.approve": contracts.APPROVE,
        "contracts.report_result": contracts.REPORT_RESULT,
        "contracts.report_resources": contracts.REPORT_RESOURCES,
        "contracts.report_traffic": contracts.REPORT_TRAFFIC,
        "oracle.set_price": oracle.SET_PRICE,
        "dev.advance_time": devtime.ADVANCE_TIME,
    }


def build_block_steps() -> list[BlockStep]:
    """What the ledger does by itself at the start of every block, in order. The only
    place that lists them; verification replays the same list."""
    return [_run_due]


def _run_due(ctx: BlockContext) -> None:
    """Bills and farming periods that ledger time made due, in the order they fell due."""
    for entry in due_items(ctx.state, ctx.timestamp):
        kind, _, ident = entry.item.partition(":")
        if kind == billing.ITEM:
            contracts.bill_due(ctx, int(ident), entry.due)
        elif kind == farming.ITEM:
            farming.end_period(ctx, int(ident), entry.due)
