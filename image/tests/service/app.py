"""Tiny service of the container tests: the library's views, a health check and a slow view."""

import os
import time
from typing import Any

from c2cwsgiutils.health_check import HealthCheck
from pyramid.config import Configurator


def slow(request: Any) -> dict[str, Any]:
    """Answer after ``seconds`` (default 3), to test that ``docker stop`` lets requests finish."""
    seconds = min(float(request.params.get("seconds", "3")), 20.0)
    time.sleep(seconds)
    return {"slept": seconds}


def main(global_config: Any, **settings: Any) -> Any:
    """Build the WSGI application."""
    del global_config
    with Configurator(settings=settings) as config:
        config.include("c2cwsgiutils.pyramid")
        health_check = HealthCheck(config)
        health_check.add_custom_check("always", lambda _request: "fine", 1)
        url = os.environ.get("SQLALCHEMY_URL")
        if url:  # a plain postgresql:// URL: SQLAlchemy picks psycopg 3, the image's driver
            import sqlalchemy

            engine = sqlalchemy.create_engine(url, pool_pre_ping=True)

            def database(_request: Any) -> str:
                with engine.connect() as connection:
                    return str(connection.execute(sqlalchemy.text("SELECT version()")).scalar())

            health_check.add_custom_check("database", database, 1)
        config.add_route("slow", "/slow")
        config.add_view(slow, route_name="slow", renderer="json")
        return config.make_wsgi_app()
