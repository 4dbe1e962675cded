"""Power: each node's latest reading, node and rack power series (downsampled), GPU caps

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "power_latest",
        sa.Column("node", sa.String(length=255), nullable=False),
        sa.Column("rack", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("gpu_watts", sa.Float(), nullable=False),
        sa.Column("node_watts", sa.Float(), nullable=True),
        sa.Column("node_source", sa.String(length=32), nullable=False),
        sa.Column("node_error", sa.String(length=200), nullable=False),
        sa.Column("gpus", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("node"),
    )
    op.create_table(
        "power_samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("watts", sa.Float(), nullable=False),
        sa.Column("peak_watts", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("power_samples", schema=None) as batch_op:
        batch_op.create_index("ix_power_samples_series", ["kind", "name", "step", "at"])
    op.create_table(
        "power_caps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("node", sa.String(length=255), nullable=False),
        sa.Column("rack", sa.String(length=128), nullable=False),
        sa.Column("gpus", sa.JSON(), nullable=True),
        sa.Column("watts", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("clamped", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("reverted_by", sa.String(length=255), nullable=False),
        sa.Column("revert_reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("power_caps", schema=None) as batch_op:
        batch_op.create_index("ix_power_caps_node_state", ["node", "state"])


def downgrade() -> None:
    with op.batch_alter_table("power_caps", schema=None) as batch_op:
        batch_op.drop_index("ix_power_caps_node_state")
    op.drop_table("power_caps")
    with op.batch_alter_table("power_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_power_samples_series")
    op.drop_table("power_samples")
    op.drop_table("power_latest")
