"""Energy per tenant: hourly millijoules per holder (tenant, idle, out of service), pool and
GPU model, and in all; how far the fleet's energy is counted; the gaps not counted

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "energy_hours",
        sa.Column("holder", sa.String(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("pool", sa.String(length=128), nullable=False),
        sa.Column("gpu_model", sa.String(length=128), nullable=False),
        sa.Column("hour", sa.DateTime(), nullable=False),
        sa.Column("it_mj", sa.BigInteger(), nullable=False),
        sa.Column("facility_mj", sa.BigInteger(), nullable=False),
        sa.Column("gpu_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("holder", "tenant", "pool", "gpu_model", "hour"),
    )
    with op.batch_alter_table("energy_hours", schema=None) as batch_op:
        batch_op.create_index("ix_energy_hours_hour", ["hour"], unique=False)
    op.create_table(
        "energy_totals",
        sa.Column("holder", sa.String(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("pool", sa.String(length=128), nullable=False),
        sa.Column("gpu_model", sa.String(length=128), nullable=False),
        sa.Column("it_mj", sa.BigInteger(), nullable=False),
        sa.Column("facility_mj", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("holder", "tenant", "pool", "gpu_model"),
    )
    op.create_table(
        "energy_marks",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("counted_until", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "energy_gaps",
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("end", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("start"),
    )


def downgrade() -> None:
    op.drop_table("energy_gaps")
    op.drop_table("energy_marks")
    op.drop_table("energy_totals")
    op.drop_table("energy_hours")
