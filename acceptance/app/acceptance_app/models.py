"""The SQLAlchemy models; alembic (``alembic/versions``) creates their table."""

from __future__ import annotations

import sqlalchemy
from sqlalchemy import orm


class Base(orm.DeclarativeBase):
    """Declarative base of the models (``target_metadata`` of alembic)."""


class Hello(Base):
    """A row of greetings; ``value`` is unique, to test the 400 of an integrity error."""

    __tablename__ = "hello"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    value: orm.Mapped[str] = orm.mapped_column(sqlalchemy.String(200), unique=True)

    def as_json(self) -> dict[str, int | str]:
        """Return the row as the service answers it."""
        return {"id": self.id, "value": self.value}
