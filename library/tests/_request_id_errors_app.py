"""A WSGI application for the compatibility tests of request ids and error answers (real gunicorn).

It logs JSON lines on stdout (the library's ``JsonLogHandler``, each line written at once;
``c2cwsgiutils`` at DEBUG, the rest at INFO). Settings come from the environment: the ``C2C_*``
variables, ``DEVELOPMENT`` and, for the database views, ``SQLALCHEMY_URL`` (a database with the
table ``items``, see ``test_errors_db.py``).

- ``GET /echo``: ``{"id": request.c2c_request_id}``, after logging ``echo view called``;
- ``GET /unavailable``: a 503 returned by the view, not raised;
- ``GET /unauthorized``: raises a 401;
- ``POST /items?name=`` (flushed in the view), ``POST /items/commit?name=`` (inserted when
  pyramid_tm commits), ``POST /items/quantity?quantity=`` (a text where an integer goes).
"""

from __future__ import annotations

import logging
import logging.config
import os
from typing import Any

import sqlalchemy
from pyramid.httpexceptions import HTTPUnauthorized
from pyramid.response import Response
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from c2cwsgiutils import db, testing

logging.config.dictConfig(
    {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "json": {
                "class": "c2cwsgiutils.pyramid_logging.JsonLogHandler",
                "stream": "ext://sys.stdout",
                # Each line written before the request goes on: the tests read them after the answer.
                "flush_interval": 0,
            }
        },
        "root": {"level": "INFO", "handlers": ["json"]},
        "loggers": {"c2cwsgiutils": {"level": "DEBUG"}},
    }
)
_LOG = logging.getLogger("request_id_errors_app")


class _Base(DeclarativeBase):
    pass


class Item(_Base):
    """A row of the ``items`` table (``name`` is unique)."""

    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    quantity: Mapped[int | None]


def _echo(request: Any) -> dict[str, str]:
    _LOG.info("echo view called")
    return {"id": request.c2c_request_id}


def _unavailable(request: Any) -> Any:
    return Response(json_body={"busy": True}, status=503)


def _unauthorized(request: Any) -> Any:
    raise HTTPUnauthorized


def _add_item(request: Any) -> dict[str, bool]:
    request.dbsession.add(Item(name=request.params["name"]))
    request.dbsession.flush()
    return {"ok": True}


def _add_item_at_commit(request: Any) -> dict[str, bool]:
    session = request.dbsession
    session.execute(sqlalchemy.text("SELECT 1"))  # the session joins the request's transaction
    session.add(Item(name=request.params["name"]))  # sent to the database when pyramid_tm commits
    return {"ok": True}


def _add_quantity(request: Any) -> dict[str, bool]:
    request.dbsession.execute(
        sqlalchemy.text("INSERT INTO items (name, quantity) VALUES (:name, :quantity)"),
        {"name": "private-name-42", "quantity": request.params["quantity"]},
    )
    return {"ok": True}


def _configure(config: Any) -> None:
    for name, path, view, method in (
        ("echo", "/echo", _echo, "GET"),
        ("unavailable", "/unavailable", _unavailable, "GET"),
        ("unauthorized", "/unauthorized", _unauthorized, "GET"),
    ):
        config.add_route(name, path, request_method=method)
        config.add_view(view, route_name=name, renderer="fast_json")
    if "SQLALCHEMY_URL" not in os.environ:
        return
    db.init(config, "sqlalchemy")
    for name, path, view in (
        ("items", "/items", _add_item),
        ("items_commit", "/items/commit", _add_item_at_commit),
        ("items_quantity", "/items/quantity", _add_quantity),
    ):
        config.add_route(name, path, request_method="POST")
        config.add_view(view, route_name=name, renderer="fast_json")


_SETTINGS = {"c2c.enable_exception_handling": "1"}
if "SQLALCHEMY_URL" in os.environ:
    _SETTINGS["sqlalchemy.url"] = os.environ["SQLALCHEMY_URL"]

app = testing.make_app(_SETTINGS, includes=("c2cwsgiutils.pyramid",), configure=_configure)
