"""Create the item table.

Revision ID: 4f1c2a7b9d3e
Revises:
Create Date: 2026-01-01 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "4f1c2a7b9d3e"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the item table."""
    op.create_table(
        "item",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    """Drop the item table."""
    op.drop_table("item")
