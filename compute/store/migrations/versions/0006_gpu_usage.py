"""GPU time of Kubernetes tenants' pods, kept: per pod how far it is counted, per tenant,
pool, GPU model and UTC day what it used, and per tenant its budget's state

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gpu_usage_pods",
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("pool", sa.String(length=128), nullable=False),
        sa.Column("gpu_model", sa.String(length=128), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("counted_until", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("uid"),
    )
    with op.batch_alter_table("gpu_usage_pods", schema=None) as batch_op:
        batch_op.create_index("ix_gpu_usage_pods_counted_until", ["counted_until"], unique=False)
        batch_op.create_index("ix_gpu_usage_pods_tenant", ["tenant"], unique=False)
    op.create_table(
        "gpu_usage_days",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("pool", sa.String(length=128), nullable=False),
        sa.Column("gpu_model", sa.String(length=128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("gpu_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "pool", "gpu_model", "day"),
    )
    op.create_table(
        "tenant_budgets",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("gpu_us", sa.BigInteger(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("stopped", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant"),
    )


def downgrade() -> None:
    op.drop_table("tenant_budgets")
    op.drop_table("gpu_usage_days")
    op.drop_table("gpu_usage_pods")
