"""Run the migrations on the database of ``SQLALCHEMY_URL`` (else ``sqlalchemy.url`` of alembic.ini)."""

from __future__ import annotations

import os

import sqlalchemy
from alembic import context

from {{ cookiecutter.package_name }}.models import Base

config = context.config


def _url() -> str:
    url = os.environ.get("SQLALCHEMY_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        msg = "Set SQLALCHEMY_URL to the database to migrate"
        raise RuntimeError(msg)
    return url


def _version_table_schema(connection: sqlalchemy.Connection) -> str | None:
    # SQLite (the unit tests) has no schemas.
    if connection.dialect.name == "sqlite":
        return None
    return config.get_main_option("version_table_schema")


def run_migrations_offline() -> None:
    """Write the SQL of the migrations on stdout (``alembic upgrade head --sql``)."""
    context.configure(
        url=_url(),
        target_metadata=Base.metadata,
        literal_binds=True,
        version_table=config.get_main_option("version_table", "alembic_version"),
        version_table_schema=config.get_main_option("version_table_schema"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the database."""
    engine = sqlalchemy.create_engine(_url(), poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            version_table=config.get_main_option("version_table", "alembic_version"),
            version_table_schema=_version_table_schema(connection),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
