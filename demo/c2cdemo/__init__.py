"""A small service built with c2cwsgiutils: what `make run` starts."""

from __future__ import annotations

from typing import Any

import sqlalchemy
from c2cwsgiutils import services
from c2cwsgiutils.health_check import HealthCheck
from pyramid.config import Configurator
from sqlalchemy import orm

hello_service = services.create("hello", "/hello", cors_credentials=True)


class Base(orm.DeclarativeBase):
    """Declarative base of the demo's models."""


class Hit(Base):
    """One call of the hello service."""

    __tablename__ = "hit"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)


@hello_service.get()
def hello_get(request: Any) -> dict[str, Any]:
    """Count the calls in SQLite and say hello."""
    with request.registry["demo.sessionmaker"].begin() as session:
        session.add(Hit())
        session.flush()
        count = session.scalar(sqlalchemy.select(sqlalchemy.func.count(Hit.id)))
    return {"hello": True, "calls": count, "request_id": request.c2c_request_id}


def main(global_config: dict[str, str], **settings: Any) -> Any:
    """Build the WSGI application."""
    del global_config
    with Configurator(settings=settings, route_prefix="/api") as config:
        config.include("c2cwsgiutils.pyramid")
        engine = sqlalchemy.create_engine(settings["sqlalchemy.url"])
        Base.metadata.create_all(engine)
        config.registry["demo.sessionmaker"] = orm.sessionmaker(engine)
        config.scan(__name__)

        health_check = HealthCheck(config)

        def database(_request: Any) -> str:
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT 1"))
            return "ok"

        health_check.add_custom_check("db_engine_sqlite", database, level=1)
        return config.make_wsgi_app()
