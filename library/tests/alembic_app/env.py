"""Alembic environment of the test migrations: online mode on ``sqlalchemy.url``."""

from __future__ import annotations

import sqlalchemy
from alembic import context

config = context.config
engine = sqlalchemy.create_engine(
    config.get_main_option("sqlalchemy.url"), poolclass=sqlalchemy.pool.NullPool
)
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
