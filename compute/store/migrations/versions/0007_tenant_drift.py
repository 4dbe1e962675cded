"""Tenants' drift as the last periodic check saw it, per tenant, backend and object, and
each backend's last check

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_drift",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("backend", sa.String(length=160), nullable=False),
        sa.Column("object", sa.String(length=512), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("live", sa.Text(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "backend", "object"),
    )
    op.create_table(
        "tenant_drift_checks",
        sa.Column("backend", sa.String(length=160), nullable=False),
        sa.Column("tried_at", sa.DateTime(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("backend"),
    )


def downgrade() -> None:
    op.drop_table("tenant_drift_checks")
    op.drop_table("tenant_drift")
