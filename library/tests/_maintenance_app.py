"""A WSGI application for the multi-process tests of the database maintenance view (gunicorn).

Settings come from the environment: ``SQLALCHEMY_URL`` (primary), ``SQLALCHEMY_SLAVE_URL`` (replica)
and the ``C2C_*`` variables (secret, Redis, ``C2C_DB_MAINTENANCE_VIEW_ENABLED``). ``POST /write``
inserts a row through ``request.dbsession``; every response has the headers ``X-Worker-Pid`` and
(once the view ran) ``X-Db-User`` (``current_user`` of its session).
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy
import zope.sqlalchemy

from c2cwsgiutils import db, testing


def _write(request: Any) -> dict[str, Any]:
    session = request.dbsession
    user = session.execute(sqlalchemy.text("SELECT current_user")).scalar()
    request.environ["test.db_user"] = user  # also reported when the insert fails
    session.execute(sqlalchemy.text("INSERT INTO maintenance_rows (pid) VALUES (:pid)"), {"pid": os.getpid()})
    zope.sqlalchemy.mark_changed(session)  # text SQL: tell the transaction there is something to commit
    return {"pid": os.getpid(), "user": user}


def _add_headers(event: Any) -> None:
    """Every response, errors included, names the worker and the database role it used."""
    event.response.headers["X-Worker-Pid"] = str(os.getpid())
    user = event.request.environ.get("test.db_user")
    if user is not None:
        event.response.headers["X-Db-User"] = user


def _configure(config: Any) -> None:
    from pyramid.events import NewResponse

    config.add_subscriber(_add_headers, NewResponse)
    db.init(config, "sqlalchemy", "sqlalchemy_slave")
    config.include("c2cwsgiutils.db_maintenance_view")
    config.add_route("write", "/write", request_method="POST")
    config.add_view(_write, route_name="write", renderer="fast_json", http_cache=0)


app = testing.make_app(
    {
        "sqlalchemy.url": os.environ["SQLALCHEMY_URL"],
        "sqlalchemy_slave.url": os.environ["SQLALCHEMY_SLAVE_URL"],
        "c2c.enable_exception_handling": "1",
    },
    includes=("c2cwsgiutils.pyramid",),
    configure=_configure,
)
