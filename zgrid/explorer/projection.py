"""The ledger's events applied to the explorer's tables, one handler per event name.

Handlers set rows to what the event says (upserts, and sums recounted from the rows
they sum), so applying an event again changes nothing. Values are fitted to their
columns: integers capped to 64 signed bits, strings cut to the column's length.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from zgrid.chain import ChainEvent
from zgrid.explorer import schema

__all__ = [
    "DOWN_AFTER",
    "HOUR",
    "MRU_RESERVE_MIN",
    "SRU_RESERVE",
    "BlockInfo",
    "apply_events",
    "i64",
    "system_reserve",
]

log = logging.getLogger(__name__)

I64_MAX = 2**63 - 1
GIB = 1024**3
MRU_RESERVE_MIN = 2 * GIB  # a node keeps max(10% of its memory, 2 GiB) for itself
SRU_RESERVE = 20 * GIB  # and 20 GiB of SSD
DOWN_AFTER = 80 * 60  # a node that has not reported uptime for 80 minutes is down
HOUR = 3600
_RESOURCES = ("cru", "mru", "sru", "hru")
_LIVE = ("created", "grace_period")


@dataclass
class BlockInfo:
    """The block being applied, and what its events left to recount at its end: a node's
    capacity and a farm's IPs are recounted once per block, however many events touch them."""

    height: int
    timestamp: int
    dirty_nodes: set[int] = field(default_factory=set)
    dirty_farms: set[int] = field(default_factory=set)


def i64(value: Any) -> int:
    """An integer of the ledger as a 64-bit signed column holds it (capped, never wrapped)."""
    number = int(value or 0)
    return max(-I64_MAX - 1, min(I64_MAX, number))


