"""Tiny service of the container tests: the library's views, a health check, a slow view, whoami."""

import logging
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


def whoami(request: Any) -> dict[str, Any]:
    """Answer which worker process served the request, and the level of the logger ``name``."""
    logger = logging.getLogger(request.params.get("name", "root"))
    return {"pid": os.getpid(), "level": logging.getLevelName(logger.level)}


def main(global_config: Any, **settings: Any) -> Any:
    """Build the WSGI application."""
    del global_config
    with Configurator(settings=settings) as config:
        config.include("c2cwsgiutils.pyramid")
        health_check = HealthCheck(config)
        health_check.add_custom_check("always", lambda _request: "fine", 1)
        url = os.environ.get("SQLALCHEMY_URL")
        if url:  # postgresql:// (psycopg 3) or postgresql+psycopg2://: the image has both drivers
            import sqlalchemy

            engine = sqlalchemy.create_engine(url, pool_pre_ping=True)

            def database(_request: Any) -> dict[str, str]:
                with engine.connect() as connection:
                    version = connection.execute(sqlalchemy.text("SELECT version()")).scalar()
                return {"driver": engine.dialect.driver, "version": str(version)}

            health_check.add_custom_check("database", database, 1)
        config.add_route("slow", "/slow")
        config.add_view(slow, route_name="slow", renderer="json")
        config.add_route("whoami", "/whoami")
        config.add_view(whoami, route_name="whoami", renderer="json", http_cache=0)
        return config.make_wsgi_app()
