"""Topology beyond sites, rooms and racks (rows, PDUs, cooling limits, where the
configuration placed nodes), racks' standing against their budgets, the capacity history

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rack_details",
        sa.Column("rack", sa.String(length=128), nullable=False),
        sa.Column("row", sa.String(length=128), nullable=False),
        sa.Column("pdus", sa.JSON(), nullable=False),
        sa.Column("cooling_limit_watts", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("rack"),
    )
    op.create_table(
        "room_details",
        sa.Column("room", sa.String(length=128), nullable=False),
        sa.Column("cooling_limit_watts", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("room"),
    )
    op.create_table(
        "node_places",
        sa.Column("node", sa.String(length=255), nullable=False),
        sa.Column("rack", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("node"),
    )
    op.create_table(
        "rack_budgets",
        sa.Column("rack", sa.String(length=128), nullable=False),
        sa.Column("over", sa.Boolean(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("watts", sa.Float(), nullable=False),
        sa.Column("forecast_watts", sa.Float(), nullable=False),
        sa.Column("limit_watts", sa.Float(), nullable=False),
        sa.Column("capped", sa.JSON(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("rack"),
    )
    op.create_table(
        "capacity_samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("pool", sa.String(length=128), nullable=False),
        sa.Column("gpu_model", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_capacity_samples_at", "capacity_samples", ["at"])


def downgrade() -> None:
    op.drop_index("ix_capacity_samples_at", table_name="capacity_samples")
    op.drop_table("capacity_samples")
    op.drop_table("rack_budgets")
    op.drop_table("node_places")
    op.drop_table("room_details")
    op.drop_table("rack_details")