def system_reserve(total_mru: int) -> tuple[int, int]:
    """What a node keeps for itself: (memory, SSD) in bytes."""
    return max(total_mru // 10, MRU_RESERVE_MIN), SRU_RESERVE


def _fit(table: sa.Table, values: Mapping[str, Any]) -> dict[str, Any]:
    fitted: dict[str, Any] = {}
    for name, value in values.items():
        column_type = table.c[name].type
        if isinstance(column_type, sa.BigInteger):
            fitted[name] = i64(value)
        elif isinstance(column_type, sa.String) and column_type.length:
            fitted[name] = str(value or "")[: column_type.length]
        else:
            fitted[name] = value
    return fitted


@functools.lru_cache(maxsize=256)
def _upsert(dialect: str, table: sa.Table, names: tuple[str, ...]) -> Any:
    """``INSERT … ON CONFLICT (key) DO UPDATE`` of ``names``, built once and reused: building
    a statement costs more than SQLite takes to run it."""
    keys = [column.name for column in table.primary_key.columns]
    insert: Any = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = insert.values({name: sa.bindparam(name) for name in names})
    changed = {name: statement.excluded[name] for name in names if name not in keys}
    if changed:
        return statement.on_conflict_do_update(index_elements=keys, set_=changed)
    return statement.on_conflict_do_nothing(index_elements=keys)


@functools.lru_cache(maxsize=256)
def _update(table: sa.Table, where: tuple[str, ...], names: tuple[str, ...]) -> Any:
    return (
        sa.update(table)
        .where(*(table.c[name] == sa.bindparam(f"where_{name}") for name in where))
        .values({name: sa.bindparam(name) for name in names})
    )


@functools.lru_cache(maxsize=256)
def _lookup(table: sa.Table, columns: tuple[str, ...], key: str) -> Any:
    """``SELECT columns FROM table WHERE key = :key``, built once."""
    return sa.select(*(table.c[name] for name in columns)).where(
        table.c[key] == sa.bindparam("key")
    )


@functools.cache
def _live_contracts() -> Any:
    c = schema.contracts
    return sa.select(
        *(c.c[name] for name in (*_RESOURCES, *(f"used_{k}" for k in _RESOURCES))),
        c.c.version,
        c.c.result_version,
        c.c.updated,
    ).where(c.c.node_id == sa.bindparam("key"), c.c.state.in_(_LIVE), c.c.type == "node")


def _put(connection: Connection, table: sa.Table, values: Mapping[str, Any]) -> None:
    fitted = _fit(table, values)
    connection.execute(_upsert(connection.dialect.name, table, tuple(fitted)), fitted)


def _set(
    connection: Connection, table: sa.Table, where: Mapping[str, Any], values: Mapping[str, Any]
) -> None:
    """Set ``values`` on the rows of ``table`` whose columns equal ``where``."""
    fitted = _fit(table, values)
    keys = _fit(table, where)
    parameters = {**fitted, **{f"where_{name}": value for name, value in keys.items()}}
    connection.execute(_update(table, tuple(keys), tuple(fitted)), parameters)


# -- twins and farms ---------------------------------------------------------------------------


def _twin_created(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    _put(
        connection,
        schema.twins,
        {
            "twin_id": data["twin_id"],
            "account_id": data.get("account", ""),
            "relay": data.get("relay", ""),
            "created": block.timestamp,
        },
    )


def _twin_updated(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    t = schema.twins
    _set(connection, t, {"twin_id": i64(data["twin_id"])}, {"relay": data.get("relay", "")})


def _farm_created(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    _put(
        connection,
        schema.farms,
        {
            "farm_id": data["farm_id"],
            "name": data.get("name", ""),
            "twin_id": data.get("twin_id", 0),
            "pricing_policy_id": data.get("pricing_policy_id", 1),
            "certification": "not_certified",
            "created": block.timestamp,
        },
    )
    block.dirty_farms.add(i64(data["farm_id"]))


def _recount_ips(connection: Connection, farm_id: int) -> None:
    ips = schema.public_ips
    rows = connection.execute(_lookup(ips, ("contract_id",), "farm_id"), {"key": farm_id}).all()
    free = sum(1 for (contract_id,) in rows if not contract_id)
    f = schema.farms
    _set(connection, f, {"farm_id": farm_id}, {"total_ips": len(rows), "free_ips": free})


def _farm_ip_added(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    farm_id = i64(data["farm_id"])
    _put(
        connection,
        schema.public_ips,
        {
            "ip": data["ip"],
            "farm_id": farm_id,
            "gateway": data.get("gateway", ""),
            "contract_id": 0,
        },
    )
    block.dirty_farms.add(farm_id)


def _farm_ip_removed(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    ips = schema.public_ips
    connection.execute(sa.delete(ips).where(ips.c.ip == str(data["ip"])[:64]))
    block.dirty_farms.add(i64(data["farm_id"]))


def _farm_certified(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    f = schema.farms
    _set(
        connection,
        f,
        {"farm_id": i64(data["farm_id"])},
        {"certification": data.get("certification", "not_certified")},
    )


# -- nodes -------------------------------------------------------------------------------------


def _described(data: dict[str, Any]) -> dict[str, Any]:
    """The columns a node's registration or update sets (older events carry fewer)."""
    resources = data.get("resources") or {}
    location = data.get("location") or {}
    public = data.get("public_config") or {}
    return {
        "farm_id": data.get("farm_id", 0),
        **{f"total_{key}": resources.get(key, 0) for key in _RESOURCES},
        "country": location.get("country", ""),
        "city": location.get("city", ""),
        "latitude": location.get("latitude", ""),
        "longitude": location.get("longitude", ""),
        **{key: public.get(key, "") for key in ("ipv4", "gw4", "ipv6", "gw6", "domain")},
        "interfaces": json.dumps(data.get("interfaces") or [], sort_keys=True),
        "secure_boot": bool(data.get("secure_boot", False)),
        "virtualized": bool(data.get("virtualized", False)),
        "serial": data.get("serial", ""),
    }


def _node_registered(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    node_id = i64(data["node_id"])
    exists = connection.execute(
        _lookup(schema.nodes, ("node_id",), "node_id"), {"key": node_id}
    ).first()
    if exists is None:
        _put(
            connection,
            schema.nodes,
            {
                "node_id": node_id,
                "twin_id": data.get("twin_id", 0),
                "power": "up",
                "created": block.timestamp,
                "updated": block.timestamp,
                **_described(data),
            },
        )
    block.dirty_nodes.add(node_id)


def _node_updated(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    node_id = i64(data["node_id"])
    n = schema.nodes
    _set(connection, n, {"node_id": node_id}, {**_described(data), "updated": block.timestamp})
    block.dirty_nodes.add(node_id)


def _node_uptime(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    n = schema.nodes
    _set(
        connection,
        n,
        {"node_id": i64(data["node_id"])},
        {"uptime": data.get("uptime", 0), "last_report": data.get("timestamp", block.timestamp)},
    )


def _node_power(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    n = schema.nodes
    _set(
        connection,
        n,
        {"node_id": i64(data["node_id"])},
        {"power": data.get("power", "up"), "updated": block.timestamp},
    )


def _node_removed(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    n = schema.nodes
    connection.execute(sa.delete(n).where(n.c.node_id == i64(data["node_id"])))


def refresh_node(connection: Connection, node_id: int) -> None:
    """Recount a node's used and free capacity, its contracts and the oldest result it owes,
    from its live node contracts."""
    n = schema.nodes
    totals = tuple(f"total_{key}" for key in _RESOURCES)
    node = connection.execute(_lookup(n, totals, "node_id"), {"key": node_id}).first()
    if node is None:
        return
    rows = connection.execute(_live_contracts(), {"key": node_id}).all()
    # Contracts reserve what they declared; what a node reports used counts where it is more.
    held = {
        key: max(
            sum(getattr(row, key) for row in rows), sum(getattr(row, f"used_{key}") for row in rows)
        )
        for key in _RESOURCES
    }
    total = dict(zip(_RESOURCES, node, strict=True))
    mru_reserve, sru_reserve = system_reserve(total["mru"])
    used = {
        "cru": held["cru"],
        "mru": held["mru"] + mru_reserve,
        "sru": held["sru"] + sru_reserve,
        "hru": held["hru"],
    }
    pending = [row.updated for row in rows if row.result_version < row.version]
    _set(
        connection,
        n,
        {"node_id": node_id},
        {
            "node_contracts": len(rows),
            "oldest_pending": min(pending, default=0),
            **{f"used_{key}": used[key] for key in _RESOURCES},
            **{f"free_{key}": total[key] - used[key] for key in _RESOURCES},
        },
    )


# -- contracts ---------------------------------------------------------------------------------


def _capacity(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    found = data or {}
    return {f"{prefix}{key}": found.get(key, 0) for key in _RESOURCES}


def _contract_created(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    contract_id, kind = i64(data["contract_id"]), str(data.get("type", "node"))
    node_id = i64(data.get("node_id", 0))
    n = schema.nodes
    farm_id = connection.execute(_lookup(n, ("farm_id",), "node_id"), {"key": node_id}).scalar()
    farm_id = farm_id or 0
    ips = data.get("public_ips") or []
    _put(
        connection,
        schema.contracts,
        {
            "contract_id": contract_id,
            "twin_id": data.get("twin_id", 0),
            "type": kind,
            "state": "created",
            "node_id": node_id,
            "farm_id": farm_id,
            "name": data.get("name", ""),
            "deployment_hash": data.get("deployment_hash", ""),
            "public_ips": len(ips),
            **_capacity(data.get("capacity") or {}),
            "version": data.get("version", 0),
            "result_version": -1,
            "created": block.timestamp,
            "updated": block.timestamp,
        },
    )
    if ips:
        p = schema.public_ips
        for ip in ips:
            _set(connection, p, {"ip": str(ip.get("ip", ""))[:64]}, {"contract_id": contract_id})
        block.dirty_farms.add(farm_id)
    if kind == "rent":
        _set(
            connection,
            n,
            {"node_id": node_id},
            {"rented_by": data.get("twin_id", 0), "rent_contract_id": contract_id},
        )
    if node_id:
        block.dirty_nodes.add(node_id)


def _contract_node(connection: Connection, contract_id: int) -> int:
    c = schema.contracts
    found = connection.execute(_lookup(c, ("node_id",), "contract_id"), {"key": contract_id})
    return int(found.scalar() or 0)


def _contract_updated(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    contract_id = i64(data["contract_id"])
    c = schema.contracts
    _set(
        connection,
        c,
        {"contract_id": contract_id},
        {
            "deployment_hash": data.get("deployment_hash", ""),
            "version": data.get("version", 0),
            **_capacity(data.get("capacity") or {}),
            "updated": block.timestamp,
        },
    )
    block.dirty_nodes.add(_contract_node(connection, contract_id))


def _result_reported(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    contract_id = i64(data["contract_id"])
    c = schema.contracts
    _set(connection, c, {"contract_id": contract_id}, {"result_version": data.get("version", 0)})
    block.dirty_nodes.add(_contract_node(connection, contract_id))


def _resources_reported(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    contract_id = i64(data["contract_id"])
    c = schema.contracts
    _set(
        connection,
        c,
        {"contract_id": contract_id},
        _capacity(data.get("used") or {}, prefix="used_"),
    )
    block.dirty_nodes.add(_contract_node(connection, contract_id))


def _contract_canceled(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    contract_id = i64(data["contract_id"])
    c, p, n = schema.contracts, schema.public_ips, schema.nodes
    _set(
        connection,
        c,
        {"contract_id": contract_id},
        {"state": "deleted", "deleted_reason": data.get("reason", ""), "updated": block.timestamp},
    )
    farms = set(
        connection.execute(_lookup(p, ("farm_id",), "contract_id"), {"key": contract_id}).all()
    )
    _set(connection, p, {"contract_id": contract_id}, {"contract_id": 0})
    for (farm_id,) in farms:
        block.dirty_farms.add(farm_id)
    _set(
        connection,
        n,
        {"rent_contract_id": contract_id},
        {"rented_by": 0, "rent_contract_id": 0},
    )
    block.dirty_nodes.add(_contract_node(connection, contract_id))


def _contract_state(state: str) -> Callable[[Connection, dict[str, Any], BlockInfo], None]:
    def handle(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
        c = schema.contracts
        _set(
            connection,
            c,
            {"contract_id": i64(data["contract_id"])},
            {"state": state, "updated": block.timestamp},
        )

    return handle


# -- bills -------------------------------------------------------------------------------------


def _split(data: dict[str, Any]) -> dict[str, Any]:
    split = data.get("split") or {}
    return {key: split.get(key, 0) for key in ("burned", "farmer", "validators", "foundation")}


def _contract_billed(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    fields = (
        "contract_id",
        "number",
        "twin_id",
        "period_start",
        "period_end",
        "usd",
        "token_price",
        "tokens",
        "discount",
        "amount",
        "traffic",
        "status",
        "paid_at",
    )
    _put(
        connection,
        schema.bills,
        {
            **{key: data.get(key, 0) for key in fields},
            "status": data.get("status", ""),
            **_split(data),
            "billed_at": block.timestamp,
        },
    )


def _bill_where(data: dict[str, Any]) -> dict[str, Any]:
    return {"contract_id": data["contract_id"], "number": data["number"]}


def _bill_paid(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    values = {"status": "paid", "paid_at": block.timestamp, **_split(data)}
    _set(connection, schema.bills, _bill_where(data), values)


def _bill_unpaid(connection: Connection, data: dict[str, Any], block: BlockInfo) -> None:
    _set(connection, schema.bills, _bill_where(data), {"status": "unpaid"})


_Handler = Callable[[Connection, dict[str, Any], BlockInfo], None]

HANDLERS: dict[str, _Handler] = {
    "TwinCreated": _twin_created,
    "TwinUpdated": _twin_updated,
    "FarmCreated": _farm_created,
    "FarmIPAdded": _farm_ip_added,
    "FarmIPRemoved": _farm_ip_removed,
    "FarmCertificationChanged": _farm_certified,
    "NodeRegistered": _node_registered,
    "NodeUpdated": _node_updated,
    "NodeUptimeReported": _node_uptime,
    "NodePowerChanged": _node_power,
    "NodeRemoved": _node_removed,
    "ContractCreated": _contract_created,
    "ContractUpdated": _contract_updated,
    "ContractResultReported": _result_reported,
    "ContractResourcesReported": _resources_reported,
    "ContractCanceled": _contract_canceled,
    "ContractGracePeriodStarted": _contract_state("grace_period"),
    "ContractGracePeriodEnded": _contract_state("created"),
    "ContractBilled": _contract_billed,
    "BillPaid": _bill_paid,
    "BillUnpaid": _bill_unpaid,
}


def apply_events(
    connection: Connection, events: list[ChainEvent], block: BlockInfo, *, previous_time: int
) -> None:
    """Apply one block's events; then, when the block's time starts a new hour of ledger
    time, record the grid's state for the charts."""
    for event in events:
        handler = HANDLERS.get(event.name)
        if handler is not None:
            handler(connection, event.data, block)
    for farm_id in sorted(block.dirty_farms):
        _recount_ips(connection, farm_id)
    for node_id in sorted(block.dirty_nodes - {0}):
        refresh_node(connection, node_id)
    block.dirty_farms.clear()
    block.dirty_nodes.clear()
    if previous_time and block.timestamp // HOUR > previous_time // HOUR:
        snapshot(connection, block.timestamp)


def snapshot(connection: Connection, timestamp: int) -> None:
    """The grid's totals at ``timestamp``, kept as the hour it falls in."""
    n, c, t = schema.nodes, schema.contracts, schema.twins
    sums = [sa.func.coalesce(sa.func.sum(n.c[f"total_{k}"]), 0) for k in _RESOURCES]
    used = [sa.func.coalesce(sa.func.sum(n.c[f"used_{k}"]), 0) for k in _RESOURCES]
    up = sa.func.coalesce(
        sa.func.sum(
            sa.case(
                (sa.and_(n.c.power == "up", n.c.last_report >= timestamp - DOWN_AFTER), 1),
                else_=0,
            )
        ),
        0,
    )
    row = connection.execute(sa.select(sa.func.count(), up, *sums, *used).select_from(n)).one()
    contracts = connection.execute(
        sa.select(sa.func.count()).select_from(c).where(c.c.state.in_(_LIVE))
    ).scalar()
    twins = connection.execute(sa.select(sa.func.count()).select_from(t)).scalar()
    _put(
        connection,
        schema.history,
        {
            "hour": timestamp // HOUR * HOUR,
            "nodes": row[0],
            "nodes_up": row[1],
            **{f"total_{k}": row[2 + i] for i, k in enumerate(_RESOURCES)},
            **{f"used_{k}": row[6 + i] for i, k in enumerate(_RESOURCES)},
            "contracts": contracts or 0,
            "twins": twins or 0,
        },
    )
