"""What the web pages read beyond the API's answers: the choices of their filter forms,
node counts per farm, the grid's use, its history for the charts, a contract's record."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from zgrid.explorer import listing, schema
from zgrid.explorer.charts import Bar, Series, bar_chart, human_bytes, line_chart
from zgrid.explorer.node_query import NodeQuery
from zgrid.explorer.params import Params

__all__ = [
    "bill_totals",
    "contract_record",
    "countries",
    "farm_names",
    "farm_node_counts",
    "statistics",
]

n, f, c, b, h = schema.nodes, schema.farms, schema.contracts, schema.bills, schema.history
_RESOURCES = ("cru", "mru", "sru", "hru")
DAY = 86400


def countries(connection: Connection) -> list[str]:
    """The countries nodes are in, for the nodes page's country choice."""
    rows = connection.execute(
        sa.select(n.c.country).where(n.c.country != "").distinct().order_by(n.c.country)
    ).all()
    return [str(row.country) for row in rows]


def farm_names(connection: Connection) -> list[tuple[int, str]]:
    rows = connection.execute(sa.select(f.c.farm_id, f.c.name).order_by(f.c.name, f.c.farm_id))
    return [(int(row.farm_id), str(row.name)) for row in rows]


def farm_node_counts(
    connection: Connection, now: int, farm_ids: list[int]
) -> dict[int, dict[str, int]]:
    """Per farm: its nodes, and how many of them are up at ``now``."""
    if not farm_ids:
        return {}
    up = NodeQuery(now).up
    rows = connection.execute(
        sa.select(n.c.farm_id, sa.func.count(), sa.func.sum(sa.case((up, 1), else_=0)))
        .where(n.c.farm_id.in_(farm_ids))
        .group_by(n.c.farm_id)
    ).all()
    return {int(row[0]): {"nodes": int(row[1]), "up": int(row[2] or 0)} for row in rows}


def _use(connection: Connection, now: int) -> dict[str, Any]:
    """Totals, used and free of each resource over every node, and nodes by status."""
    query = NodeQuery(now)
    sums = [
        sa.func.coalesce(sa.func.sum(n.c[f"{part}_{key}"]), 0)
        for part in ("total", "used", "free")
        for key in _RESOURCES
    ]
    statuses = [
        sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)
        for condition in (query.up, query.standby, query.down)
    ]
    row = connection.execute(
        sa.select(*sums, *statuses).select_from(n.outerjoin(f, f.c.farm_id == n.c.farm_id))
    ).one()
    values = [int(value) for value in row]
    use = {
        key: {part: values[i * 4 + j] for i, part in enumerate(("total", "used", "free"))}
        for j, key in enumerate(_RESOURCES)
    }
    up, standby, down = values[12:]
    return {"use": use, "statuses": {"up": up, "standby": standby, "down": down}}


def statistics(connection: Connection, now: int, days: int) -> dict[str, Any]:
    """The statistics page: the API's ``/stats``, the grid's use, and its charts over the
    last ``days`` of ledger time (0: all of it)."""
    stats = listing.stats(connection, Params([], listing.STATS_FILTERS), now)
    query = sa.select(h).order_by(h.c.hour)
    if days:
        query = query.where(h.c.hour >= now - days * DAY)
    history = connection.execute(query).all()
    times = [int(row.hour) for row in history]

    def column(name: str) -> list[float]:
        return [float(getattr(row, name)) for row in history]

    charts = {
        "memory": line_chart(
            times,
            [
                Series("memory total", column("total_mru"), "total", area=True),
                Series("memory used", column("used_mru"), "used", area=True),
            ],
            title="Memory: total and used",
            fmt=human_bytes,
            base=1024,
            chart_id="chart-memory",
        ),
        "disk": line_chart(
            times,
            [
                Series("SSD total", column("total_sru"), "total", area=True),
                Series("SSD used", column("used_sru"), "used", area=True),
            ],
            title="SSD: total and used",
            fmt=human_bytes,
            base=1024,
            chart_id="chart-disk",
        ),
        "nodes": line_chart(
            times,
            [
                Series("nodes", column("nodes"), "total", area=True),
                Series("nodes up", column("nodes_up"), "used"),
                Series("contracts", column("contracts"), "other"),
            ],
            title="Nodes, nodes up and live contracts",
            chart_id="chart-nodes",
        ),
    }
    distribution = stats["nodesDistribution"]
    bars = [
        Bar(country or "unknown", count, _nodes_in(country))
        for country, count in sorted(distribution.items(), key=lambda item: (-item[1], item[0]))
    ]
    charts["countries"] = bar_chart(bars, title="Nodes per country", chart_id="chart-countries")
    return {
        "stats": stats,
        **_use(connection, now),
        "charts": charts,
        "history_hours": len(history),
        "history_from": times[0] if times else 0,
        "countries_bars": bars,
    }


def _nodes_in(country: str) -> str:
    return f"/explorer/nodes?{urlencode({'country': country})}" if country else ""


def contract_record(connection: Connection, contract_id: int) -> dict[str, Any]:
    """A contract's row: capacity reserved and used, versions, why it ended."""
    row = connection.execute(sa.select(c).where(c.c.contract_id == contract_id)).one()
    return dict(row._mapping)


def bill_totals(connection: Connection, contract_id: int) -> dict[str, int]:
    row = connection.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(b.c.amount), 0),
            sa.func.coalesce(sa.func.sum(sa.case((b.c.status == "paid", b.c.amount), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(b.c.usd), 0),
        ).where(b.c.contract_id == contract_id)
    ).one()
    return {"bills": int(row[0]), "amount": int(row[1]), "paid": int(row[2]), "usd": int(row[3])}
