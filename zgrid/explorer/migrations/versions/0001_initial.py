"""The explorer's first tables: chain identity, cursor, twins, farms, public IPs, nodes,
contracts, bills and the hourly history.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bills",
        sa.Column("contract_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("twin_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("period_start", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("period_end", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("usd", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("token_price", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("discount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("traffic", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="", nullable=False),
        sa.Column("paid_at", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("burned", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("farmer", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("validators", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("foundation", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("billed_at", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("contract_id", "number"),
    )
    op.create_table(
        "contracts",
        sa.Column("contract_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("twin_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("type", sa.String(length=8), server_default="", nullable=False),
        sa.Column("state", sa.String(length=16), server_default="", nullable=False),
        sa.Column("node_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("farm_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("name", sa.String(length=64), server_default="", nullable=False),
        sa.Column("deployment_hash", sa.String(length=64), server_default="", nullable=False),
        sa.Column("public_ips", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("mru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("sru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("hru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("used_cru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("used_mru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("used_sru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("used_hru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("result_version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("deleted_reason", sa.String(length=64), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("contract_id"),
    )
    op.create_index("contracts_by_node", "contracts", ["node_id", "state"], unique=False)
    op.create_index("contracts_by_state", "contracts", ["state"], unique=False)
    op.create_index("contracts_by_twin", "contracts", ["twin_id"], unique=False)
    op.create_table(
        "cursor",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("height", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("block_hash", sa.String(length=64), server_default="", nullable=False),
        sa.Column("timestamp", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("events", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "farms",
        sa.Column("farm_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=64), server_default="", nullable=False),
        sa.Column("twin_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("pricing_policy_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("certification", sa.String(length=32), server_default="", nullable=False),
        sa.Column("dedicated", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("total_ips", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("free_ips", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("farm_id"),
    )
    op.create_index("farms_by_name", "farms", ["name"], unique=False)
    op.create_table(
        "history",
        sa.Column("hour", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("nodes", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("nodes_up", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_cru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_mru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_sru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_hru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("used_cru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("used_mru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("used_sru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("used_hru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("contracts", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("twins", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("hour"),
    )
    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("farm_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("twin_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("country", sa.String(length=64), server_default="", nullable=False),
        sa.Column("city", sa.String(length=64), server_default="", nullable=False),
        sa.Column("latitude", sa.String(length=16), server_default="", nullable=False),
        sa.Column("longitude", sa.String(length=16), server_default="", nullable=False),
        sa.Column("ipv4", sa.String(length=64), server_default="", nullable=False),
        sa.Column("gw4", sa.String(length=64), server_default="", nullable=False),
        sa.Column("ipv6", sa.String(length=64), server_default="", nullable=False),
        sa.Column("gw6", sa.String(length=64), server_default="", nullable=False),
        sa.Column("domain", sa.String(length=255), server_default="", nullable=False),
        sa.Column("interfaces", sa.Text(), server_default="[]", nullable=False),
        sa.Column("secure_boot", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("virtualized", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("serial", sa.String(length=64), server_default="", nullable=False),
        sa.Column("power", sa.String(length=16), server_default="", nullable=False),
        sa.Column("created", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("uptime", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_report", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rented_by", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rent_contract_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("node_contracts", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("oldest_pending", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_cru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_mru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_sru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_hru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("used_cru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("used_mru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("used_sru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("used_hru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("free_cru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("free_mru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("free_sru", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("free_hru", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("node_id"),
    )
    op.create_index(
        "nodes_by_country", "nodes", [sa.text("lower(country)"), "free_mru"], unique=False
    )
    op.create_index("nodes_by_farm", "nodes", ["farm_id"], unique=False)
    op.create_index("nodes_by_free_mru", "nodes", ["free_mru"], unique=False)
    op.create_index("nodes_by_free_sru", "nodes", ["free_sru"], unique=False)
    op.create_index("nodes_by_report", "nodes", ["last_report"], unique=False)
    op.create_index("nodes_by_twin", "nodes", ["twin_id"], unique=False)
    op.create_table(
        "public_ips",
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("farm_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("gateway", sa.String(length=64), server_default="", nullable=False),
        sa.Column("contract_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("ip"),
    )
    op.create_index("public_ips_by_contract", "public_ips", ["contract_id"], unique=False)
    op.create_index("public_ips_by_farm", "public_ips", ["farm_id"], unique=False)
    op.create_table(
        "twins",
        sa.Column("twin_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.String(length=64), server_default="", nullable=False),
        sa.Column("relay", sa.String(length=255), server_default="", nullable=False),
        sa.Column("created", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("twin_id"),
    )
    op.create_index("twins_by_account", "twins", ["account_id"], unique=False)


def downgrade() -> None:
    for table in (
        "history",
        "bills",
        "contracts",
        "nodes",
        "public_ips",
        "farms",
        "twins",
        "cursor",
        "meta",
    ):
        op.drop_table(table)
