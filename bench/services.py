"""The benchmarked service, built twice: on bare Pyramid and with c2cwsgiutils.

Gunicorn loads ``services:make_app("bare")`` or ``services:make_app("c2c")``; the harness gives the
database and Redis URLs through the environment (read once, when the application is built):
``BENCH_DB_RW`` (primary), ``BENCH_DB_RO`` (replica) and ``BENCH_REDIS_URL`` (optional).

Both variants serve ``/hello`` (a JSON hello world) and the same two database routes, with the same
engines and pool sizes:

- ``/c2c/health_check``: c2cwsgiutils' ``HealthCheck`` (one check per engine + a Redis check, all at
  level 1) against a bare view that runs ``SELECT 1`` on both engines (and Redis ``INFO`` + ``DBSIZE``,
  returned in the same shape as the Redis check of c2cwsgiutils);
- ``/items``: ten rows of the ``item`` table read through ``request.dbsession`` (a GET, so the
  replica) against a bare SQLAlchemy session on the replica engine, same query.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import sqlalchemy
import sqlalchemy.orm
from pyramid.config import Configurator

__all__ = ["ITEMS_QUERY", "make_app", "paste_app"]

#: The query of the DB view (the harness creates and fills the table).
ITEMS_QUERY = sqlalchemy.text("SELECT id, name FROM item ORDER BY id LIMIT 10")
_HEALTH_PATH = "/c2c/health_check"
_POOL_SIZE = 10
_MAX_OVERFLOW = 5


def _urls(variant: str) -> tuple[str, str, str]:
    """Database URLs (named ``bench_<variant>`` in ``pg_stat_activity``) and the Redis URL."""
    names = [
        f"{os.environ[name]}{'&' if '?' in os.environ[name] else '?'}application_name=bench_{variant}"
        for name in ("BENCH_DB_RW", "BENCH_DB_RO")
    ]
    return names[0], names[1], os.environ.get("BENCH_REDIS_URL", "")


def _hello(request: Any) -> dict[str, str]:
    del request
    return {"hello": "world"}


def _add_hello(config: Configurator) -> None:
    config.add_route("hello", "/hello", request_method="GET")
    config.add_view(_hello, route_name="hello", renderer="json")


def _rows(session: sqlalchemy.orm.Session) -> list[dict[str, Any]]:
    return [{"id": row.id, "name": row.name} for row in session.execute(ITEMS_QUERY)]


def _bare(config: Configurator) -> None:
    url_rw, url_ro, redis_url = _urls("bare")
    engine_rw = sqlalchemy.create_engine(url_rw, pool_size=_POOL_SIZE, max_overflow=_MAX_OVERFLOW)
    engine_ro = sqlalchemy.create_engine(url_ro, pool_size=_POOL_SIZE, max_overflow=_MAX_OVERFLOW)
    redis_client: Any = None
    if redis_url:
        import redis

        redis_client = redis.Redis.from_url(redis_url, socket_timeout=5)

    def health_check(request: Any) -> dict[str, Any]:
        del request
        successes: dict[str, Any] = {}
        for name, engine in (("db_engine_sqlalchemy", engine_rw), ("db_engine_sqlalchemy_slave", engine_ro)):
            with sqlalchemy.orm.Session(bind=engine) as session:
                session.execute(sqlalchemy.text("SELECT 1"))
            successes[name] = {"level": 1}
        if redis_client is not None:
            # The same commands and answer as c2cwsgiutils' Redis check (its JSON shape).
            result = {"info": redis_client.info(), "dbsize": redis_client.dbsize()}
            successes["redis"] = {"level": 1, "result": result}
        return {"status": 200, "successes": successes, "failures": {}}

    def items(request: Any) -> list[dict[str, Any]]:
        del request
        with sqlalchemy.orm.Session(bind=engine_ro) as session, session.begin():
            return _rows(session)

    config.add_route("health_check", _HEALTH_PATH, request_method="GET")
    config.add_view(health_check, route_name="health_check", renderer="json", http_cache=0)
    config.add_route("items", "/items", request_method="GET")
    config.add_view(items, route_name="items", renderer="json")


def _c2c(config: Configurator) -> None:
    from c2cwsgiutils import db, health_check

    url_rw, url_ro, redis_url = _urls("c2c")
    settings: dict[str, Any] = {"sqlalchemy.url": url_rw, "sqlalchemy_slave.url": url_ro}
    for prefix in ("sqlalchemy", "sqlalchemy_slave"):
        settings[f"{prefix}.pool_size"] = str(_POOL_SIZE)
        settings[f"{prefix}.max_overflow"] = str(_MAX_OVERFLOW)
    if redis_url:
        settings["c2c.redis_url"] = redis_url
    config.add_settings(settings)
    config.include("c2cwsgiutils.pyramid")
    factory = db.init(config, "sqlalchemy", "sqlalchemy_slave")
    checks = health_check.HealthCheck(config)
    checks.add_db_session_check(factory, level=1)
    if redis_url:
        # The automatic Redis check is at level 2; the benchmark asks for it at level 1.
        checks.add_redis_check("redis", level=1)

    def items(request: Any) -> list[dict[str, Any]]:
        return _rows(request.dbsession)

    config.add_route("items", "/items", request_method="GET")
    config.add_view(items, route_name="items", renderer="json")


_VARIANTS: dict[str, Callable[[Configurator], None]] = {"bare": _bare, "c2c": _c2c}


def make_app(variant: str, settings: dict[str, Any] | None = None) -> Any:
    """Build the WSGI application of a variant.

    Args:
        variant: ``bare`` (Pyramid and SQLAlchemy only) or ``c2c`` (with c2cwsgiutils).
        settings: Settings of the ini file (the c2c variant's ``production.ini``).

    Returns:
        The WSGI application.
    """
    with Configurator(settings=settings or {}) as config:
        _add_hello(config)
        _VARIANTS[variant](config)
        return config.make_wsgi_app()


def paste_app(global_config: dict[str, Any], **settings: Any) -> Any:
    """PasteDeploy factory of the c2c variant (``use = call:services:paste_app``)."""
    del global_config
    return make_app("c2c", settings)
