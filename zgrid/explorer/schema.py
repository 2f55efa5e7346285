"""The explorer's tables: what the indexer writes and the API reads (SQLite and PostgreSQL).

Every integer is a signed 64-bit column; the indexer stores larger ledger values capped
(:func:`zgrid.explorer.projection.i64`). Migrations (``migrations/``) create exactly these
tables; a test compares the two.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "bills",
    "contracts",
    "cursor",
    "farms",
    "history",
    "meta",
    "metadata",
    "nodes",
    "public_ips",
    "twins",
]

metadata = MetaData()


def _int(name: str, **kwargs: object) -> Column[int]:
    return Column(name, BigInteger, nullable=False, server_default="0", **kwargs)  # type: ignore[arg-type]


def _text(name: str, length: int = 255, **kwargs: object) -> Column[str]:
    return Column(name, String(length), nullable=False, server_default="", **kwargs)  # type: ignore[arg-type]


def _flag(name: str) -> Column[bool]:
    return Column(name, Boolean, nullable=False, server_default="0")


# What chain this database indexes: chain id, validator, the genesis document.
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Where indexing stands: the last block applied whole (one row, id 1).
cursor = Table(
    "cursor",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _int("height"),
    _text("block_hash", 64),
    _int("timestamp"),
    _int("events"),
)

twins = Table(
    "twins",
    metadata,
    Column("twin_id", BigInteger, primary_key=True, autoincrement=False),
    _text("account_id", 64),
    _text("relay"),
    _int("created"),
    Index("twins_by_account", "account_id"),
)

farms = Table(
    "farms",
    metadata,
    Column("farm_id", BigInteger, primary_key=True, autoincrement=False),
    _text("name", 64),
    _int("twin_id"),
    _int("pricing_policy_id"),
    _text("certification", 32),
    _flag("dedicated"),
    _int("total_ips"),
    _int("free_ips"),
    _int("created"),
    Index("farms_by_name", "name"),
)

public_ips = Table(
    "public_ips",
    metadata,
    Column("ip", String(64), primary_key=True),
    _int("farm_id"),
    _text("gateway", 64),
    _int("contract_id"),
    Index("public_ips_by_farm", "farm_id"),
    Index("public_ips_by_contract", "contract_id"),
)

nodes = Table(
    "nodes",
    metadata,
    Column("node_id", BigInteger, primary_key=True, autoincrement=False),
    _int("farm_id"),
    _int("twin_id"),
    _text("country", 64),
    _text("city", 64),
    _text("latitude", 16),
    _text("longitude", 16),
    _text("ipv4", 64),
    _text("gw4", 64),
    _text("ipv6", 64),
    _text("gw6", 64),
    _text("domain"),
    Column("interfaces", Text, nullable=False, server_default="[]"),
    _flag("secure_boot"),
    _flag("virtualized"),
    _text("serial", 64),
    _text("power", 16),
    _int("created"),
    _int("updated"),
    _int("uptime"),
    _int("last_report"),
    _int("rented_by"),
    _int("rent_contract_id"),
    _int("node_contracts"),
    _int("oldest_pending"),
    _int("total_cru"),
    _int("total_mru"),
    _int("total_sru"),
    _int("total_hru"),
    _int("used_cru"),
    _int("used_mru"),
    _int("used_sru"),
    _int("used_hru"),
    _int("free_cru"),
    _int("free_mru"),
    _int("free_sru"),
    _int("free_hru"),
    Index("nodes_by_farm", "farm_id"),
    Index("nodes_by_twin", "twin_id"),
    Index("nodes_by_report", "last_report"),
    Index("nodes_by_free_mru", "free_mru"),
    Index("nodes_by_free_sru", "free_sru"),
)

# Countries are matched without case; within one, nodes are listed by free memory.
Index("nodes_by_country", sa.func.lower(nodes.c.country), nodes.c.free_mru)

contracts = Table(
    "contracts",
    metadata,
    Column("contract_id", BigInteger, primary_key=True, autoincrement=False),
    _int("twin_id"),
    _text("type", 8),
    _text("state", 16),
    _int("node_id"),
    _int("farm_id"),
    _text("name", 64),
    _text("deployment_hash", 64),
    _int("public_ips"),
    _int("cru"),
    _int("mru"),
    _int("sru"),
    _int("hru"),
    _int("used_cru"),
    _int("used_mru"),
    _int("used_sru"),
    _int("used_hru"),
    _int("version"),
    _int("result_version"),
    _int("created"),
    _int("updated"),
    _text("deleted_reason", 64),
    Index("contracts_by_twin", "twin_id"),
    Index("contracts_by_node", "node_id", "state"),
    Index("contracts_by_state", "state"),
)

bills = Table(
    "bills",
    metadata,
    Column("contract_id", BigInteger, primary_key=True, autoincrement=False),
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    _int("twin_id"),
    _int("period_start"),
    _int("period_end"),
    _int("usd"),
    _int("token_price"),
    _int("tokens"),
    _int("discount"),
    _int("amount"),
    _int("traffic"),
    _text("status", 16),
    _int("paid_at"),
    _int("burned"),
    _int("farmer"),
    _int("validators"),
    _int("foundation"),
    _int("billed_at"),
)

# The grid once per hour of ledger time, for the statistics page's charts.
history = Table(
    "history",
    metadata,
    Column("hour", BigInteger, primary_key=True, autoincrement=False),
    _int("nodes"),
    _int("nodes_up"),
    _int("total_cru"),
    _int("total_mru"),
    _int("total_sru"),
    _int("total_hru"),
    _int("used_cru"),
    _int("used_mru"),
    _int("used_sru"),
    _int("used_hru"),
    _int("contracts"),
    _int("twins"),
)
