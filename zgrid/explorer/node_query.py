"""``/nodes`` and ``/gateways`` as the grid proxy answers them: its filters, sorting and
paging, over the explorer's tables, and each node in the grid proxy's JSON.

Status and health are decided at the time of the last block indexed (ledger time), as
the ledger's own API decides status: up when the node reported uptime within 80 minutes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from zgrid.chain import DISCOUNT_TIERS, HOURS_PER_MONTH, Genesis, node_contract_hourly
from zgrid.explorer import schema
from zgrid.explorer.errors import NotIndexed
from zgrid.explorer.params import Limit, Params
from zgrid.explorer.projection import DOWN_AFTER
from zgrid.types import Capacity

__all__ = [
    "HEALTH_GRACE",
    "NODE_FILTERS",
    "NODE_SORTS",
    "NodeQuery",
    "nested_node_json",
    "node_json",
]

HEALTH_GRACE = 600  # seconds of ledger time a node may take to report a contract's result
UNITS_PER_USD = 10_000_000
_STATUSES = ("up", "down", "standby")

n, f = schema.nodes, schema.farms

NODE_FILTERS = frozenset(
    {
        "status",
        "free_mru",
        "free_sru",
        "free_hru",
        "free_ips",
        "total_cru",
        "total_mru",
        "total_sru",
        "total_hru",
        "country",
        "country_contains",
        "city",
        "city_contains",
        "farm_name",
        "farm_name_contains",
        "farm_ids",
        "node_id",
        "node_ids",
        "excluded",
        "twin_id",
        "owned_by",
        "ipv4",
        "ipv6",
        "domain",
        "dedicated",
        "in_dedicated_farm",
        "rentable",
        "rented",
        "rented_by",
        "available_for",
        "rentable_or_rented_by",
        "certification_type",
        "healthy",
        "has_gpu",
        "num_gpu",
    }
)

_SORT_COLUMNS: dict[str, Any] = {
    "node_id": n.c.node_id,
    "farm_id": n.c.farm_id,
    "twin_id": n.c.twin_id,
    "uptime": n.c.uptime,
    "created": n.c.created,
    "updated_at": n.c.last_report,
    "country": n.c.country,
    "city": n.c.city,
    "dedicated_farm": f.c.dedicated,
    "rent_contract_id": n.c.rent_contract_id,
    "free_cru": n.c.free_cru,
    "free_mru": n.c.free_mru,
    "free_sru": n.c.free_sru,
    "free_hru": n.c.free_hru,
    "num_gpu": sa.literal(0),
    "extra_fee": sa.literal(0),
    **{f"total_{key}": n.c[f"total_{key}"] for key in ("cru", "mru", "sru", "hru")},
    **{f"used_{key}": n.c[f"used_{key}"] for key in ("cru", "mru", "sru", "hru")},
}
NODE_SORTS = frozenset({*_SORT_COLUMNS, "status", "rented", "rentable"})


class NodeQuery:
    """The node conditions at ledger time ``now``."""

    def __init__(self, now: int) -> None:
        self.now = now
        self.up = sa.and_(
            n.c.power == "up", n.c.last_report > 0, n.c.last_report >= now - DOWN_AFTER
        )
        self.standby = n.c.power == "standby"
        self.down = sa.not_(sa.or_(self.up, self.standby))
        self.rented = n.c.rented_by != 0
        self.dedicated = sa.or_(f.c.dedicated, n.c.node_contracts == 0, self.rented)
        self.rentable = sa.and_(
            sa.or_(f.c.dedicated, n.c.node_contracts == 0), sa.not_(self.rented)
        )
        self.healthy = sa.and_(
            self.up, sa.or_(n.c.oldest_pending == 0, n.c.oldest_pending >= now - HEALTH_GRACE)
        )
        self.certified = f.c.certification == "gold"

    def status_of(self, name: str) -> Any:
        return {"up": self.up, "down": self.down, "standby": self.standby}[name]

    def columns(self) -> sa.Select[Any]:
        return sa.select(
            n,
            f.c.name.label("farm_name"),
            f.c.certification.label("farm_certification"),
            f.c.dedicated.label("farm_dedicated"),
            f.c.free_ips.label("farm_free_ips"),
            f.c.pricing_policy_id.label("pricing_policy_id"),
            f.c.twin_id.label("farm_twin_id"),
            self.up.label("is_up"),
            self.healthy.label("is_healthy"),
            self.rentable.label("is_rentable"),
            self.dedicated.label("is_dedicated"),
        ).select_from(n.outerjoin(f, f.c.farm_id == n.c.farm_id))

    def conditions(self, params: Params, *, gateways: bool = False) -> list[Any]:
        where: list[Any] = []
        add = where.append
        if gateways:
            add(n.c.domain != "")
            add(sa.or_(n.c.ipv4 != "", n.c.ipv6 != ""))
        statuses = params.choices("status", _STATUSES)
        if statuses:
            add(sa.or_(*(self.status_of(name) for name in statuses)))
        at_least: Mapping[str, Any] = {
            "free_mru": n.c.free_mru,
            "free_sru": n.c.free_sru,
            "free_hru": n.c.free_hru,
            "free_ips": sa.func.coalesce(f.c.free_ips, 0),
            "total_cru": n.c.total_cru,
            "total_mru": n.c.total_mru,
            "total_sru": n.c.total_sru,
            "total_hru": n.c.total_hru,
        }
        for name, column in at_least.items():
            value = params.integer(name)
            if value is not None:
                add(column >= value)
        for name, column in (("country", n.c.country), ("city", n.c.city), ("farm_name", f.c.name)):
            text = params.text(name)
            if text is not None:
                add(sa.func.lower(column) == text.lower())
            contains = params.text(f"{name}_contains")
            if contains is not None:
                add(column.ilike(f"%{_escape(contains)}%", escape="\\"))
        equal: Mapping[str, Any] = {
            "node_id": n.c.node_id,
            "twin_id": n.c.twin_id,
            "owned_by": f.c.twin_id,
            "rented_by": n.c.rented_by,
        }
        for name, column in equal.items():
            value = params.integer(name)
            if value is not None:
                add(column == value)
        for name, column in (("farm_ids", n.c.farm_id), ("node_ids", n.c.node_id)):
            values = params.integers(name)
            if values:
                add(column.in_(values))
        excluded = params.integers("excluded")
        if excluded:
            add(n.c.node_id.not_in(excluded))
        flags: Mapping[str, Any] = {
            "ipv4": n.c.ipv4 != "",
            "ipv6": n.c.ipv6 != "",
            "domain": n.c.domain != "",
            "dedicated": self.dedicated,
            "in_dedicated_farm": sa.func.coalesce(f.c.dedicated, False),
            "rentable": self.rentable,
            "rented": self.rented,
            "healthy": self.healthy,
            "has_gpu": sa.false(),  # zgrid nodes report no GPUs
        }
        for name, condition in flags.items():
            wanted = params.boolean(name)
            if wanted is not None:
                add(condition if wanted else sa.not_(condition))
        gpus = params.integer("num_gpu")
        if gpus:
            add(sa.false())
        available_for = params.integer("available_for")
        if available_for is not None:
            add(
                sa.or_(
                    n.c.rented_by == available_for,
                    sa.and_(sa.not_(self.rented), sa.not_(sa.func.coalesce(f.c.dedicated, False))),
                )
            )
        either = params.integer("rentable_or_rented_by")
        if either is not None:
            add(sa.or_(self.rentable, n.c.rented_by == either))
        certification = params.text("certification_type")
        if certification is not None:
            wanted_certified = certification.lower() == "certified"
            if certification.lower() not in ("certified", "diy"):
                add(sa.false())
            else:
                add(self.certified if wanted_certified else sa.not_(self.certified))
        return where

    def ordering(self, limit: Limit) -> list[Any]:
        if limit.randomize:
            return [sa.func.random()]
        if not limit.sort_by:
            return [n.c.node_id]
        if limit.sort_by == "status":
            key: Any = sa.case((self.up, 1), (self.standby, 2), else_=3)
        elif limit.sort_by == "rented":
            key = sa.case((self.rented, 1), else_=0)
        elif limit.sort_by == "rentable":
            key = sa.case((self.rentable, 1), else_=0)
        else:
            key = _SORT_COLUMNS[limit.sort_by]
        return [key.desc() if limit.descending else key.asc(), n.c.node_id]

    def page(
        self, connection: Connection, params: Params, limit: Limit, *, gateways: bool = False
    ) -> tuple[list[Row[Any]], int | None]:
        where = self.conditions(params, gateways=gateways)
        query = self.columns().where(*where)
        rows = connection.execute(
            query.order_by(*self.ordering(limit)).limit(limit.size).offset(limit.offset)
        ).all()
        count = None
        if limit.ret_count:
            counted = (
                sa.select(sa.func.count())
                .select_from(n.outerjoin(f, f.c.farm_id == n.c.farm_id))
                .where(*where)
            )
            count = int(connection.execute(counted).scalar() or 0)
        return list(rows), count

    def one(self, connection: Connection, node_id: int, *, gateway: bool = False) -> Row[Any]:
        query = self.columns().where(n.c.node_id == node_id)
        if gateway:
            query = query.where(n.c.domain != "")
        row = connection.execute(query).first()
        if row is None:
            raise NotIndexed(f"{'gateway' if gateway else 'node'} {node_id} not found")
        return row


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _float(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _status(row: Row[Any]) -> str:
    if row.power == "standby":
        return "standby"
    return "up" if row.is_up else "down"


def _power(power: str) -> dict[str, str]:
    word = "Up" if power == "up" else "Down"
    return {"state": word, "target": word}


def _capacity(row: Row[Any], prefix: str) -> dict[str, int]:
    m = row._mapping
    return {
        "cru": m[f"{prefix}_cru"],
        "sru": m[f"{prefix}_sru"],
        "hru": m[f"{prefix}_hru"],
        "mru": m[f"{prefix}_mru"],
    }


def monthly_price(row: Row[Any], genesis: Genesis | None, balance: float) -> float:
    """The whole node's price in USD a month at its farm's pricing policy, less the
    discount ``balance`` USD would give (the grid proxy's ``price_usd``)."""
    policy = None if genesis is None else genesis.price_policy(row.pricing_policy_id or 1)
    if policy is None:
        return 0.0
    capacity = (row.total_cru, row.total_mru, row.total_sru, row.total_hru)
    monthly = _monthly(capacity, (policy.cu, policy.su), row.farm_certification == "gold")
    if balance <= 0 or monthly <= 0:
        return _rounded(monthly)
    months = Fraction(balance) / monthly
    percent = next((p for least, p in DISCOUNT_TIERS if months >= least), 0)
    return round(float(monthly * (100 - percent) / 100), 3)


@functools.lru_cache(maxsize=65536)
def _rounded(price: Fraction) -> float:
    return round(float(price), 3)


@functools.lru_cache(maxsize=65536)  # a node's capacity seldom changes: one entry per node
def _monthly(
    resources: tuple[int, int, int, int], prices: tuple[int, int], certified: bool
) -> Fraction:
    cru, mru, sru, hru = resources
    capacity = Capacity(cru=cru, mru=mru, sru=sru, hru=hru)
    policy = _Prices(cu=prices[0], su=prices[1])
    hourly = node_contract_hourly(capacity, public_ips=0, policy=policy, certified=certified)
    return hourly * HOURS_PER_MONTH / UNITS_PER_USD


@dataclass(frozen=True)
class _Prices:
    cu: int
    su: int
    nu: int = 0
    ipu: int = 0


def _common(row: Row[Any], genesis: Genesis | None, balance: float) -> dict[str, Any]:
    farming_policy = 1 if genesis is None else _farming_policy(genesis, row.pricing_policy_id)
    return {
        "id": str(row.node_id),
        "nodeId": row.node_id,
        "farmId": row.farm_id,
        "farmName": row.farm_name or "",
        "twinId": row.twin_id,
        "country": row.country,
        "gridVersion": 3,
        "city": row.city,
        "uptime": row.uptime,
        "created": row.created,
        "farmingPolicyId": farming_policy,
        "updatedAt": row.last_report,
    }


def _rest(row: Row[Any], genesis: Genesis | None, balance: float) -> dict[str, Any]:
    return {
        "location": {
            "country": row.country,
            "city": row.city,
            "longitude": _float(row.longitude),
            "latitude": _float(row.latitude),
        },
        "publicConfig": {
            "domain": row.domain,
            "gw4": row.gw4,
            "gw6": row.gw6,
            "ipv4": row.ipv4,
            "ipv6": row.ipv6,
        },
        "status": _status(row),
        "certificationType": "Certified" if row.farm_certification == "gold" else "DIY",
        "dedicated": bool(row.is_dedicated),
        "inDedicatedFarm": bool(row.farm_dedicated),
        "rentContractId": row.rent_contract_id,
        "rented": bool(row.rented_by),
        "rentable": bool(row.is_rentable),
        "rentedByTwinId": row.rented_by,
        "serialNumber": row.serial,
        "power": _power(row.power),
        "num_gpu": 0,
        "extraFee": 0,
        "healthy": bool(row.is_healthy),
        "dmi": _NO_DMI,
        "speed": _NO_SPEED,
        "gpus": _NONE,
        "price_usd": monthly_price(row, genesis, balance),
        "farm_free_ips": int(row.farm_free_ips or 0),
        "features": _NONE,
        # zgrid's own additions: what the grid proxy leaves to its clients to work out
        "free_resources": _capacity(row, "free"),
        "interfaces": _NONE if row.interfaces in ("", "[]") else json.loads(row.interfaces),
        "secureBoot": bool(row.secure_boot),
        "virtualized": bool(row.virtualized),
    }


# What the ledger does not know of a node, answered empty as the grid proxy's shape has it
# (shared by every answer: they are only ever serialized).
_NO_DMI: dict[str, Any] = {
    "bios": {"vendor": "", "version": ""},
    "baseboard": {"manufacturer": "", "product_name": ""},
    "processor": [],
    "memory": [],
}
_NO_SPEED: dict[str, Any] = {"upload": 0, "download": 0}
_NONE: list[Any] = []


def _farming_policy(genesis: Genesis, pricing_policy_id: int | None) -> int:
    wanted = pricing_policy_id or 1
    policies = genesis.farming_policies
    return next((p.id for p in policies if p.id == wanted), policies[0].id)


def node_json(row: Row[Any], genesis: Genesis | None, balance: float = 0.0) -> dict[str, Any]:
    """A node as ``/nodes`` lists it."""
    return {
        **_common(row, genesis, balance),
        "total_resources": _capacity(row, "total"),
        "used_resources": _capacity(row, "used"),
        **_rest(row, genesis, balance),
    }


def nested_node_json(row: Row[Any], genesis: Genesis | None) -> dict[str, Any]:
    """A node as ``/nodes/{id}`` answers it (capacity nested, as the grid proxy does)."""
    return {
        **_common(row, genesis, 0.0),
        "capacity": {
            "total_resources": _capacity(row, "total"),
            "used_resources": _capacity(row, "used"),
        },
        **_rest(row, genesis, 0.0),
    }


Render = Callable[[Row[Any]], dict[str, Any]]
