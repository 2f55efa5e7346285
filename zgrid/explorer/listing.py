"""Farms, twins, contracts, bills, public IPs and grid statistics as the grid proxy
answers them, over the explorer's tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from zgrid.explorer import schema
from zgrid.explorer.errors import NotIndexed
from zgrid.explorer.node_query import NodeQuery
from zgrid.explorer.params import Limit, Params

__all__ = [
    "BILL_SORTS",
    "CONTRACT_FILTERS",
    "CONTRACT_SORTS",
    "FARM_FILTERS",
    "FARM_SORTS",
    "IP_FILTERS",
    "IP_SORTS",
    "STATS_FILTERS",
    "TWIN_FILTERS",
    "TWIN_SORTS",
    "bills_page",
    "contract_json",
    "contracts_page",
    "farms_page",
    "one_contract",
    "public_ips_page",
    "stats",
    "twins_page",
]

n, f, ips, t, c, b = (
    schema.nodes,
    schema.farms,
    schema.public_ips,
    schema.twins,
    schema.contracts,
    schema.bills,
)

Page = tuple[list[dict[str, Any]], int | None]


def _ordered(query: sa.Select[Any], limit: Limit, sorts: Mapping[str, Any], key: Any) -> Any:
    if limit.randomize:
        return query.order_by(sa.func.random())
    if limit.sort_by:
        column = sorts[limit.sort_by]
        return query.order_by(column.desc() if limit.descending else column.asc(), key)
    return query.order_by(key)


def _count(connection: Connection, query: sa.Select[Any], limit: Limit) -> int | None:
    if not limit.ret_count:
        return None
    counted = sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    return int(connection.execute(counted).scalar() or 0)


def _paged(connection: Connection, query: Any, limit: Limit) -> list[Row[Any]]:
    return list(connection.execute(query.limit(limit.size).offset(limit.offset)).all())


# -- farms -------------------------------------------------------------------------------------

FARM_FILTERS = frozenset(
    {
        "free_ips",
        "total_ips",
        "pricing_policy_id",
        "farm_id",
        "twin_id",
        "name",
        "name_contains",
        "certification_type",
        "dedicated",
        "stellar_address",
        "node_free_mru",
        "node_free_sru",
        "node_free_hru",
        "node_total_cru",
        "node_status",
        "node_rented_by",
        "node_certified",
        "country",
    }
)
_FARM_SORT_COLUMNS: dict[str, Any] = {
    "name": f.c.name,
    "farm_id": f.c.farm_id,
    "twin_id": f.c.twin_id,
    "dedicated": f.c.dedicated,
    "public_ips": f.c.total_ips,
    "free_ips": f.c.free_ips,
    "total_ips": f.c.total_ips,
    "used_ips": f.c.total_ips - f.c.free_ips,
}
FARM_SORTS = frozenset(_FARM_SORT_COLUMNS)


def _farm_certification(value: str) -> str:
    return "Gold" if value == "gold" else "NotCertified"


def farms_page(connection: Connection, params: Params, limit: Limit, now: int) -> Page:
    where: list[Any] = []
    for name, column in (
        ("free_ips", f.c.free_ips),
        ("total_ips", f.c.total_ips),
    ):
        value = params.integer(name)
        if value is not None:
            where.append(column >= value)
    for name, column in (
        ("pricing_policy_id", f.c.pricing_policy_id),
        ("farm_id", f.c.farm_id),
        ("twin_id", f.c.twin_id),
    ):
        value = params.integer(name)
        if value is not None:
            where.append(column == value)
    farm_name = params.text("name")
    if farm_name is not None:
        where.append(sa.func.lower(f.c.name) == farm_name.lower())
    contains = params.text("name_contains")
    if contains is not None:
        where.append(f.c.name.ilike(f"%{_escape(contains)}%", escape="\\"))
    certification = params.text("certification_type")
    if certification is not None:
        wanted = certification.lower()
        where.append(
            f.c.certification == "gold"
            if wanted == "gold"
            else (f.c.certification != "gold" if wanted == "notcertified" else sa.false())
        )
    dedicated = params.boolean("dedicated")
    if dedicated is not None:
        where.append(f.c.dedicated == dedicated)
    stellar = params.text("stellar_address")
    if stellar is not None:
        where.append(sa.false())  # zgrid farms have no Stellar address
    node_where = _farm_node_conditions(params, now)
    if node_where:
        where.append(
            sa.exists(sa.select(n.c.node_id).where(n.c.farm_id == f.c.farm_id, *node_where))
        )
    query = sa.select(f).where(*where)
    rows = _paged(connection, _ordered(query, limit, _FARM_SORT_COLUMNS, f.c.farm_id), limit)
    addresses = _farm_ips(connection, [row.farm_id for row in rows])
    farms = [
        {
            "name": row.name,
            "farmId": row.farm_id,
            "twinId": row.twin_id,
            "pricingPolicyId": row.pricing_policy_id,
            "certificationType": _farm_certification(row.certification),
            "stellarAddress": "",
            "dedicated": bool(row.dedicated),
            "publicIps": addresses.get(row.farm_id, []),
        }
        for row in rows
    ]
    return farms, _count(connection, query, limit)


def _farm_node_conditions(params: Params, now: int) -> list[Any]:
    nodes = NodeQuery(now)
    where: list[Any] = []
    for name, column in (
        ("node_free_mru", n.c.free_mru),
        ("node_free_sru", n.c.free_sru),
        ("node_free_hru", n.c.free_hru),
        ("node_total_cru", n.c.total_cru),
    ):
        value = params.integer(name)
        if value is not None:
            where.append(column >= value)
    statuses = params.choices("node_status", ("up", "down", "standby"))
    if statuses:
        where.append(sa.or_(*(nodes.status_of(status) for status in statuses)))
    rented_by = params.integer("node_rented_by")
    if rented_by is not None:
        where.append(n.c.rented_by == rented_by)
    country = params.text("country")
    if country is not None:
        where.append(sa.func.lower(n.c.country) == country.lower())
    certified = params.boolean("node_certified")
    if certified is not None:
        gold = sa.select(f.c.farm_id).where(f.c.certification == "gold").scalar_subquery()
        where.append(n.c.farm_id.in_(gold) if certified else n.c.farm_id.not_in(gold))
    return where


def _farm_ips(connection: Connection, farm_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    if not farm_ids:
        return found
    rows = connection.execute(
        sa.select(ips).where(ips.c.farm_id.in_(farm_ids)).order_by(ips.c.farm_id, ips.c.ip)
    ).all()
    for row in rows:
        found.setdefault(row.farm_id, []).append(_ip_json(row))
    return found


def _ip_json(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": f"{row.farm_id}-{row.ip}",
        "ip": row.ip,
        "gateway": row.gateway,
        "contract_id": row.contract_id,
        "farm_id": row.farm_id,
    }


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- public IPs --------------------------------------------------------------------------------

IP_FILTERS = frozenset({"farm_ids", "free", "ip", "gateway"})
IP_SORTS = frozenset({"ip", "contract_id", "farm_id"})


def public_ips_page(connection: Connection, params: Params, limit: Limit) -> Page:
    where: list[Any] = []
    farm_ids = params.integers("farm_ids")
    if farm_ids:
        where.append(ips.c.farm_id.in_(farm_ids))
    free = params.boolean("free")
    if free is not None:
        where.append((ips.c.contract_id == 0) if free else (ips.c.contract_id != 0))
    for name in ("ip", "gateway"):
        value = params.text(name)
        if value is not None:
            where.append(ips.c[name] == value)
    query = sa.select(ips).where(*where)
    sorts = {name: ips.c[name] for name in IP_SORTS}
    rows = _paged(connection, _ordered(query, limit, sorts, ips.c.ip), limit)
    return [_ip_json(row) for row in rows], _count(connection, query, limit)


# -- twins -------------------------------------------------------------------------------------

TWIN_FILTERS = frozenset({"twin_id", "account_id", "relay", "public_key"})
_TWIN_SORT_COLUMNS: dict[str, Any] = {
    "twin_id": t.c.twin_id,
    "account_id": t.c.account_id,
    "relay": t.c.relay,
    "public_key": t.c.account_id,
}
TWIN_SORTS = frozenset(_TWIN_SORT_COLUMNS)


def twins_page(connection: Connection, params: Params, limit: Limit) -> Page:
    where: list[Any] = []
    twin_id = params.integer("twin_id")
    if twin_id is not None:
        where.append(t.c.twin_id == twin_id)
    for name, column in (
        ("account_id", t.c.account_id),
        ("public_key", t.c.account_id),
        ("relay", t.c.relay),
    ):
        value = params.text(name)
        if value is not None:
            where.append(column == value)
    query = sa.select(t).where(*where)
    rows = _paged(connection, _ordered(query, limit, _TWIN_SORT_COLUMNS, t.c.twin_id), limit)
    twins = [
        # A zgrid account is its ed25519 public key: the two fields are the same key.
        {
            "twinId": r.twin_id,
            "accountId": r.account_id,
            "relay": r.relay,
            "publicKey": r.account_id,
        }
        for r in rows
    ]
    return twins, _count(connection, query, limit)


# -- contracts ---------------------------------------------------------------------------------

CONTRACT_FILTERS = frozenset(
    {
        "contract_id",
        "twin_id",
        "node_id",
        "type",
        "state",
        "name",
        "number_of_public_ips",
        "deployment_hash",
        "farm_name",
        "farm_id",
    }
)
_CONTRACT_SORT_COLUMNS: dict[str, Any] = {
    "contract_id": c.c.contract_id,
    "twin_id": c.c.twin_id,
    "state": c.c.state,
    "created_at": c.c.created,
    "type": c.c.type,
}
CONTRACT_SORTS = frozenset(_CONTRACT_SORT_COLUMNS)
_STATE_WORDS = {"created": "Created", "grace_period": "GracePeriod", "deleted": "Deleted"}
_STATE_NAMES = {
    "created": "created",
    "graceperiod": "grace_period",
    "grace_period": "grace_period",
    "deleted": "deleted",
}


def _contract_query() -> sa.Select[Any]:
    return sa.select(c, f.c.name.label("farm_name")).select_from(
        c.outerjoin(f, f.c.farm_id == c.c.farm_id)
    )


def contract_json(row: Row[Any]) -> dict[str, Any]:
    details: dict[str, Any]
    if row.type == "node":
        details = {
            "nodeId": row.node_id,
            "deployment_data": "",
            "deployment_hash": row.deployment_hash,
            "number_of_public_ips": row.public_ips,
            "farm_name": row.farm_name or "",
            "farm_id": row.farm_id,
        }
    elif row.type == "name":
        details = {"name": row.name}
    else:
        details = {"nodeId": row.node_id, "farm_name": row.farm_name or "", "farm_id": row.farm_id}
    return {
        "contract_id": row.contract_id,
        "twin_id": row.twin_id,
        "state": _STATE_WORDS.get(row.state, row.state),
        "created_at": row.created,
        "type": row.type,
        "details": details,
    }


def contracts_page(connection: Connection, params: Params, limit: Limit) -> Page:
    where: list[Any] = []
    for name, column in (
        ("contract_id", c.c.contract_id),
        ("twin_id", c.c.twin_id),
        ("node_id", c.c.node_id),
        ("number_of_public_ips", c.c.public_ips),
        ("farm_id", c.c.farm_id),
    ):
        value = params.integer(name)
        if value is not None:
            where.append(column == value)
    kind = params.choices("type", ("node", "name", "rent"))
    if kind:
        where.append(c.c.type.in_(kind))
    states = params.choices("state", tuple(_STATE_NAMES))
    if states:
        where.append(c.c.state.in_([_STATE_NAMES[state] for state in states]))
    for name, column in (("name", c.c.name), ("deployment_hash", c.c.deployment_hash)):
        text = params.text(name)
        if text is not None:
            where.append(column == text)
    farm_name = params.text("farm_name")
    if farm_name is not None:
        where.append(sa.func.lower(f.c.name) == farm_name.lower())
    query = _contract_query().where(*where)
    ordered = _ordered(query, limit, _CONTRACT_SORT_COLUMNS, c.c.contract_id)
    rows = _paged(connection, ordered, limit)
    return [contract_json(row) for row in rows], _count(connection, query, limit)


def one_contract(connection: Connection, contract_id: int) -> dict[str, Any]:
    row = connection.execute(_contract_query().where(c.c.contract_id == contract_id)).first()
    if row is None:
        raise NotIndexed(f"contract {contract_id} not found")
    return contract_json(row)


# -- bills -------------------------------------------------------------------------------------

BILL_SORTS: frozenset[str] = frozenset()
_DISCOUNT_LEVELS = {0: "None", 20: "Default", 30: "Bronze", 40: "Silver", 60: "Gold"}


def bills_page(connection: Connection, contract_id: int, limit: Limit) -> Page:
    one_contract(connection, contract_id)  # a contract that is not there is a 404
    query = sa.select(b).where(b.c.contract_id == contract_id)
    rows = _paged(connection, query.order_by(b.c.number), limit)
    bills = [
        {
            "amountBilled": row.amount,
            "discountReceived": _DISCOUNT_LEVELS.get(row.discount, str(row.discount)),
            "timestamp": row.billed_at,
            "contract_id": row.contract_id,
            # zgrid's own: the whole bill
            "number": row.number,
            "period_start": row.period_start,
            "period_end": row.period_end,
            "usd": row.usd,
            "token_price": row.token_price,
            "tokens": row.tokens,
            "discount": row.discount,
            "traffic": row.traffic,
            "status": row.status,
            "paid_at": row.paid_at,
            "split": {
                "burned": row.burned,
                "farmer": row.farmer,
                "validators": row.validators,
                "foundation": row.foundation,
            },
        }
        for row in rows
    ]
    return bills, _count(connection, query, limit)


# -- statistics --------------------------------------------------------------------------------

STATS_FILTERS = frozenset({"status"})


def stats(connection: Connection, params: Params, now: int) -> dict[str, Any]:
    nodes = NodeQuery(now)
    statuses = params.choices("status", ("up", "down", "standby"))
    where = [sa.or_(*(nodes.status_of(s) for s in statuses))] if statuses else []
    joined = n.outerjoin(f, f.c.farm_id == n.c.farm_id)
    access = sa.or_(n.c.ipv4 != "", n.c.ipv6 != "")
    totals = connection.execute(
        sa.select(
            sa.func.count(),
            *(
                sa.func.coalesce(sa.func.sum(n.c[f"total_{k}"]), 0)
                for k in ("cru", "sru", "mru", "hru")
            ),
            sa.func.coalesce(sa.func.sum(sa.case((access, 1), else_=0)), 0),
            sa.func.coalesce(
                sa.func.sum(sa.case((sa.and_(access, n.c.domain != ""), 1), else_=0)), 0
            ),
            sa.func.coalesce(sa.func.sum(sa.case((nodes.dedicated, 1), else_=0)), 0),
        )
        .select_from(joined)
        .where(*where)
    ).one()
    by_country = connection.execute(
        sa.select(n.c.country, sa.func.count())
        .select_from(joined)
        .where(*where)
        .group_by(n.c.country)
        .order_by(n.c.country)
    ).all()
    farms = connection.execute(sa.select(sa.func.count()).select_from(f)).scalar() or 0
    public = connection.execute(sa.select(sa.func.count()).select_from(ips)).scalar() or 0
    twins = connection.execute(sa.select(sa.func.count()).select_from(t)).scalar() or 0
    contracts = (
        connection.execute(
            sa.select(sa.func.count()).select_from(c).where(c.c.state != "deleted")
        ).scalar()
        or 0
    )
    distribution = {country or "": int(count) for country, count in by_country}
    return {
        "nodes": int(totals[0]),
        "farms": int(farms),
        "countries": len([country for country in distribution if country]),
        "totalCru": int(totals[1]),
        "totalSru": int(totals[2]),
        "totalMru": int(totals[3]),
        "totalHru": int(totals[4]),
        "publicIps": int(public),
        "accessNodes": int(totals[5]),
        "gateways": int(totals[6]),
        "twins": int(twins),
        "contracts": int(contracts),
        "nodesDistribution": distribution,
        "gpus": 0,
        "dedicatedNodes": int(totals[7]),
        # Deployments are sealed to their nodes: the explorer cannot count their workloads.
        "workloads_number": 0,
    }
