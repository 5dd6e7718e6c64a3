"""Create the hello table with one row.

Revision ID: 4a8b3c2d1e0f
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "4a8b3c2d1e0f"
down_revision = None


def upgrade() -> None:
    """Create the table and its first row."""
    hello = op.create_table(
        "hello",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("value", sa.String(200), nullable=False, unique=True),
    )
    op.bulk_insert(hello, [{"value": "hello world"}])


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("hello")
