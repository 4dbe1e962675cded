"""Join the branches of power (0008), topology and rack budgets (0009) and energy (0010),
each made from 0007

Revision ID: 0011
Revises: 0008, 0009, 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

revision = "0011"
down_revision = ("0008", "0009", "0010")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
