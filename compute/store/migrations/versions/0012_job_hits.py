"""Job impact: which jobs and pods a node's fault hit, whose, and the GPU-hours they lost;
how far drains and failed work are looked at

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_hits",
        sa.Column("pool", sa.String(length=128), nullable=False),
        sa.Column("work", sa.String(length=255), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("node", sa.String(length=255), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("end", sa.DateTime(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("gpu_hours", sa.Float(), nullable=False),
        sa.Column("check", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("pool", "work"),
    )
    with op.batch_alter_table("job_hits", schema=None) as batch_op:
        batch_op.create_index("ix_job_hits_tenant_at", ["tenant", "at"], unique=False)
    op.create_table(
        "job_hit_marks",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("failed_until", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("job_hit_marks")
    op.drop_table("job_hits")
