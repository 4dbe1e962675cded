"""remediation at scale: node versions, attention, observe mode, leases, incidents

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        # Every write of a node is conditional on the version it read.
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
        # Set when a posted result needs the acting control plane's decision now.
        batch_op.add_column(sa.Column("attention_at", sa.DateTime(), nullable=True))
        # The last decision recorded in observe mode, so it is recorded once.
        batch_op.add_column(sa.Column("would", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("switch", sa.String(length=128), nullable=False, server_default="")
        )
        batch_op.create_index("ix_nodes_attention_at", ["attention_at"], unique=False)
    with op.batch_alter_table("pools", schema=None) as batch_op:
        # Pools that existed before this revision keep acting as they did.
        batch_op.add_column(
            sa.Column("mode", sa.String(length=16), nullable=False, server_default="enforce")
        )
        batch_op.add_column(
            sa.Column("observe_checks", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column("mode_changed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("mode_actor", sa.String(length=255), nullable=False, server_default="")
        )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("renewed_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=128), nullable=False),
        sa.Column("pool", sa.String(length=128), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("cause", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("nodes", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("released_at", sa.DateTime(), nullable=True),
        sa.Column("released_by", sa.String(length=255), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index("ix_incidents_state", ["state"], unique=False)
        batch_op.create_index("ix_incidents_opened_at", ["opened_at"], unique=False)


def downgrade() -> None:
    op.drop_table("incidents")
    op.drop_table("leases")
    with op.batch_alter_table("pools", schema=None) as batch_op:
        for col in ("mode_actor", "mode_changed_at", "observe_checks", "mode"):
            batch_op.drop_column(col)
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_index("ix_nodes_attention_at")
        for col in ("switch", "would", "attention_at", "version"):
            batch_op.drop_column(col)
