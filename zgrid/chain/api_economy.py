"""The ledger API's economy answers: the token price and supply, a contract's bills, a
twin's staking discount, the farming rewards of a farm or a node."""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Any

from fastapi import FastAPI, Query

from zgrid.chain import economy
from zgrid.chain.api_models import BillPage, DiscountView, EconomyView, RewardPage
from zgrid.chain.domains import money
from zgrid.chain.domains.billing import GRACE_PERIOD, twin_discount
from zgrid.chain.domains.farming import FARMING_PERIOD
from zgrid.chain.errors import NotFound
from zgrid.chain.ledger import Ledger
from zgrid.chain.query import page
from zgrid.chain.records import Bill, ChainEvent
from zgrid.chain.tables import bill_key
from zgrid.chain.units import Id
from zgrid.types import decimal_text

__all__ = ["economy_routes"]

Page = Annotated[int, Query(ge=1, le=1_000_000)]
Size = Annotated[int, Query(ge=1, le=500)]


def _decimal(value: Fraction) -> str:
    return decimal_text(value, places=4)


def economy_routes(app: FastAPI, ledger: Ledger, workers: Any) -> None:
    @app.get("/economy", tags=["economy"], response_model=EconomyView)
    async def economy_view() -> dict[str, Any]:
        state, genesis = ledger.state, ledger.genesis
        return {
            "token_price": money.token_price(state, genesis),
            "oracle": genesis.oracle,
            "supply": money.supply(state, genesis).as_dict(),
            "billing_period": economy.BILLING_PERIOD,
            "grace_period": GRACE_PERIOD,
            "farming_period": FARMING_PERIOD,
        }

    def bills_page(
        contract_id: int, first: int, last: int, unstored: list[ChainEvent]
    ) -> list[dict[str, Any]]:
        stored = ledger.store.contract_bills(contract_id, first, last)
        made = {bill["number"]: bill for bill in stored}
        for event in unstored:  # the bills of blocks not in the store yet
            data = event.data
            if event.name == "ContractBilled" and data["contract_id"] == contract_id:
                made[data["number"]] = data
        rows = []
        for number in range(first, last + 1):
            kept = ledger.state.bills.get(bill_key(contract_id, number))  # owed, or was
            if kept is not None:
                rows.append(kept.model_dump())
            elif number in made:
                rows.append({key: made[number][key] for key in Bill.model_fields})
        return rows

    @app.get("/contracts/{contract_id}/bills", tags=["economy"], response_model=BillPage)
    async def bills(
        contract_id: Id,
        page_number: Annotated[Page, Query(alias="page")] = 1,
        size: Size = 50,
    ) -> dict[str, Any]:
        state = ledger.state
        if state.contracts.get(contract_id) is None:
            raise NotFound(f"no contract {contract_id}")
        count = state.billing_of(contract_id).bills
        first = (page_number - 1) * size + 1
        last = min(count, first + size - 1)
        items = []
        if first <= last:
            unstored = ledger.unstored_events()
            items = await workers.run(bills_page, contract_id, first, last, unstored)
        return {"items": items, "total": count, "page": page_number, "size": size}

    @app.get("/twins/{twin_id}/discount", tags=["economy"], response_model=DiscountView)
    async def discount(twin_id: Id) -> dict[str, Any]:
        state = ledger.state
        twin = state.twins.get(twin_id)
        if twin is None:
            raise NotFound(f"no twin {twin_id}")
        now = twin_discount(state, ledger.genesis, twin)
        tiers = [
            {"months": _decimal(months), "percent": percent}
            for months, percent in reversed(economy.DISCOUNT_TIERS)
        ]
        better = [
            tier
            for tier, (_, percent) in zip(tiers, reversed(economy.DISCOUNT_TIERS), strict=True)
            if percent > now.percent
        ]
        return {
            "twin_id": twin.id,
            "balance": now.balance,
            "spend_usd_per_hour": now.spend_usd,
            "spend_tokens_per_hour": _decimal(now.spend_tokens),
            "months": None if now.months is None else _decimal(now.months),
            "percent": now.percent,
            "next_tier": better[0] if better else None,
            "tiers": tiers,
        }

    @app.get("/farms/{farm_id}/rewards", tags=["economy"], response_model=RewardPage)
    async def farm_rewards(
        farm_id: Id,
        node_id: Annotated[int | None, Query(ge=1)] = None,
        page_number: Annotated[Page, Query(alias="page")] = 1,
        size: Size = 50,
    ) -> dict[str, Any]:
        state = ledger.state
        if state.farms.get(farm_id) is None:
            raise NotFound(f"no farm {farm_id}")
        rows = sorted(
            (
                r
                for r in state.rewards.values()
                if r.farm_id == farm_id and (node_id is None or r.node_id == node_id)
            ),
            key=lambda r: (r.period_end, r.node_id),
        )
        return page((r.model_dump() for r in rows), page_number, size)
