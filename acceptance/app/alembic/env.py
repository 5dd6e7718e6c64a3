"""Run the migrations on the database of ``SQLALCHEMY_URL``."""

from __future__ import annotations

import os

import sqlalchemy
from acceptance_app.models import Base
from alembic import context

config = context.config


def run_migrations_online() -> None:
    """Run the migrations on the database."""
    engine = sqlalchemy.create_engine(os.environ["SQLALCHEMY_URL"], poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            version_table=config.get_main_option("version_table", "alembic_version"),
            version_table_schema=config.get_main_option("version_table_schema"),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
